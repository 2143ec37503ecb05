// fence-guard: after an unplanned promotion whose fence was UNCONFIRMED, wait for the old primary's site to come
// back and fence it there before anything writes to it again (its Patroni paused in the DCS, Postgres stopped).
// Started by promote as an abandoned child, so it outlives promote; a failback that rejoined the old primary
// first makes it stand down.
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { SiteActivities } from '../activities';
import { parseClusterRef } from './contracts/clusters';
import { NON_RETRYABLE_ERROR_TYPES } from './contracts/errors';
import { RUNBOOK_NAMES } from './contracts/runbooks';
import { siteTaskQueue } from './contracts/task-queues';
import { check } from './phases/failures';
import { RunbookRecord } from './phases/runbook-record';

export interface FenceGuardInput {
  /** The old primary to fence when its site answers again. */
  cluster: string;
  /** The cluster promoted in its place: if the old primary already follows it, there is nothing to fence. */
  promoted: string;
  /** How long to keep waiting for the site. Default 168 (a week). */
  maxHours?: number;
  /** The fencing epoch of the promotion that left this guard: its fence is refused once a newer promotion stored a higher one. */
  epoch?: number;
}

export async function fenceGuard(input: FenceGuardInput): Promise<{ fenced: boolean; detail: string }> {
  const record = new RunbookRecord(RUNBOOK_NAMES.fenceGuard, String(input?.cluster ?? 'unknown'));
  const { site } = check(() => parseClusterRef(input.cluster));
  // No scheduleToStart limit: the task waits in the site's queue until the site's worker is back.
  const atSite = proxyActivities<SiteActivities>({
    taskQueue: siteTaskQueue(site, workflowInfo().taskQueue),
    scheduleToCloseTimeout: `${input.maxHours ?? 168}h`,
    startToCloseTimeout: '3m',
    retry: { initialInterval: '5s', maximumInterval: '1m', backoffCoefficient: 2, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
  });
  return record.phase('fence-when-back', async () => {
    record.waiting(`site ${site} to answer, to fence ${input.cluster}`);
    const facts = await atSite.siteDescribeCluster({ ref: input.cluster });
    if (facts?.standbySource?.sourceRef === input.promoted) {
      const detail = `${input.cluster} already follows ${input.promoted}: nothing to fence.`;
      record.step('fence-old-primary', 'already', detail);
      record.finish('already');
      return { fenced: false, detail };
    }
    const fence = await atSite.siteFenceCluster({ ref: input.cluster, ...(input.epoch === undefined ? {} : { epoch: input.epoch }) });
    record.waiting(undefined);
    record.step('fence-old-primary', fence.confirmed ? 'done' : 'failed', `${input.cluster} is back: ${fence.detail}`, { confirmed: fence.confirmed });
    record.finish(fence.confirmed ? 'succeeded' : 'failed');
    return { fenced: fence.confirmed, detail: fence.detail };
  });
}
