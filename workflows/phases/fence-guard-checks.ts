// fence-guard, before it fences: its input checked like every runbook's, and the facts that make the cluster it
// guards the legitimate primary again (then fencing it would stop the only writer).
import { siteActivities } from '../activity-proxies';
import { parseClusterRef, type ClusterRef } from '../contracts/clusters';
import { BadInputError } from '../contracts/errors';
import { rejectUnknownFields } from '../contracts/input-fields';
import { check, failureFacts } from './failures';
import type { RunbookRecord } from './runbook-record';
import type { ClusterFacts } from '../../activities/sites/site-driver';

export interface FenceGuardInput {
  /** The old primary to fence when its site answers again. */
  cluster: string;
  /** The cluster promoted in its place: if the old primary already follows it, there is nothing to fence. */
  promoted: string;
  /**
   * The timeline the promotion puts `promoted` on (its timeline before + 1; promote passes it). When `promoted`
   * follows `cluster` and `cluster` writes on a later timeline, `cluster` was promoted again after this promotion
   * (a switchback): it is the legitimate primary and must not be fenced. Without it, `promoted` following
   * `cluster` is taken to mean the same (a guard started by hand, after the promotion).
   */
  promotedTimeline?: number;
  /** How long one round waits for the site before it pages and keeps guarding. Default 168 (a week). */
  maxHours?: number;
  /** The fencing epoch of the promotion that left this guard: its fence is refused once a newer promotion stored a higher one. */
  epoch?: number;
  /**
   * Who starts it, proven (the ID token of `drctl login`, nonce "start:<workflowId>"): someone the approvals policy
   * lets approve the promotion it stands for. Not needed when a runbook starts it.
   */
  requesterIdToken?: string;
}

export interface GuardPlan {
  cluster: ClusterRef & { ref: string };
  promoted: ClusterRef & { ref: string };
  promotedTimeline: number | null;
  maxHours: number;
  epoch: number | null;
}

/** Refuses what a typo in the UI's form would make it do silently: guard forever, guard the wrong cluster. */
export function validateGuardInput(input: FenceGuardInput): GuardPlan {
  return check(() => {
    if (!input || typeof input !== 'object') {
      throw new BadInputError('input must be a JSON object: {"cluster": "eu/acid-demo", "promoted": "us/acid-demo"}');
    }
    rejectUnknownFields<FenceGuardInput>(input, { cluster: true, promoted: true, promotedTimeline: true, maxHours: true, epoch: true, requesterIdToken: true });
    const cluster = { ...parseClusterRef(input.cluster, 'cluster'), ref: input.cluster };
    const promoted = { ...parseClusterRef(input.promoted, 'promoted'), ref: input.promoted };
    if (cluster.ref === promoted.ref) {
      throw new BadInputError(`cluster and promoted are both ${cluster.ref}: name the old primary as cluster and the cluster promoted in its place as promoted`);
    }
    const maxHours = input.maxHours ?? 168;
    if (typeof maxHours !== 'number' || !Number.isFinite(maxHours) || !(maxHours > 0)) {
      throw new BadInputError(`maxHours must be a number > 0 (hours one round waits for the site before it pages), not ${JSON.stringify(input.maxHours)}`);
    }
    const t = input.promotedTimeline;
    if (t !== undefined && (typeof t !== 'number' || !Number.isInteger(t) || t < 2)) {
      throw new BadInputError(`promotedTimeline must be a whole number >= 2 (the timeline the promotion put ${promoted.ref} on), not ${JSON.stringify(t)}`);
    }
    const e = input.epoch;
    if (e !== undefined && (typeof e !== 'number' || !Number.isInteger(e) || e < 1)) {
      throw new BadInputError(`epoch must be a whole number >= 1 (the fencing epoch of the promotion this guard follows), not ${JSON.stringify(e)}`);
    }
    return { cluster, promoted, maxHours, promotedTimeline: t ?? null, epoch: e ?? null };
  });
}

/**
 * Why the guarded cluster is the legitimate primary again (so the guard must stand down), or null when it must be
 * fenced. Read at the moment of fencing: the promoted cluster now follows it, and it writes on a timeline later than
 * the promotion's. Before the promotion the promoted cluster follows it too, but on the old timeline: fence then.
 */
export async function legitimatePrimaryAgain(record: RunbookRecord, plan: GuardPlan, guarded: ClusterFacts): Promise<string | null> {
  const { cluster, promoted } = plan;
  let promotedFacts: ClusterFacts | null = null;
  try {
    promotedFacts = await siteActivities(promoted.site).siteDescribeCluster({ ref: promoted.ref });
  } catch (err) {
    record.step('check-promoted', 'failed', `Could not read ${promoted.ref} (${failureFacts(err).message}): fencing ${cluster.ref} as the promotion decided.`);
    return null;
  }
  if (promotedFacts?.standbySource?.sourceRef !== cluster.ref) return null;
  if (plan.promotedTimeline === null) {
    return `${promoted.ref} follows ${cluster.ref} (leader ${guarded.leaderMember ?? 'unknown'}): ${cluster.ref} is the primary again; standing down.`;
  }
  let position: { inRecovery: boolean; timeline: number } | null = null;
  try {
    position = await siteActivities(cluster.site).postgresCurrentPosition({ ref: cluster.ref });
  } catch (err) {
    record.step('check-timeline', 'failed', `${cluster.ref} answers no SQL (${failureFacts(err).message}): fencing it, nothing can tell it was promoted again.`);
    return null;
  }
  if (!position.inRecovery && position.timeline > plan.promotedTimeline) {
    return `${promoted.ref} follows ${cluster.ref}, which writes on timeline ${position.timeline}, after the promotion's timeline ${plan.promotedTimeline}: ` +
      `${cluster.ref} was promoted again (a switchback) and is the primary again; standing down.`;
  }
  record.step('check-timeline', 'done',
    `${promoted.ref} still follows ${cluster.ref} (timeline ${position.timeline}, not after the promotion's ${plan.promotedTimeline}): the promotion is not done yet; fencing ${cluster.ref}.`);
  return null;
}
