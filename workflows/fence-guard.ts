// fence-guard: left by a promotion whose fence was UNCONFIRMED (started before the promotion), it waits for the old
// primary's site to come back and fences it there before anything writes to it again (its Patroni paused in the
// DCS, Postgres stopped). Started by promote as an abandoned child, so it outlives promote. It stands down when the
// old primary already follows the promoted cluster, or has legitimately become the primary again (switchback). It
// never ends silently: a round that sees no site within maxHours, or a fence that is not confirmed, pages a human
// and the guard keeps going (continue-as-new).
import { ActivityFailure, ApplicationFailure, continueAsNew, patched, proxyActivities, sleep, TimeoutFailure, workflowInfo } from '@temporalio/workflow';
import type { SiteActivities } from '../activities';
import { control } from './activity-proxies';
import { NON_RETRYABLE_ERROR_TYPES } from './contracts/errors';
import type { JournalEntry } from './contracts/journal';
import { RUNBOOK_NAMES } from './contracts/runbooks';
import { siteTaskQueue } from './contracts/task-queues';
import { legitimatePrimaryAgain, validateGuardInput, type FenceGuardInput, type GuardPlan } from './phases/fence-guard-checks';
import { RunbookRecord } from './phases/runbook-record';
import { requireStarterAuthority } from './phases/verified-decision';
import { STARTER_AUTHORITY_PATCH } from './contracts/approvals';

export type { FenceGuardInput };

export interface FenceGuardResult {
  fenced: boolean;
  detail: string;
}

/** What a continued guard carries: its round, its journal, and the last page it sent (not repeated every minute). */
export interface FenceGuardCarried {
  round: number;
  journal: JournalEntry[];
  lastPage: string | null;
}

export async function fenceGuard(input: FenceGuardInput, carried?: FenceGuardCarried): Promise<FenceGuardResult> {
  const record = new RunbookRecord(RUNBOOK_NAMES.fenceGuard, String(input?.cluster ?? 'unknown'));
  if (carried) record.restore(carried.journal, {});
  // Guards started before this version waited, fenced and ended; the marker keeps their histories replaying.
  const checked = patched('fence-guard-checked');
  let plan: GuardPlan;
  try {
    plan = validateGuardInput(input);
    if (checked) await control.siteResolveClusterRefs({ refs: { cluster: plan.cluster.ref, promoted: plan.promoted.ref } });
    // A guard fences a primary when its site answers: whoever starts one by hand needs the promotion's authority.
    if (!carried && patched(STARTER_AUTHORITY_PATCH)) {
      await requireStarterAuthority(record, input.requesterIdToken, { runbook: RUNBOOK_NAMES.promote, target: plan.promoted.ref, gate: 'promote' },
        `starting fence-guard of ${plan.cluster.ref}`);
    }
  } catch (err) {
    record.failed(err, { changedAnything: false });
    throw err;
  }
  const { site } = plan.cluster;
  // No scheduleToStart limit: the task waits in the site's queue until the site's worker is back.
  const atSite = proxyActivities<SiteActivities>({
    taskQueue: siteTaskQueue(site, workflowInfo().taskQueue),
    scheduleToCloseTimeout: `${plan.maxHours}h`,
    startToCloseTimeout: '3m',
    retry: { initialInterval: '5s', maximumInterval: '1m', backoffCoefficient: 2, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
  });
  const state: FenceGuardCarried = carried ?? { round: 1, journal: [], lastPage: null };
  return record.phase('fence-when-back', async () => {
    record.waiting(`site ${site} to answer, to fence ${plan.cluster.ref} (round ${state.round}, up to ${plan.maxHours} h)`);
    let facts;
    try {
      facts = await atSite.siteDescribeCluster({ ref: plan.cluster.ref });
    } catch (err) {
      if (!checked || !(err instanceof ActivityFailure && err.cause instanceof TimeoutFailure)) throw err;
      record.waiting(undefined);
      return keepGuarding(record, plan, state, `site ${site} did not answer within ${plan.maxHours} h`, false);
    }
    record.waiting(undefined);
    if (facts?.standbySource?.sourceRef === plan.promoted.ref) {
      const detail = `${plan.cluster.ref} already follows ${plan.promoted.ref}: nothing to fence.`;
      record.step('fence-old-primary', 'already', detail);
      record.finish('already');
      return { fenced: false, detail };
    }
    const standDown = checked && facts ? await legitimatePrimaryAgain(record, plan, facts) : null;
    if (standDown) {
      record.step('stand-down', 'already', standDown);
      record.finish('already');
      return { fenced: false, detail: standDown };
    }
    let fence;
    try {
      fence = await atSite.siteFenceCluster(fenceRequest(plan));
    } catch (err) {
      // A newer promotion of the pair stored a higher epoch: what this guard protected against was decided again.
      if (!checked || !(err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'StaleEpochError')) throw err;
      const detail = `${plan.cluster.ref} carries a newer fencing epoch than this guard's ${plan.epoch}: a later promotion decided its role (${err.cause.message}); standing down.`;
      record.step('stand-down', 'already', detail);
      record.finish('already');
      return { fenced: false, detail };
    }
    record.step('fence-old-primary', fence.confirmed ? 'done' : 'failed', `${plan.cluster.ref} is back: ${fence.detail}`, { confirmed: fence.confirmed });
    if (!fence.confirmed && checked) return keepGuarding(record, plan, state, `the fence of ${plan.cluster.ref} is not confirmed (${fence.detail})`, true);
    record.finish(fence.confirmed ? 'succeeded' : 'failed');
    return { fenced: fence.confirmed, detail: fence.detail };
  });
}

/** The fence call's input, kept in one place so a fencing epoch can be added to it. */
function fenceRequest(plan: GuardPlan): { ref: string; epoch?: number } {
  return { ref: plan.cluster.ref, ...(plan.epoch === null ? {} : { epoch: plan.epoch }) };
}

/**
 * Pages through the same escalation as a failing step, then continues as new: the old primary is still not
 * proven fenced, so the guard must not end. A fence that did not confirm is tried again after a minute.
 */
async function keepGuarding(record: RunbookRecord, plan: GuardPlan, state: FenceGuardCarried, why: string, retrySoon: boolean): Promise<never> {
  const reason = `${plan.cluster.ref} is still not fenced: ${why}; still guarding (fence-guard round ${state.round + 1})`;
  const repeated = retrySoon && state.lastPage === why;
  if (!repeated) {
    await control.notifyEscalation({
      runbook: RUNBOOK_NAMES.fenceGuard, workflowId: workflowInfo().workflowId, cluster: plan.cluster.ref, reason,
      action: `check whether ${plan.cluster.ref} takes writes (it must not while ${plan.promoted.ref} is the primary); bring site ${plan.cluster.site}'s worker back or fence it by hand`,
    });
  }
  record.step('page', repeated ? 'already' : 'done', repeated ? `Still: ${why}; paged already, trying again.` : `Paged: ${reason}.`);
  if (retrySoon) await sleep('1m');
  // The next run carries the whole plan, its epoch above all: without it the guard's fence would act unchecked.
  return continueAsNew<typeof fenceGuard>(
    {
      cluster: plan.cluster.ref, promoted: plan.promoted.ref, maxHours: plan.maxHours,
      ...(plan.promotedTimeline === null ? {} : { promotedTimeline: plan.promotedTimeline }),
      ...(plan.epoch === null ? {} : { epoch: plan.epoch }),
    },
    { round: state.round + 1, journal: record.status().journal.slice(-50), lastPage: why },
  );
}
