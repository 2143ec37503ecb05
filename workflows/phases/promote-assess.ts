// promote, before anything changes: what is being promoted, from which source, and how much data a promotion
// now would lose, measured against the live source or, when it is gone, the newest WAL in its archive.
import { patched } from '@temporalio/workflow';
import { control, siteActivities, siteProbeActivities } from '../activity-proxies';
import { parseClusterRef, type ClusterRef } from '../contracts/clusters';
import { BadInputError, ClusterNotFoundError, PreconditionFailedError } from '../contracts/errors';
import { rejectUnknownFields } from '../contracts/input-fields';
import { lossAgainstArchive, lossAgainstSource } from '../contracts/loss';
import type { ApprovalRecord, LossEstimate, PromoteInput, PromoteMode } from '../contracts/runbooks';
import { check, failureFacts, refuse } from './failures';
import type { RunbookRecord } from './runbook-record';
import type { ClusterFacts } from '../../activities/sites/site-driver';
import { NO_PUBLIC_DELEGATION_PATCH } from '../contracts/approvals';

/** Planned switchovers of standbys that do not stream: the final WAL segment goes through the archive. */
export const ARCHIVE_SWITCHOVER_PATCH = 'archive-only-switchover';

export interface PromotionPlan {
  target: ClusterRef & { ref: string; facts: ClusterFacts };
  source: (ClusterRef & { ref: string }) | null;
  mode: PromoteMode;
  alreadyPromoted: boolean;
  maxBytes: number;
  maxSeconds: number;
  approvalTimeoutSeconds: number;
  takeBackup: boolean;
  verifyBackupByRestore: boolean;
  regionTimeoutSeconds: number;
  catchUpTimeoutSeconds: number;
  /**
   * Runs started before the no-public-delegation patch only: an approval typed into the input. New runs refuse the
   * field and ask the region-failover that started them instead (parent-approval.ts).
   */
  preApproval: ApprovalRecord | null;
}

const nonNegative = (v: unknown, field: string, dflt: number): number => {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !(v >= 0)) throw new BadInputError(`${field} must be a number >= 0`);
  return v;
};

function preApprovalOf(a: ApprovalRecord | undefined): ApprovalRecord | null {
  if (a === undefined || a === null) return null;
  if (patched(NO_PUBLIC_DELEGATION_PATCH)) {
    throw new BadInputError(
      'preApproval is not accepted in the input: anyone who may start a run could approve their own promotion. Remove it; ' +
      'a human approves at the gate (update "approve"), and a region-failover hands its approval to the promotions it starts itself',
    );
  }
  if (typeof a !== 'object' || typeof a.approver !== 'string' || !a.approver.trim() || typeof a.ticket !== 'string' || !a.ticket.trim()) {
    throw new BadInputError('preApproval must be an approval record with "approver" and "ticket" (it is given by region-failover, not typed by hand)');
  }
  return a;
}

export async function validatePromotion(record: RunbookRecord, input: PromoteInput): Promise<PromotionPlan> {
  const parsed = check(() => {
    if (!input || typeof input !== 'object') {
      throw new BadInputError('input must be a JSON object: {"cluster": "us/acid-demo", "mode": "planned"}');
    }
    rejectUnknownFields<PromoteInput>(input, {
      cluster: true, mode: true, source: true, dataLossPolicy: true, approvalTimeoutSeconds: true, takeBackup: true,
      verifyBackupByRestore: true, preApproval: true, limits: true, requesterIdToken: true,
    });
    if (input.verifyBackupByRestore !== undefined && typeof input.verifyBackupByRestore !== 'boolean') {
      throw new BadInputError('verifyBackupByRestore must be true or false');
    }
    const target = parseClusterRef(input.cluster, 'cluster');
    const source = input.source === undefined ? null : parseClusterRef(input.source, 'source');
    if (input.mode !== 'planned' && input.mode !== 'unplanned') {
      throw new BadInputError(`mode "${String(input.mode)}" must be "planned" (source reachable, no loss) or "unplanned" (source down or suspect)`);
    }
    const approvalTimeoutSeconds = nonNegative(input.approvalTimeoutSeconds, 'approvalTimeoutSeconds', 3600);
    if (approvalTimeoutSeconds === 0) throw new BadInputError('approvalTimeoutSeconds must be > 0: a promotion always waits for a human');
    return {
      target, source, mode: input.mode as PromoteMode, approvalTimeoutSeconds,
      maxBytes: nonNegative(input.dataLossPolicy?.maxBytes, 'dataLossPolicy.maxBytes', 0),
      maxSeconds: nonNegative(input.dataLossPolicy?.maxSeconds, 'dataLossPolicy.maxSeconds', 0),
      regionTimeoutSeconds: nonNegative(input.limits?.regionTimeoutSeconds, 'limits.regionTimeoutSeconds', 30) || 30,
      catchUpTimeoutSeconds: nonNegative(input.limits?.catchUpTimeoutSeconds, 'limits.catchUpTimeoutSeconds', 300) || 300,
      takeBackup: input.takeBackup !== false,
      verifyBackupByRestore: input.verifyBackupByRestore === true,
      preApproval: preApprovalOf(input.preApproval),
    };
  });
  await control.siteResolveClusterRefs({ refs: { cluster: input.cluster, ...(input.source ? { source: input.source } : {}) } });
  const facts = await siteActivities(parsed.target.site).siteDescribeCluster({ ref: input.cluster });
  if (!facts) {
    refuse(new ClusterNotFoundError(`${input.cluster} does not exist at site ${parsed.target.site}: name an existing standby cluster (provision-standby builds one)`));
  }
  const alreadyPromoted = !facts.standbySource && facts.leaderRole === 'primary';
  if (!facts.standbySource && !alreadyPromoted) {
    refuse(new PreconditionFailedError(`${input.cluster} is not a standby cluster and has no writable leader (leader role: ${facts.leaderRole}): nothing to promote`));
  }
  const recorded = facts.standbySource?.sourceRef;
  // A wrong "source" would be measured against, and in planned mode fenced: a cluster this standby never followed.
  if (parsed.source && recorded && input.source !== recorded) {
    refuse(new BadInputError(`source ${input.source} is not the cluster ${input.cluster} replays from (${recorded}): leave "source" out, or name ${recorded}`));
  }
  const sourceRef = parsed.source ? input.source! : recorded;
  if (!alreadyPromoted && !sourceRef) {
    refuse(new BadInputError(`${input.cluster} does not record which cluster it replays from: name it with "source": "<site>/<cluster>"`));
  }
  // A standby that replays the archive switches over through it (the fenced source pushes its final segment);
  // runs started before that existed refused it (patch marker).
  if (!alreadyPromoted && parsed.mode === 'planned' && !facts.standbySource?.host &&
    !(facts.standbySource?.walPrefix && patched(ARCHIVE_SWITCHOVER_PATCH))) {
    refuse(new PreconditionFailedError(
      `${input.cluster} replays from the archive only: a planned switchover needs streaming (the source's last WAL segment never reaches the archive on shutdown); use mode "unplanned", or provision the standby with method "both"`,
    ));
  }
  record.step('validate-request', alreadyPromoted ? 'already' : 'done', alreadyPromoted
    ? `${input.cluster} already is a primary (no standby_cluster in Patroni's config, leader ${facts.leaderMember} writable): nothing to promote.`
    : `${input.cluster} is a standby of ${sourceRef} (leader ${facts.leaderMember}); ${parsed.mode} promotion requested.`);
  return {
    ...parsed,
    target: { ...parsed.target, ref: input.cluster, facts },
    source: sourceRef ? { ...parseClusterRef(sourceRef, 'source'), ref: sourceRef } : null,
    alreadyPromoted,
  };
}

/** What assess saw: the loss, and both sides' positions for the lineage check (source null when it did not answer). */
export interface Assessment {
  estimate: LossEstimate;
  standbyTimeline: number;
  standby: Position;
  source: Position | null;
}
type Position = Awaited<ReturnType<ReturnType<typeof siteActivities>['postgresCurrentPosition']>>;

export async function assessLoss(record: RunbookRecord, plan: PromotionPlan): Promise<Assessment> {
  const standby = await siteActivities(plan.target.site).postgresCurrentPosition({ ref: plan.target.ref });
  const source = plan.source;
  let live: Position | null = null;
  let why = '';
  try {
    if (source) live = await siteProbeActivities(source.site, plan.regionTimeoutSeconds).postgresCurrentPosition({ ref: source.ref });
  } catch (err) {
    why = failureFacts(err).message;
  }
  let estimate: LossEstimate;
  if (live && !live.inRecovery) {
    estimate = lossAgainstSource(standby, live, plan);
  } else if (plan.mode === 'planned') {
    refuse(new PreconditionFailedError(
      `source ${source?.ref} is not reachable as a primary (${why || 'it is in recovery'}): a planned promotion needs it; use mode "unplanned"`,
    ));
  } else {
    const walPrefix = plan.target.facts.standbySource?.walPrefix;
    const archived = walPrefix && source
      ? await siteActivities(plan.target.site).s3LastArchivedWal({ archiveSite: source.site, walPrefix })
      : null;
    estimate = lossAgainstArchive(standby, archived, plan);
  }
  record.step('estimate-loss', 'done', estimate.sourceReachable
    ? `Standby ${plan.target.ref} replayed ${estimate.standbyReplayedLsn}; source ${source?.ref} is at ${estimate.sourceLsn}: ${estimate.bytes} bytes, ${estimate.seconds ?? '?'} s behind (${estimate.withinPolicy ? 'within' : 'OVER'} policy).`
    : `Source ${source?.ref} is unreachable (${why}); ${estimate.basis === 'archive'
      ? `its archive ends at ${estimate.sourceLsn}, standby replayed ${estimate.standbyReplayedLsn}: up to ${estimate.bytes} bytes, ${estimate.seconds ?? '?'} s, plus any WAL never archived`
      : 'no archive to compare with: the loss is unknown'} (${estimate.withinPolicy ? 'within' : 'OVER'} policy).`,
    { ...estimate, timeline: standby.timeline });
  return { estimate, standbyTimeline: standby.timeline, standby, source: live };
}
