// How runbooks reach activities: configuration checks on the control queue, everything that touches a site on
// that site's queue. scheduleToStartTimeout turns a region whose worker is gone into a fast, handled failure.
import { proxyActivities, workflowInfo, type ActivityInterfaceFor, type ActivityOptions } from '@temporalio/workflow';
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
export const control = summarized(proxyActivities<ControlActivities>({
  startToCloseTimeout: '30s',
  retry,
}));

/** What an activity call is about, for the UI's timeline: the cluster(s) its input names. */
function summaryOf(input: unknown): string | undefined {
  const i = (input ?? {}) as Record<string, unknown>;
  if (typeof i.from === 'string' && typeof i.to === 'string') return `${i.from} -> ${i.to}`;
  for (const k of ['ref', 'target', 'cluster', 'clusterRef']) if (typeof i[k] === 'string') return i[k] as string;
  return typeof i.walPrefix === 'string' ? i.walPrefix : undefined;
}

/** Every call carries a summary naming the cluster it touches, so the UI's timeline reads like the runbook. */
function summarized<T>(proxy: ActivityInterfaceFor<T>): ActivityInterfaceFor<T> {
  return new Proxy(proxy, {
    get(target, name) {
      const fn = Reflect.get(target, name) as ActivityInterfaceFor<T>[keyof T] & { executeWithOptions: (o: ActivityOptions, a: unknown[]) => Promise<unknown> };
      const call = (...args: unknown[]) => {
        const summary = summaryOf(args[0]);
        return summary ? fn.executeWithOptions({ summary }, args) : (fn as unknown as (...a: unknown[]) => Promise<unknown>)(...args);
      };
      return Object.assign(call, { executeWithOptions: fn.executeWithOptions });
    },
  });
}

/** Short reads and writes at a site: describe, marker rows, secrets. */
export function siteActivities(site: string) {
  return summarized(proxyActivities<SiteActivities>({
    taskQueue: siteTaskQueue(site, workflowInfo().taskQueue),
    scheduleToStartTimeout: '1m',
    startToCloseTimeout: '2m',
    retry,
  }));
}

/** Long work at a site that heartbeats: creating clusters, waiting for replay, backups. */
export function siteLongActivities(site: string, maxSeconds: number) {
  return summarized(proxyActivities<SiteActivities>({
    taskQueue: siteTaskQueue(site, workflowInfo().taskQueue),
    scheduleToStartTimeout: '1m',
    startToCloseTimeout: `${maxSeconds + 60}s`,
    heartbeatTimeout: '1m',
    retry,
  }));
}

/**
 * Activities at a site that may be lost: few attempts and a short wait for its worker, so a dead region
 * answers "unreachable" quickly instead of holding the runbook.
 */
export function siteProbeActivities(site: string, regionTimeoutSeconds: number) {
  return summarized(proxyActivities<SiteActivities>({
    taskQueue: siteTaskQueue(site, workflowInfo().taskQueue),
    scheduleToStartTimeout: `${regionTimeoutSeconds}s`,
    startToCloseTimeout: '2m',
    retry: { ...retry, maximumAttempts: 2 },
  }));
}
