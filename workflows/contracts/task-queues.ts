// Task queues: runbooks run on a control queue; every activity that touches a site runs on that site's queue,
// served by the worker in that site's region. A deployment (or a test) may prefix the control queue
// ("staging-dr-control"); site queues take the same prefix, so deployments never steal each other's tasks.
// Bundle-safe.
export const CONTROL_TASK_QUEUE = 'dr-control';

export function controlTaskQueue(prefix = ''): string {
  return `${prefix}${CONTROL_TASK_QUEUE}`;
}

/** The site queue that belongs with `controlQueue` (a runbook passes its own task queue). */
export function siteTaskQueue(site: string, controlQueue: string = CONTROL_TASK_QUEUE): string {
  const prefix = controlQueue.endsWith(CONTROL_TASK_QUEUE)
    ? controlQueue.slice(0, controlQueue.length - CONTROL_TASK_QUEUE.length)
    : `${controlQueue}-`;
  return `${prefix}dr-site-${site}`;
}
