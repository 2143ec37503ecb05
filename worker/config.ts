// Worker configuration from the environment. The sites file holds references to secrets only.
import { loadSites, type LoadedSites } from '../activities/sites/sites-file';
import { BadInputError } from '../workflows/contracts/errors';

export interface WorkerConfig {
  sites: LoadedSites;
  /** Sites whose task queues this worker serves: the ones in its own region. */
  servedSites: string[];
  /** Whether this worker also runs the runbooks themselves (the control queue). */
  serveControl: boolean;
  /** Prefix of the task queue names (default none: dr-control, dr-site-<site>). */
  taskQueuePrefix: string;
  /** A prebuilt workflow bundle (scripts/build-workflow-bundle.ts) instead of bundling at start. */
  workflowBundlePath?: string;
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const sites = loadSites(env.DR_SITES_FILE);
  const all = Object.keys(sites.sites);
  const servedSites = env.DR_WORKER_SITES ? env.DR_WORKER_SITES.split(',').map((s) => s.trim()).filter(Boolean) : all;
  for (const s of servedSites) {
    if (!sites.sites[s]) {
      throw new BadInputError(`DR_WORKER_SITES names "${s}", which is not in ${sites.path} (known: ${all.join(', ')})`);
    }
  }
  return {
    sites,
    servedSites,
    serveControl: (env.DR_WORKER_CONTROL ?? 'true') !== 'false',
    workflowBundlePath: env.DR_WORKFLOW_BUNDLE || undefined,
    taskQueuePrefix: env.DR_TASK_QUEUE_PREFIX ?? '',
  };
}
