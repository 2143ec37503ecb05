// promote, the lineage check: a standby is promoted only if it really is a copy of the cluster it replaces and has
// replayed what that cluster is known to have written. Modelled on CloudNativePG's promotion token (same system
// identifier, timeline not behind, replay at or past the source's last LSN); a mismatch is a refusal naming both
// values, before anything changes, and the standby stays in recovery.
import { siteActivities, siteLongActivities } from '../activity-proxies';
import { PreconditionFailedError } from '../contracts/errors';
import { lossAgainstArchive } from '../contracts/loss';
import { lsnAtOrAfter } from '../contracts/lsn';
import type { ApprovalRecord, LossEstimate } from '../contracts/runbooks';
import type { ApprovalGate } from './approval-gate';
import { failureFacts, refuse } from './failures';
import type { Assessment, PromotionPlan } from './promote-assess';
import { liftFence, type Fence } from './promote-fence';
import type { RunbookRecord } from './runbook-record';
import type { ArchiveLineage } from '../../activities/s3/archive-lineage';

/** Whose data the standby must hold, from every witness that answers, each named for the refusal. */
interface Witness {
  what: string;
  systemIdentifier: string | null;
  timeline: number | null;
}

/**
 * Identity and timeline, checked against what provision-standby recorded on the standby, the live source when it
 * answers, and the source's archive when it does not (its newest backup's sentinel and newest WAL segment).
 */
export async function checkLineage(record: RunbookRecord, plan: PromotionPlan, seen: Assessment): Promise<void> {
  const source = plan.source!;
  const recorded = plan.target.facts.standbySource;
  const witnesses: Witness[] = [];
  if (recorded?.sourceSystemIdentifier || recorded?.sourceTimeline) {
    witnesses.push({
      what: `recorded on ${plan.target.ref} when it was provisioned`,
      systemIdentifier: recorded.sourceSystemIdentifier ?? null, timeline: recorded.sourceTimeline ?? null,
    });
  }
  const liveSource = seen.source && !seen.source.inRecovery ? seen.source : null;
  if (liveSource) {
    witnesses.push({ what: `the live source ${source.ref}`, systemIdentifier: liveSource.systemIdentifier, timeline: liveSource.timeline });
  } else {
    const archive = await readArchive(record, plan);
    if (archive) {
      witnesses.push({
        what: `the source archive ${recorded!.walPrefix}${archive.backupName ? ` (backup ${archive.backupName})` : ''}`,
        systemIdentifier: archive.systemIdentifier, timeline: archive.lastWal?.timeline ?? null,
      });
    }
  }
  const standby = seen.standby;
  for (const w of witnesses) {
    if (w.systemIdentifier && w.systemIdentifier !== standby.systemIdentifier) {
      refuse(new PreconditionFailedError(
        `lineage mismatch: ${plan.target.ref} is database system ${standby.systemIdentifier}, but ${w.what} its source ${source.ref} is system ` +
        `${w.systemIdentifier}: it is not a copy of ${source.ref} (built from another cluster's backup?). Not promoted, it stays in recovery; ` +
        `rebuild it with provision-standby from ${source.ref}`,
        { standbySystemIdentifier: standby.systemIdentifier, sourceSystemIdentifier: w.systemIdentifier, witness: w.what },
      ));
    }
  }
  const newest = witnesses.reduce<Witness | null>((best, w) => (w.timeline !== null && (!best || w.timeline > best.timeline!) ? w : best), null);
  if (newest && standby.timeline < newest.timeline!) {
    refuse(new PreconditionFailedError(
      `lineage mismatch: ${plan.target.ref} is on timeline ${standby.timeline}, behind timeline ${newest.timeline} of its source ${source.ref} ` +
      `(${newest.what}): promoting it would fork history the source already left. Not promoted, it stays in recovery; let it follow ` +
      `timeline ${newest.timeline} (or rebuild it with provision-standby)`,
      { standbyTimeline: standby.timeline, sourceTimeline: newest.timeline, witness: newest.what },
    ));
  }
  const verified = witnesses.filter((w) => w.systemIdentifier).map((w) => w.what);
  record.step('check-lineage', verified.length ? 'done' : 'skipped', verified.length
    ? `${plan.target.ref} descends from ${source.ref}: system ${standby.systemIdentifier} as ${verified.join(' and ')}; timeline ${standby.timeline}` +
      `${newest ? ` not behind the source's ${newest.timeline}` : ''}.`
    : `No witness of ${source.ref}'s system identifier (not recorded at provisioning, source and archive silent): ${plan.target.ref}'s lineage ` +
      `(system ${standby.systemIdentifier}, timeline ${standby.timeline}) could not be compared.`,
    { standbySystemIdentifier: standby.systemIdentifier, standbyTimeline: standby.timeline, witnesses });
}

async function readArchive(record: RunbookRecord, plan: PromotionPlan): Promise<ArchiveLineage | null> {
  const walPrefix = plan.target.facts.standbySource?.walPrefix;
  if (!walPrefix) return null;
  try {
    return await siteActivities(plan.target.site).s3ArchiveLineage({ archiveSite: plan.source!.site, walPrefix });
  } catch (err) {
    record.step('read-source-archive', 'failed', `Could not read ${walPrefix} to check the lineage: ${failureFacts(err).message}`);
    return null;
  }
}

/**
 * Right before promoting: the standby has replayed what the old side is known to have written. Planned: the old
 * primary's shutdown checkpoint. Otherwise: the end of the newest WAL segment in the source's archive, waited for
 * (bounded, heartbeating); if replay cannot get there, the gate asks again with the loss measured now.
 */
export async function proveReplay(
  record: RunbookRecord, gate: ApprovalGate, plan: PromotionPlan, fence: Fence, estimate: LossEstimate, approval: ApprovalRecord,
): Promise<{ estimate: LossEstimate; approval: ApprovalRecord }> {
  const finalLsn = plan.mode === 'planned' ? fence.result?.finalLsn : null;
  if (finalLsn) {
    // The catch-up after the fence measured replay against this very checkpoint: no second read on the switchover's
    // critical path. Anything else (no catch-up result) is read now.
    const pos = estimate.sourceLsn === finalLsn && lsnAtOrAfter(estimate.standbyReplayedLsn, finalLsn)
      ? { lsn: estimate.standbyReplayedLsn, inRecovery: true }
      : await siteActivities(plan.target.site).postgresCurrentPosition({ ref: plan.target.ref });
    if (!pos.inRecovery || !lsnAtOrAfter(pos.lsn, finalLsn)) {
      await liftFence(record, plan, fence, 'the standby has not replayed up to the shutdown checkpoint');
      refuse(new PreconditionFailedError(
        `${plan.target.ref} replayed to ${pos.lsn}${pos.inRecovery ? '' : ' and is not in recovery'}, not at or past ${plan.source!.ref}'s shutdown checkpoint ` +
        `${finalLsn}: not promoted`,
        { replayedLsn: pos.lsn, finalLsn, inRecovery: pos.inRecovery },
      ));
    }
    record.step('check-replay', 'done', `${plan.target.ref} replayed to ${pos.lsn}, at or past ${plan.source!.ref}'s shutdown checkpoint ${finalLsn}.`,
      { replayedLsn: pos.lsn, finalLsn });
    return { estimate, approval };
  }
  const walPrefix = plan.target.facts.standbySource?.walPrefix;
  if (!walPrefix) {
    record.step('check-replay', 'skipped', `${plan.target.ref} does not replay from an archive: nothing archived to wait for.`);
    return { estimate, approval };
  }
  // Read now, not at the assessment: a source that still ran may have archived more since.
  const archived = await siteActivities(plan.target.site).s3LastArchivedWal({ archiveSite: plan.source!.site, walPrefix });
  if (!archived) {
    record.step('check-replay', 'skipped', `${walPrefix} holds no WAL segment: nothing archived to wait for.`);
    return { estimate, approval };
  }
  record.waiting(`${plan.target.ref} to replay the source archive up to ${archived.endLsn} (${archived.segment})`);
  try {
    const r = await siteLongActivities(plan.target.site, plan.catchUpTimeoutSeconds).postgresWaitForReplay({
      ref: plan.target.ref, targetLsn: archived.endLsn, timeoutSeconds: plan.catchUpTimeoutSeconds, pollIntervalSeconds: 1,
    });
    record.waiting(undefined);
    record.step('check-replay', 'done', `${plan.target.ref} replayed to ${r.replayedLsn}, at or past the end of the source archive ${archived.endLsn} (${archived.segment}).`,
      { replayedLsn: r.replayedLsn, archiveEndLsn: archived.endLsn, segment: archived.segment });
    return { estimate, approval };
  } catch (err) {
    record.waiting(undefined);
    const f = failureFacts(err);
    if (f.type !== 'WaitTimedOutError') throw err;
    record.step('check-replay', 'failed', `${plan.target.ref} did not replay the source archive up to ${archived.endLsn} within ${plan.catchUpTimeoutSeconds}s: ${f.message}`);
  }
  // The approval was given for the loss estimated before; the human decides again on the loss measured now.
  const pos = await siteActivities(plan.target.site).postgresCurrentPosition({ ref: plan.target.ref });
  const measured = lossAgainstArchive(pos, archived, plan);
  const again = await gate.decide({
    gate: 'promote',
    runbook: 'promote',
    cluster: plan.target.ref,
    plan: `Promote ${plan.target.ref} to primary (${plan.mode}) although it replayed only to ${pos.lsn}: the source archive holds WAL up to ${archived.endLsn} ` +
      `that it could not replay within ${plan.catchUpTimeoutSeconds}s (restore from ${walPrefix} failing or slow?). Measured loss ${measured.bytes} bytes` +
      ` / ${measured.seconds ?? '?'} s; old primary ${plan.source!.ref} fence ${fence.state}. Until decided it stays in recovery and keeps replaying.`,
    estimate: measured,
    fence: fence.state,
    requires: { acknowledgeDataLoss: !measured.withinPolicy, acknowledgeUnconfirmedFence: fence.state === 'UNCONFIRMED' },
  }, plan.approvalTimeoutSeconds, {
    what: `promoting ${plan.target.ref} short of its source archive`,
    abortedMeans: 'nothing was promoted',
    nextStep: `check that ${plan.target.site} can read ${walPrefix}, then start promote ${plan.target.ref} again`,
    undo: (why) => liftFence(record, plan, fence, why),
  });
  return { estimate: measured, approval: again };
}
