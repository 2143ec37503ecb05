// Builds the Temporal workers of one process: the control queue (runbooks) and one queue per served site.
import type { DataConverter } from '@temporalio/common';
import { Worker, type ActivityInterceptorsFactory, type NativeConnection, type WorkflowBundle } from '@temporalio/worker';
import { createControlActivities, createSiteActivities, type ActivityDeps } from '../activities';
import { controlTaskQueue, siteTaskQueue } from '../workflows/contracts/task-queues';
import { EscalateRepeatedFailureInterceptor, RunbookErrorInterceptor } from './interceptors';

export interface RunbookWorkersOptions {
  connection: NativeConnection;
  namespace: string;
  deps: ActivityDeps;
  servedSites: string[];
  serveControl: boolean;
  workflowBundle?: WorkflowBundle | { codePath: string };
  /** Prefix of every queue name (DR_TASK_QUEUE_PREFIX), so deployments and tests stay apart. */
  taskQueuePrefix?: string;
  /** The payload codec (payloadDataConverterFromEnv); the activities' own client (`Context.client`) inherits it. */
  dataConverter?: DataConverter;
  /** More activity interceptors, outermost first, after the error conversion (the chaos suite's killer). */
  activityInterceptors?: ActivityInterceptorsFactory[];
  /** 0 turns sticky execution off: a killed worker's runs then wait on no sticky queue (the chaos suite). */
  maxCachedWorkflows?: number;
}

export async function createRunbookWorkers(opts: RunbookWorkersOptions): Promise<Worker[]> {
  const control = controlTaskQueue(opts.taskQueuePrefix ?? '');
  const queue = (site: string | null) => (site === null ? control : siteTaskQueue(site, control));
  const escalate = new EscalateRepeatedFailureInterceptor();
  const interceptors = {
    activity: [
      ...(opts.activityInterceptors ?? []),
      () => ({ inbound: escalate }),
      () => ({ inbound: new RunbookErrorInterceptor() }),
    ],
  };
  const workers: Worker[] = [];
  if (opts.serveControl) {
    workers.push(
      await Worker.create({
        connection: opts.connection,
        namespace: opts.namespace,
        taskQueue: queue(null),
        ...(opts.workflowBundle
          ? { workflowBundle: opts.workflowBundle }
          : { workflowsPath: require.resolve('../workflows') }),
        activities: createControlActivities(opts.deps),
        interceptors,
        dataConverter: opts.dataConverter,
        ...(opts.maxCachedWorkflows === undefined ? {} : { maxCachedWorkflows: opts.maxCachedWorkflows }),
      }),
    );
  }
  const siteActivities = createSiteActivities(opts.deps);
  for (const site of opts.servedSites) {
    workers.push(
      await Worker.create({
        connection: opts.connection,
        namespace: opts.namespace,
        taskQueue: queue(site),
        activities: siteActivities,
        interceptors,
        dataConverter: opts.dataConverter,
      }),
    );
  }
  return workers;
}

/** Run all workers until one fails or a signal stops the process. */
export async function runAll(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.run()));
}
