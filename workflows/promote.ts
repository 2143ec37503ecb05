// promote: make a standby cluster the primary, the way a careful human would: measure the loss, fence the old
// primary, get an explicit approval, promote, prove it takes writes, rejoin the old side (planned), and take
// and prove the first backup of the new timeline.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { executeChild, ParentClosePolicy, patched, startChild, workflowInfo } from '@temporalio/workflow';
import { siteActivities, siteLongActivities } from './activity-proxies';
import { PreconditionFailedError } from './contracts/errors';
import { lsnDiff } from './contracts/lsn';
import {
  RUNBOOK_NAMES, runbookWorkflowId,
  type ApprovalRecord, type ForceBackupResult, type PromoteInput, type PromoteResult,
} from './contracts/runbooks';
import { ApprovalGate } from './phases/approval-gate';
import { refuse } from './phases/failures';
import { assessLoss, validatePromotion, type PromotionPlan } from './phases/promote-assess';
import { awaitPromotionApproval, fenceOldPrimary, NOT_YET_FENCED, type Fence } from './phases/promote-fence';
import type { FinalWalPath } from './phases/promote-final-wal';
import { nextEpoch, withEpoch } from './phases/fencing-epoch';
import { checkArchive } from './phases/archive-check';
import { checkLineage, proveReplay } from './phases/promote-lineage';
import { reaskAfterUnprovenFence, zeroLossProven } from './phases/promote-reask';
import { RunbookRecord } from './phases/runbook-record';
import { keepStandbySlot, manageStandbySlots, releaseStandbySlot } from './phases/standby-slots';
import type { forceBackup } from './force-backup';
import type { fenceGuard } from './fence-guard';
import type { ArchiveLocation } from '../activities/sites/site-driver';

export async function promote(input: PromoteInput): Promise<PromoteResult> {
  const record = new RunbookRecord(RUNBOOK_NAMES.promote, String(input?.cluster ?? 'unknown'));
  const gate = new ApprovalGate(record);
  // From the fence on, a failure is a failure of the promotion, never a refusal before any change.
  let changing = false;
  try {
    const plan = await record.phase('validate', () => validatePromotion(record, input));
    await gate.identifyRequester(input.requesterIdToken);
    if (plan.alreadyPromoted) return finishAlreadyPromoted(record, plan);
    const assessed = await record.phase('assess', () => assessLoss(record, plan));
    // Runs started before the lineage check existed replay without its activities (patch marker).
    const lineage = patched('promote-lineage-check');
    if (lineage) await record.phase('lineage', () => checkLineage(record, plan, assessed));
    // A planned switchover asks before it fences, so the old primary stops taking writes only for the switch
    // itself, not while a human reads the plan. Runs started before this change fenced first (patch marker).
    const approveFirst = plan.mode === 'planned' && patched('planned-approval-before-fence');
    const earlyApproval = approveFirst
      ? await record.phase('approve', () => awaitPromotionApproval(record, gate, plan, assessed.estimate, NOT_YET_FENCED))
      : null;
    changing = true;
    const fenced = await record.phase('fence', async () => {
      // Runs started before fencing epochs existed carry none (patch marker): their activities act as before.
      const epoch = patched('fencing-epoch')
        ? await nextEpoch(record, plan.target, plan.source, { otherReachable: assessed.estimate.sourceReachable, regionTimeoutSeconds: plan.regionTimeoutSeconds })
        : undefined;
      return { ...(await fenceOldPrimary(record, plan, assessed.estimate, epoch)), epoch };
    });
    const { fence, epoch } = fenced;
    let { estimate } = fenced;
    let approval = earlyApproval ?? await record.phase('approve', () => awaitPromotionApproval(record, gate, plan, estimate, fence));
    // The early approval was for "planned, zero loss": when the fence did not prove it, it promotes nothing. The
    // human decides again with the fence state and the measured loss (runs before this change promoted on it).
    if (earlyApproval && !zeroLossProven(fence, fenced.caughtUp) && patched('planned-unproven-fence-asks-again')) {
      ({ approval, estimate } = await record.phase('re-approve', () => reaskAfterUnprovenFence(record, gate, plan, assessed.estimate, fence, fenced.caughtUp)));
    }
    // The standby must hold what it replaces: the old primary's shutdown checkpoint (planned) or the archive's end.
    if (lineage) ({ estimate, approval } = await record.phase('prove-replay', () => proveReplay(record, gate, plan, fence, estimate, approval)));
    // An old primary that may still take writes is guarded before anything else can write: fence-guard fences it
    // the moment its site answers, even while this run is still promoting (runs before this change started it last).
    const guardFirst = fence.state === 'UNCONFIRMED' && patched('fence-guard-before-promotion');
    const earlyGuard = guardFirst ? await guardOldPrimary(record, plan, assessed.standbyTimeline + 1, epoch) : null;
    const promotePath = await record.phase('promote', () => promoteStandby(record, plan, epoch));
    const writable = await record.phase('verify', () => verifyPromoted(record, plan, assessed.standbyTimeline));
    // Writes stopped at the fence only if it stopped the old primary cleanly: an unconfirmed one may never have
    // stopped, and one that crashed before the fence (no final LSN) stopped at a moment nobody measured.
    const writeDowntimeMs = plan.mode === 'planned' && zeroLossProven(fence, fenced.caughtUp) && fence.startedAt !== null
      ? Date.parse(writable.writtenAt) - fence.startedAt : null;
    if (plan.mode === 'planned') await record.phase('rejoin-old-primary', () => rejoinOldPrimary(record, plan, fence, epoch, fenced.finalWal));
    const backup = plan.takeBackup ? await record.phase('first-backup', () => takeFirstBackup(record, plan, writable.lsn)) : null;
    // The new timeline's history starts in this prefix with that backup: WAL-G checks a restore of it reaches now.
    const archiveCheck = backup && patched('archive-check')
      ? await record.phase('check-archive', () => checkArchive(record, RUNBOOK_NAMES.promote, {
        site: plan.target.site, archiveSite: plan.target.site, walPrefix: plan.target.facts.archive.walPrefix, backupName: backup.backupName, clusterRef: plan.target.ref,
      }, `First backup ${backup.backupName} of ${plan.target.ref}`))
      : null;
    const guard = earlyGuard ?? (fence.state === 'UNCONFIRMED' ? await guardOldPrimary(record, plan, null, epoch) : null);
    const rtoMs = Date.parse(writable.writtenAt) - Date.parse(approval.at);
    const measuredRpoBytes = fence.result?.finalLsn ? Math.max(0, lsnDiff(fence.result.finalLsn, estimate.standbyReplayedLsn)) : null;
    record.step('report', 'done',
      `Promoted ${plan.target.ref}: writable ${rtoMs} ms after approval by ${approval.approver}, timeline ${assessed.standbyTimeline} -> ${writable.timeline}, ` +
      `loss ${measuredRpoBytes ?? estimate.bytes ?? 'unknown'} bytes${measuredRpoBytes === null ? ' (estimated)' : ''}, fence ${fence.state}` +
      `${writeDowntimeMs === null ? '' : `, writes stopped for ${writeDowntimeMs} ms`}${fenced.finalWal === 'archived' ? ', final WAL through the archive' : ''}${backup ? `, first backup ${backup.backupName}` : ''}.`);
    record.finish('succeeded');
    return {
      cluster: plan.target.ref, source: plan.source?.ref ?? null, mode: plan.mode, alreadyPromoted: false, estimate,
      fence: fence.state, approval, timelineBefore: assessed.standbyTimeline, timelineAfter: writable.timeline,
      rtoMs, writeDowntimeMs, measuredRpoBytes, backup, archiveCheck, ...(fenced.finalWal ? { finalWal: fenced.finalWal } : {}), fenceGuard: guard, fencingEpoch: epoch ?? null, promotePath,
      ...(fence.demotePath ? { demotePath: fence.demotePath } : {}), phaseDurationsMs: record.durations(),
    };
  } catch (err) {
    record.failed(err, { changedAnything: changing });
    throw err;
  }
}

function finishAlreadyPromoted(record: RunbookRecord, plan: PromotionPlan): PromoteResult {
  record.finish('already');
  return {
    cluster: plan.target.ref, source: plan.source?.ref ?? null, mode: plan.mode, alreadyPromoted: true, estimate: null,
    fence: 'NOT_NEEDED', approval: null as ApprovalRecord | null, timelineBefore: null, timelineAfter: 0,
    rtoMs: null, writeDowntimeMs: null, measuredRpoBytes: null, backup: null, fenceGuard: null, fencingEpoch: null, phaseDurationsMs: record.durations(),
  };
}

/** The old primary could not be fenced: leave a guard that fences it the moment its site answers again. */
async function guardOldPrimary(
  record: RunbookRecord, plan: PromotionPlan, promotedTimeline: number | null, epoch: number | undefined,
): Promise<string> {
  const workflowId = runbookWorkflowId(RUNBOOK_NAMES.fenceGuard, plan.source!.ref);
  try {
    await startChild<typeof fenceGuard>('fenceGuard', {
      workflowId,
      taskQueue: workflowInfo().taskQueue,
      parentClosePolicy: ParentClosePolicy.ABANDON,
      args: [{ cluster: plan.source!.ref, promoted: plan.target.ref, ...(promotedTimeline === null ? {} : { promotedTimeline }), ...withEpoch(epoch) }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    record.step('guard-old-primary', 'already', `${workflowId} already guards ${plan.source!.ref}.`);
    return workflowId;
  }
  record.step('guard-old-primary', 'waiting', `Left ${workflowId} waiting: it fences ${plan.source!.ref} as soon as its site answers again.`);
  return workflowId;
}

async function promoteStandby(record: RunbookRecord, plan: PromotionPlan, epoch: number | undefined): Promise<string | null> {
  const r = await siteLongActivities(plan.target.site, 300).siteRemoveStandbyConfig({ ref: plan.target.ref, ...withEpoch(epoch) });
  const path = r.promotePath ? ` (${r.promotePath})` : '';
  record.step('remove-standby-config', r.changed ? 'done' : 'already', r.changed
    ? `Removed standby_cluster from ${plan.target.ref}'s Patroni config: its standby leader promoted${path}.`
    : `${plan.target.ref} had no standby_cluster left in Patroni's config (promoted by an earlier attempt)${path}.`,
    r.promotePath ? { promotePath: r.promotePath, patroniVersion: r.patroniVersion ?? null } : undefined);
  return r.promotePath ?? null;
}

async function verifyPromoted(record: RunbookRecord, plan: PromotionPlan, timelineBefore: number) {
  const markerId = `${workflowInfo().workflowId}@${workflowInfo().runId}`;
  const w = await siteLongActivities(plan.target.site, 120).postgresVerifyWritable({ ref: plan.target.ref, markerId, runbook: RUNBOOK_NAMES.promote });
  if (w.timeline <= timelineBefore) {
    refuse(new PreconditionFailedError(`${plan.target.ref} takes writes but is still on timeline ${w.timeline}: it did not promote through Patroni; check it by hand`));
  }
  record.step('verify-writable', 'done', `Wrote and read marker ${markerId} on ${plan.target.ref} at ${w.lsn}, timeline ${timelineBefore} -> ${w.timeline}.`, { ...w });
  return w;
}

async function rejoinOldPrimary(
  record: RunbookRecord, plan: PromotionPlan, fence: Fence, epoch: number | undefined, finalWal: FinalWalPath | null,
): Promise<void> {
  const source = plan.source!;
  if (fence.state !== 'CONFIRMED') {
    record.step('rejoin-old-primary', 'skipped', `${source.ref} was not confirmed fenced: not rejoining it automatically (run failback-reseed).`);
    return;
  }
  const promoted = await siteActivities(plan.target.site).siteDescribeCluster({ ref: plan.target.ref });
  if (finalWal === 'archived') return followThroughArchive(record, plan, promoted!.archive, epoch);
  // The pair turns around: the promoted cluster's slot on the old primary goes, the old primary's on it comes first.
  let slotName: string | undefined;
  if (manageStandbySlots()) {
    await releaseStandbySlot(record, source, plan.target.ref, `${plan.target.ref} was promoted`);
    slotName = await keepStandbySlot(record, plan.target, source.ref);
  }
  const r = await siteLongActivities(source.site, 300).siteDemoteToStandby({
    ref: source.ref, sourceRef: plan.target.ref, fromHost: promoted!.streamingEndpoint, fromArchive: { archive: promoted!.archive }, ...withEpoch(epoch),
    ...(slotName ? { slotName } : {}),
  });
  const native = fence.native ? `, demoted by Patroni's demote-cluster before the promotion, ${r.rewound ? 'but Patroni ran pg_rewind' : 'no pg_rewind'}` : '';
  record.step('rejoin-old-primary', r.changed ? 'done' : 'already',
    `${source.ref} ${r.changed ? 'now follows' : 'already followed'} ${plan.target.ref} as a standby (streaming from ${promoted!.streamingEndpoint.host}:${promoted!.streamingEndpoint.port}${native}).`,
    fence.native ? { follow: 'stream', rewound: r.rewound, demotePath: fence.demotePath ?? null } : undefined);
}

/**
 * The old primary follows the new one the way the standby followed it: from the new primary's archive prefix only
 * (no route between the regions but S3), on the latest timeline. It stopped cleanly at the checkpoint where the new
 * timeline begins, so no pg_rewind runs; the journal says whether Patroni ran one anyway. No slot is kept for it:
 * nothing streams, and an unused slot would hold WAL on the new primary forever.
 */
async function followThroughArchive(record: RunbookRecord, plan: PromotionPlan, archive: ArchiveLocation, epoch: number | undefined): Promise<void> {
  const source = plan.source!;
  if (manageStandbySlots()) await releaseStandbySlot(record, source, plan.target.ref, `${plan.target.ref} was promoted`);
  const r = await siteLongActivities(source.site, 300).siteDemoteToStandby({
    ref: source.ref, sourceRef: plan.target.ref, fromArchive: { archive }, ...withEpoch(epoch),
  });
  record.step('rejoin-old-primary', r.changed ? 'done' : 'already',
    `${source.ref} ${r.changed ? 'now follows' : 'already followed'} ${plan.target.ref} as a standby from its archive ${archive.walPrefix} only ` +
    `(restore_command, latest timeline), ${r.rewound ? 'but Patroni ran pg_rewind' : 'without pg_rewind'}.`,
    { follow: 'archive', walPrefix: archive.walPrefix, rewound: r.rewound });
}

async function takeFirstBackup(record: RunbookRecord, plan: PromotionPlan, notBeforeLsn: string): Promise<ForceBackupResult> {
  record.waiting(`the first base backup of ${plan.target.ref} (child force-backup)`);
  const backup = await executeChild<typeof forceBackup>('forceBackup', {
    workflowId: runbookWorkflowId(RUNBOOK_NAMES.forceBackup, plan.target.ref),
    taskQueue: workflowInfo().taskQueue,
    // Only runs that asked for it pass the field: older histories started the child without it.
    args: [{ cluster: plan.target.ref, notBeforeLsn, ...(plan.verifyBackupByRestore ? { verifyByRestore: true } : {}) }],
  });
  record.waiting(undefined);
  record.step('first-backup', 'done', `First backup of the new timeline: ${backup.backupName} (finish LSN ${backup.finishLsn}, proven by its sentinel${backup.restoreProof ? ` and by restore: ${backup.restoreProof.indexesChecked} btree indexes checked` : ''}).`, { ...backup });
  return backup;
}
