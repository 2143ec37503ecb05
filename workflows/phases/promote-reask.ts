// promote, planned switchover whose fence did not prove "zero loss": the approval was given for a switch in which
// the old primary stops, the standby replays all of its WAL and only then is promoted. When the fence fails (the
// old primary's site stopped answering after the approval) or gives no final LSN, that promise is gone, and the old
// primary may still be a writable primary. Nothing is promoted on that approval: the loss is measured again from
// what is known of the source, and the gate opens again with the real fence state, requiring the human to
// acknowledge both the unconfirmed fence and the loss. A rejection or timeout lifts a fence this run set.
import { siteActivities } from '../activity-proxies';
import { lsnAtOrAfter } from '../contracts/lsn';
import { lossAgainstArchive } from '../contracts/loss';
import type { ApprovalRecord, LossEstimate } from '../contracts/runbooks';
import { failureFacts } from './failures';
import { liftFence, type Fence } from './promote-fence';
import type { ApprovalGate } from './approval-gate';
import type { PromotionPlan } from './promote-assess';
import type { RunbookRecord } from './runbook-record';

/** No amount of loss is within it: a source not confirmed stopped may have written more than anything measured. */
const NO_POLICY = { maxBytes: -1, maxSeconds: -1 };

/** Whether a switchover's early approval still stands: the old primary confirmed stopped and replayed to its end. */
export function zeroLossProven(fence: Fence, caughtUp: boolean): boolean {
  return fence.state === 'CONFIRMED' && !!fence.result?.finalLsn && caughtUp;
}

/**
 * The loss the runbook can now prove a lower bound for: the standby's replay against the furthest position known
 * of the source (the live position measured at the assessment, or the end of its archive, whichever is later).
 * Never "within policy": a source that was not confirmed stopped may have written more since.
 */
export async function remeasureLoss(record: RunbookRecord, plan: PromotionPlan, assessed: LossEstimate): Promise<LossEstimate> {
  const standby = await siteActivities(plan.target.site).postgresCurrentPosition({ ref: plan.target.ref });
  const walPrefix = plan.target.facts.standbySource?.walPrefix;
  let archived: Awaited<ReturnType<ReturnType<typeof siteActivities>['s3LastArchivedWal']>> = null;
  let archiveWhy = walPrefix ? '' : 'the standby records no archive of its source';
  try {
    if (walPrefix) archived = await siteActivities(plan.target.site).s3LastArchivedWal({ archiveSite: plan.source!.site, walPrefix });
  } catch (err) {
    archiveWhy = failureFacts(err).message;
  }
  const live = assessed.sourceLsn;
  const useArchive = !!archived && (!live || lsnAtOrAfter(archived.endLsn, live));
  // The archive's arithmetic, on whichever end is later (a live position has no commit time to count seconds to).
  const furthest = useArchive ? archived : live ? { endLsn: live, archivedAt: null } : null;
  const estimate: LossEstimate = {
    ...lossAgainstArchive(standby, furthest, NO_POLICY),
    basis: useArchive ? 'archive' : live ? 'source' : 'none',
    withinPolicy: false,
  };
  record.step('re-measure-loss', 'done',
    `Standby ${plan.target.ref} replayed ${standby.lsn}; last known of ${plan.source!.ref}: live ${live ?? 'never measured'} at the assessment, ` +
    `archive end ${archived?.endLsn ?? `unknown${archiveWhy ? ` (${archiveWhy})` : ''}`}: at least ${estimate.bytes ?? 'unknown'} bytes behind, ` +
    'plus whatever it wrote after that if it still takes writes.',
    { ...estimate, archiveEndLsn: archived?.endLsn ?? null, liveLsnAtAssessment: live });
  return estimate;
}

export async function reaskAfterUnprovenFence(
  record: RunbookRecord, gate: ApprovalGate, plan: PromotionPlan, assessed: LossEstimate, fence: Fence, caughtUp: boolean,
): Promise<{ approval: ApprovalRecord; estimate: LossEstimate }> {
  const source = plan.source!;
  const why = fence.state !== 'CONFIRMED'
    ? `${source.ref} is NOT confirmed fenced (its site did not answer the fence) and may still take writes`
    : `${source.ref} was fenced but reported no final LSN${caughtUp ? '' : ', so the standby\'s catch-up cannot be checked'}`;
  record.step('re-ask', 'waiting',
    `The approval was for a zero-loss switchover; ${why}. Nothing is promoted on it: asking again with the fence state and the measured loss.`,
    { fence: fence.state, finalLsn: fence.result?.finalLsn ?? null });
  const estimate = await remeasureLoss(record, plan, assessed);
  const loss = `${estimate.bytes ?? 'unknown'} bytes${estimate.seconds === null ? '' : ` / ${estimate.seconds} s`}`;
  const approval = await gate.decide({
    gate: 'promote',
    runbook: 'promote',
    cluster: plan.target.ref,
    plan: `The planned switchover to ${plan.target.ref} was approved, but ${why}` +
      `${fence.state !== 'CONFIRMED' ? ' (NOT confirmed fenced)' : ''}. Promoting ${plan.target.ref} now loses at least ${loss} ` +
      `(what ${source.ref} wrote after ${estimate.sourceLsn ?? 'the last known position'}${fence.state !== 'CONFIRMED' ? ', plus anything it writes until it is fenced' : ''})` +
      `${fence.state !== 'CONFIRMED' ? `, and ${source.ref} may take writes as a second primary until fence-guard fences it when its site answers` : ''}. ` +
      `Approve to promote anyway (acknowledging the loss${fence.state !== 'CONFIRMED' ? ' and the unconfirmed fence' : ''}); reject to promote nothing.`,
    estimate,
    fence: fence.state,
    requires: { acknowledgeDataLoss: true, acknowledgeUnconfirmedFence: fence.state !== 'CONFIRMED' },
  }, plan.approvalTimeoutSeconds, {
    what: `promoting ${plan.target.ref} without a confirmed zero-loss fence`,
    abortedMeans: `nothing was promoted; ${fence.fencedByUs ? `the fence on ${source.ref} was lifted` : `${source.ref} was not fenced by this run${fence.state !== 'CONFIRMED' ? ' (check that its site is healthy)' : ''}`}`,
    nextStep: `check ${source.ref}'s site, then start promote ${plan.target.ref} again, or decide not to promote`,
    undo: (w) => liftFence(record, plan, fence, w),
  });
  return { approval, estimate };
}
