// failback-reseed, before anything changes: which cluster is the primary now, what the former primary holds,
// where the old timeline forked, and whether a rewind can work or the former primary must be reseeded.
import { control, siteActivities, siteProbeActivities } from '../activity-proxies';
import { parseClusterRef, sameCluster, type ClusterRef } from '../contracts/clusters';
import { BadInputError, ClusterNotFoundError, PreconditionFailedError, SiteUnreachableError } from '../contracts/errors';
import { rejectUnknownFields } from '../contracts/input-fields';
import { lsnDiff } from '../contracts/lsn';
import type { FailbackInput, FailbackStrategy } from '../contracts/runbooks';
import { check, failureFacts, refuse } from './failures';
import type { RunbookRecord } from './runbook-record';
import type { ClusterFacts, FormerPrimaryAssessment } from '../../activities/sites/site-driver';

export interface FailbackPlan {
  primary: ClusterRef & { ref: string; facts: ClusterFacts };
  former: ClusterRef & { ref: string; facts: ClusterFacts };
  strategy: FailbackStrategy;
  alreadyRejoined: boolean;
  approvalTimeoutSeconds: number;
  replayTimeoutSeconds: number;
}

export interface FormerPrimaryState {
  assessment: FormerPrimaryAssessment;
  primaryTimeline: number;
  forkLsn: string | null;
  divergentBytes: number | null;
  sameSystem: boolean;
  primarySystemIdentifier: string | null;
}

const STRATEGIES: FailbackStrategy[] = ['auto', 'rewind', 'reseed'];

export async function validateFailback(record: RunbookRecord, input: FailbackInput): Promise<FailbackPlan> {
  const parsed = check(() => {
    if (!input || typeof input !== 'object') {
      throw new BadInputError('input must be a JSON object: {"primary": "us/acid-demo", "formerPrimary": "eu/acid-demo", "strategy": "auto"}');
    }
    rejectUnknownFields<FailbackInput>(input, { primary: true, formerPrimary: true, strategy: true, switchBack: true, retainBackups: true, approvalTimeoutSeconds: true, limits: true, requesterIdToken: true });
    const primary = parseClusterRef(input.primary, 'primary');
    const former = parseClusterRef(input.formerPrimary, 'formerPrimary');
    if (sameCluster(primary, former)) throw new BadInputError('primary and formerPrimary name the same cluster');
    if (!STRATEGIES.includes(input.strategy)) throw new BadInputError(`strategy "${String(input.strategy)}" is not one of ${STRATEGIES.join(', ')}`);
    const approvalTimeoutSeconds = input.approvalTimeoutSeconds ?? 3600;
    if (typeof approvalTimeoutSeconds !== 'number' || !(approvalTimeoutSeconds > 0)) throw new BadInputError('approvalTimeoutSeconds must be > 0');
    if (input.switchBack !== undefined && typeof input.switchBack !== 'boolean') throw new BadInputError('switchBack must be true or false');
    const keep = input.retainBackups;
    if (keep !== undefined && (typeof keep !== 'number' || !Number.isInteger(keep) || keep < 1)) {
      throw new BadInputError(`retainBackups must be a whole number of full backups >= 1 (got ${JSON.stringify(keep)}): leave it out to delete nothing`);
    }
    // Checked here: the wait that uses it comes after the rejoin, too late to refuse.
    for (const [k, v] of Object.entries(input.limits ?? {})) {
      if (typeof v !== 'number' || !(v > 0)) throw new BadInputError(`limits.${k} must be a positive number of seconds`);
    }
    return { primary, former, approvalTimeoutSeconds, replayTimeoutSeconds: input.limits?.replayTimeoutSeconds ?? 1800 };
  });
  await control.siteResolveClusterRefs({ refs: { primary: input.primary, formerPrimary: input.formerPrimary } });
  const [p, f] = await Promise.all([
    siteActivities(parsed.primary.site).siteDescribeCluster({ ref: input.primary }),
    siteActivities(parsed.former.site).siteDescribeCluster({ ref: input.formerPrimary }),
  ]);
  if (!p) refuse(new ClusterNotFoundError(`primary ${input.primary} does not exist`));
  if (!f) refuse(new ClusterNotFoundError(`former primary ${input.formerPrimary} does not exist: provision a new standby instead`));
  if (p.standbySource || p.leaderRole !== 'primary') {
    refuse(new PreconditionFailedError(`${input.primary} is not a writable primary (leader role ${p.leaderRole}${p.standbySource ? ', still a standby cluster' : ''}): promote it first`));
  }
  const alreadyRejoined = f.standbySource?.sourceRef === input.primary;
  record.step('validate-request', alreadyRejoined ? 'already' : 'done', alreadyRejoined
    ? `${input.formerPrimary} already is a standby of ${input.primary}: nothing to rewind or reseed.`
    : `${input.primary} is the primary; ${input.formerPrimary} (leader role ${f.leaderRole}) is to come back as its standby (${input.strategy}).`);
  return {
    primary: { ...parsed.primary, ref: input.primary, facts: p },
    former: { ...parsed.former, ref: input.formerPrimary, facts: f },
    strategy: input.strategy, alreadyRejoined,
    approvalTimeoutSeconds: parsed.approvalTimeoutSeconds, replayTimeoutSeconds: parsed.replayTimeoutSeconds,
  };
}

export async function assessFormerPrimary(record: RunbookRecord, plan: FailbackPlan): Promise<FormerPrimaryState> {
  let assessment: FormerPrimaryAssessment;
  try {
    assessment = await siteProbeActivities(plan.former.site, 60).siteAssessFormerPrimary({ ref: plan.former.ref });
  } catch (err) {
    refuse(new SiteUnreachableError(`${plan.former.ref} cannot be assessed (${failureFacts(err).message}): bring its site back first`));
  }
  const primaryPos = await siteActivities(plan.primary.site).postgresCurrentPosition({ ref: plan.primary.ref });
  const history = assessment.timeline
    ? await siteActivities(plan.primary.site).s3ReadTimelineHistory({
      archiveSite: plan.primary.site, walPrefix: plan.primary.facts.archive.walPrefix,
      timeline: primaryPos.timeline, oldTimeline: assessment.timeline,
    })
    : null;
  const forkLsn = history?.forkLsn ?? null;
  const divergentBytes = forkLsn && assessment.lastLsn ? Math.max(0, lsnDiff(assessment.lastLsn, forkLsn)) : null;
  const sameSystem = assessment.systemIdentifier !== null && assessment.systemIdentifier === primaryPos.systemIdentifier;
  record.step('assess-former-primary', 'done',
    `${plan.former.ref} (${assessment.running ? 'running' : 'stopped'}, ${assessment.clusterState ?? 'state unknown'}) is on timeline ${assessment.timeline} up to ${assessment.lastLsn}; ` +
    `${plan.primary.ref} forked from it at ${forkLsn ?? 'an unknown point'} onto timeline ${primaryPos.timeline}: ` +
    `${divergentBytes ?? 'unknown'} bytes of WAL never reached ${plan.primary.ref}; system ${sameSystem ? 'identical' : 'DIFFERENT'}, wal_log_hints ${assessment.walLogHints}, checksums ${assessment.dataChecksums}.`,
    { ...assessment, forkLsn, divergentBytes, primaryTimeline: primaryPos.timeline, sameSystem });
  return { assessment, primaryTimeline: primaryPos.timeline, forkLsn, divergentBytes, sameSystem, primarySystemIdentifier: primaryPos.systemIdentifier ?? null };
}

/** rewind when it can work, reseed otherwise; an explicit strategy that cannot work is refused, nothing changed. */
export function chooseStrategy(record: RunbookRecord, plan: FailbackPlan, s: FormerPrimaryState): { strategy: 'rewind' | 'reseed'; reason: string } {
  // Both identifiers known and different: the two never shared a history, so this is not a failback, and a reseed
  // would wipe an unrelated cluster (after fencing it in "protect"). Unknown (pg_control unreadable) is not proof.
  const formerSystem = s.assessment.systemIdentifier;
  if (formerSystem && s.primarySystemIdentifier && formerSystem !== s.primarySystemIdentifier) {
    refuse(new PreconditionFailedError(
      `${plan.former.ref} is not a former primary of ${plan.primary.ref}: its system identifier ${formerSystem} differs from ${s.primarySystemIdentifier}, so it never shared a history with it; ` +
        `name the cluster ${plan.primary.ref} was promoted from as "formerPrimary" (to make an unrelated cluster a standby, delete it and run provision-standby)`,
    ));
  }
  const blockers = [
    s.sameSystem ? '' : 'its system identifier differs from the primary\'s',
    s.assessment.walLogHints || s.assessment.dataChecksums ? '' : 'neither wal_log_hints nor data checksums are on',
    s.forkLsn ? '' : `the primary's archive has no timeline history reaching timeline ${s.assessment.timeline}`,
  ].filter(Boolean);
  if (plan.strategy === 'rewind' && blockers.length > 0) {
    refuse(new PreconditionFailedError(`a rewind of ${plan.former.ref} cannot work: ${blockers.join('; ')}; use strategy "reseed" or "auto"`));
  }
  const strategy = plan.strategy === 'reseed' || blockers.length > 0 ? 'reseed' : 'rewind';
  const reason = plan.strategy !== 'auto'
    ? `asked for ${plan.strategy}`
    : strategy === 'rewind'
      ? 'same system, rewind prerequisites on, fork point known: pg_rewind keeps the data and copies only what changed'
      : `rewind impossible (${blockers.join('; ')})`;
  record.step('choose-strategy', 'done', `Chose ${strategy} for ${plan.former.ref}: ${reason}.`, { strategy, reason });
  return { strategy, reason };
}
