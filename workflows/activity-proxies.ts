// How runbooks reach activities: configuration checks on the control queue, everything that touches a site on
// that site's queue. scheduleToStartTimeout turns a region whose worker is gone into a fast, handled failure.
import { proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { ControlActivities, SiteActivities } from '../activities';
import { NON_RETRYABLE_ERROR_TYPES } from './contracts/errors';
import { siteTaskQueue } from './contracts/task-queues';

const retry: ActivityOptions['retry'] = {
  initialInterval: '2s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  maximumAttempts: 8,
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
};

// Without a taskQueue, activities go to the runbook's own (control) queue.
export const control = proxyActivities<ControlActivities>({
  startToCloseTimeout: '30s',
  retry,
});

/** Short reads and writes at a site: describe, marker rows, secrets. */
export function siteActivities(site: string) {
  return proxyActivities<SiteActivities>({
    taskQueue: siteTaskQueue(site, workflowInfo().taskQueue),
    scheduleToStartTimeout: '1m',
    startToCloseTimeout: '2m',
    retry,
  });
}

/** Long work at a site that heartbeats: creating clusters, waiting for replay, backups. */
export function siteLongActivities(site: string, maxSeconds: number) {
  return proxyActivities<SiteActivities>({
    taskQueue: siteTaskQueue(site, workflowInfo().taskQueue),
    scheduleToStartTimeout: '1m',
    startToCloseTimeout: `${maxSeconds + 60}s`,
    heartbeatTimeout: '1m',
    retry,
  });
}
