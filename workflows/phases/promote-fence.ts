// promote, the old side and the human. Unplanned: fence the old primary (or find it unreachable), then ask, so
// the human sees the fence state; a rejection or a timeout lifts a fence this run set. Planned: ask first, then
// fence and let the standby replay everything the old primary wrote; if it does not, the fence is lifted.
import { patched } from '@temporalio/workflow';
import { siteActivities, siteLongActivities, siteProbeActivities } from '../activity-proxies';
import type { ApprovalRecord, FenceState, LossEstimate } from '../contracts/runbooks';
import { failureFacts } from './failures';
import { withEpoch } from './fencing-epoch';
import { archiveFinalWal, chooseFinalWalPath, type FinalWalPath } from './promote-final-wal';
import type { ApprovalGate } from './approval-gate';
import { parentApproval } from './parent-approval';
import { NO_PUBLIC_DELEGATION_PATCH } from '../contracts/approvals';
import type { PromotionPlan } from './promote-assess';
import type { RunbookRecord } from './runbook-record';
import { manageStandbySlots } from './standby-slots';
import { standbySlotName } from '../contracts/slots';
import type { FenceResult, SwitchoverStop } from '../../activities/sites/site-driver';

/**
 * A planned switchover whose old primary streams its last WAL to the standby stops that primary's writes with
 * Patroni's own demote-cluster where its Patroni has it (>= 4), else with the fence; runs started before this
 * always fenced (patch marker).
 */
export const NATIVE_DEMOTE_PATCH = 'native-cluster-demotion';

export interface Fence {
  state: FenceState;
  /** Set when this run stopped the old primary, so it can undo that on rejection or timeout. */
  fencedByUs: boolean;
  result: FenceResult | null;
  /** Workflow time the fence was started: the old primary takes no write after it. Null when never started. */
  startedAt: number | null;
  /** The fencing epoch the fence was set under, so lifting it carries the same; absent in runs from before epochs. */
  epoch?: number;
  /**
   * Set when the old primary was demoted by its own Patroni (demote-cluster) instead of fenced: it already follows
   * the standby, and lifting the "fence" means promoting it back. Absent in runs from before it.
   */
  native?: boolean;
  /** Which path stopped its writes (SwitchoverStop.demotePath); absent when the plain fence ran without asking. */
  demotePath?: string;
}

/**
 * `caughtUp`: planned, the standby replayed past the old primary's shutdown checkpoint (the zero-loss proof).
 * `finalWal`: planned, whether that WAL was streamed or went through the archive (promote-final-wal.ts).
 */
export async function fenceOldPrimary(
  record: RunbookRecord, plan: PromotionPlan, estimate: LossEstimate, epoch?: number,
): Promise<{ fence: Fence; estimate: LossEstimate; caughtUp: boolean; finalWal: FinalWalPath | null }> {
  const source = plan.source!;
  // Checked before stopping anything: only a connected receiver gets the old primary's last WAL by streaming.
  const finalWal = plan.mode === 'planned' ? await chooseFinalWalPath(record, plan) : null;
  let result: FenceResult | null = null;
  let stop: SwitchoverStop | null = null;
  let why = '';
  const startedAt = Date.now();
  try {
    const atSource = siteProbeActivities(source.site, plan.regionTimeoutSeconds);
    if (finalWal === 'streamed' && patched(NATIVE_DEMOTE_PATCH)) {
      // Demoted straight into a standby of the promoting cluster, as the rejoin step later asks for (same request).
      const target = plan.target.facts;
      result = stop = await atSource.siteStopWritesForSwitchover({
        ref: source.ref, sourceRef: plan.target.ref, fromHost: target.streamingEndpoint, fromArchive: { archive: target.archive },
        ...(manageStandbySlots() ? { slotName: standbySlotName(source.ref) } : {}), ...withEpoch(epoch),
      });
    } else {
      result = await atSource.siteFenceCluster({ ref: source.ref, ...withEpoch(epoch) });
    }
  } catch (err) {
    why = failureFacts(err).message;
  }
  // A retried fence whose first attempt stopped the source but never reported it says "changed: false". The source
  // answered the assessment, so it ran before this run: confirmed fenced now, the fence is ours to lift on abort.
  // Behind a patch marker, written only when this case arises, so runs from before it replay as they ran.
  const ours = !!result?.changed || (!!result?.confirmed && estimate.sourceReachable && patched('fence-retried-is-ours'));
  const fence: Fence = {
    state: result?.confirmed ? 'CONFIRMED' : 'UNCONFIRMED', fencedByUs: ours, result, startedAt, ...withEpoch(epoch),
    ...(stop ? { native: stop.native, demotePath: stop.demotePath } : {}),
  };
  const how = stop?.native ? `Demoted ${source.ref} into a standby of ${plan.target.ref} (${stop.demotePath})` : `Fenced ${source.ref}${stop ? ` (${stop.demotePath})` : ''}`;
  record.step('fence-old-primary', result?.confirmed ? 'done' : 'failed', result
    ? `${how}: ${result.detail} Fence ${fence.state}${result.finalLsn ? `, last checkpoint ${result.finalLsn}` : ''}.`
    : `Could not fence ${source.ref} (${why}): fence UNCONFIRMED — it may still take writes if its region comes back.`,
    { fence: fence.state, finalLsn: result?.finalLsn ?? null, ...(stop ? { demotePath: stop.demotePath, native: stop.native } : {}) });
  if (plan.mode !== 'planned' || !result?.finalLsn) return { fence, estimate, caughtUp: false, finalWal };
  if (finalWal === 'archived') {
    try {
      await archiveFinalWal(record, plan, { ...result, finalLsn: result.finalLsn }, epoch);
    } catch (err) {
      await liftFence(record, plan, fence, 'its final WAL did not reach the archive');
      throw err;
    }
  }

  // Planned: the standby must replay everything the old primary wrote, up to its shutdown checkpoint. Writes are
  // stopped while it waits, so it looks every 100 ms: usually the standby is there already or within a few.
  let caughtUp;
  try {
    caughtUp = await siteLongActivities(plan.target.site, plan.catchUpTimeoutSeconds).postgresWaitForReplay({
      ref: plan.target.ref, targetLsn: result.finalLsn, timeoutSeconds: plan.catchUpTimeoutSeconds, pollIntervalSeconds: 0.1,
    });
  } catch (err) {
    record.step('catch-up', 'failed', `Standby ${plan.target.ref} did not catch up to ${result.finalLsn}: ${failureFacts(err).message}`);
    await liftFence(record, plan, fence, 'the standby did not catch up');
    throw err;
  }
  record.step('catch-up', 'done', `Standby ${plan.target.ref} replayed to ${caughtUp.replayedLsn}, past the old primary's last checkpoint ${result.finalLsn}` +
    `${finalWal === 'archived' ? ' (fetched from the archive by its restore_command)' : ''}: nothing will be lost.`,
    { replayedLsn: caughtUp.replayedLsn, finalLsn: result.finalLsn, ...(finalWal === 'archived' ? { finalWal } : {}) });
  return {
    fence, caughtUp: true, finalWal,
    estimate: { ...estimate, sourceLsn: result.finalLsn, standbyReplayedLsn: caughtUp.replayedLsn, bytes: 0, seconds: 0, withinPolicy: true },
  };
}

/** The fence a planned switchover shows at its approval: none yet, set only after the human said yes. */
export const NOT_YET_FENCED: Fence = { state: 'PENDING', fencedByUs: false, result: null, startedAt: null };

/** Undo this run's fence: used when a human says no or does not answer. */
export async function liftFence(record: RunbookRecord, plan: PromotionPlan, fence: Fence, why: string): Promise<void> {
  if (!fence.fencedByUs || !plan.source) return;
  if (fence.native) {
    // Demoted by its own Patroni: removing standby_cluster promotes it back (a new timeline where its WAL ended).
    await siteLongActivities(plan.source.site, 300).siteUndoNativeDemotion({ ref: plan.source.ref, ...withEpoch(fence.epoch) });
    record.step('lift-fence', 'done', `Undid the demotion of ${plan.source.ref} (${why}): standby_cluster removed, it takes writes again.`);
    return;
  }
  await siteActivities(plan.source.site).siteUnfenceCluster({ ref: plan.source.ref, ...withEpoch(fence.epoch) });
  record.step('lift-fence', 'done', `Lifted the fence on ${plan.source.ref} (${why}): it runs as before.`);
}

export async function awaitPromotionApproval(
  record: RunbookRecord, gate: ApprovalGate, plan: PromotionPlan, estimate: LossEstimate, fence: Fence,
): Promise<ApprovalRecord> {
  const loss = estimate.bytes === null ? 'unknown' : `${estimate.bytes} bytes / ${estimate.seconds ?? '?'} s`;
  const switchover = fence.state === 'PENDING';
  return gate.decide({
    gate: 'promote',
    runbook: 'promote',
    cluster: plan.target.ref,
    plan: (switchover
      ? `Switch over to ${plan.target.ref} (planned, zero loss): after this approval ${plan.source?.ref} stops taking writes, ` +
        `${plan.target.ref} (now ${loss} behind) replays all of its WAL and is promoted; if it does not catch up, ${plan.source?.ref} takes writes again and nothing is promoted.`
      : `Promote ${plan.target.ref} to primary (${plan.mode}); estimated loss ${loss}; old primary ${plan.source?.ref} fence ${fence.state}.`) +
      (plan.mode === 'planned' ? ` Afterwards ${plan.source?.ref} becomes a standby of ${plan.target.ref}.` : '') +
      (plan.takeBackup ? ' Then a first base backup is taken and proven.' : ''),
    estimate,
    fence: fence.state,
    requires: { acknowledgeDataLoss: !switchover && !estimate.withinPolicy, acknowledgeUnconfirmedFence: fence.state === 'UNCONFIRMED' },
  }, plan.approvalTimeoutSeconds, {
    what: `promoting ${plan.target.ref}`,
    abortedMeans: 'nothing was promoted',
    nextStep: `start promote ${plan.target.ref} again and approve it, or decide not to promote`,
    undo: (why) => liftFence(record, plan, fence, why),
  }, plan.preApproval ?? (patched(NO_PUBLIC_DELEGATION_PATCH) ? await parentApproval(record, plan.target.ref) : null));
}
