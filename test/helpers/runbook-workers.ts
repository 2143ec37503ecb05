// Runs the real workers of a runbook deployment inside a test, on queues no other test uses.
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type LogEntry, type Worker } from '@temporalio/worker';
import { loadSites } from '../../activities/sites/sites-file';
import { createDriverFactory } from '../../activities/sites';
import type { SiteDriver } from '../../activities/sites/site-driver';
import { createRunbookWorkers } from '../../worker/workers';
import { controlTaskQueue } from '../../workflows/contracts/task-queues';
import { testBundlePath, testLayout, testTemporalAddress } from './test-env';

// Warnings and errors only, without the expected notice that site workers register no workflows.
const QUIET = /^No (workflows|Nexus services) registered/;
function installQuietRuntime(): void {
  try {
    Runtime.install({
      logger: new DefaultLogger('WARN', (e: LogEntry) => {
        if (!QUIET.test(e.message)) console.error(`[worker ${e.level}] ${e.message}`, e.meta ?? '');
      }),
    });
  } catch {
    // Already installed by an earlier test file in this process.
  }
}

export interface RunbookHarness {
  client: Client;
  /** The control queue of this harness: pass it to startRunbook. */
  taskQueue: string;
  prefix: string;
  /** Brings up the worker of a site that was left out (its region "comes back"). */
  addSiteWorker(site: string): Promise<void>;
  /** Shuts down every worker serving a site's queue (its region "stops answering"); its clusters keep running. */
  stopSiteWorker(site: string): Promise<void>;
}

/**
 * Starts workers for every sandbox site (or `sites`), runs `fn`, then shuts the workers down. `wrapDriver`
 * lets a test put a fault in front of the real driver (e.g. a backup tool that exits 0 without a backup).
 */
export async function withRunbookWorkers<T>(
  fn: (h: RunbookHarness) => Promise<T>,
  opts: { sites?: string[]; wrapDriver?: (driver: SiteDriver) => SiteDriver; sitesFile?: string; temporalAddress?: string } = {},
): Promise<T> {
  installQuietRuntime();
  const prefix = `t${randomBytes(4).toString('hex')}-`;
  const sites = loadSites(opts.sitesFile ?? testLayout().sitesFile);
  const realDriverFor = createDriverFactory(sites);
  const wrap = opts.wrapDriver;
  const address = opts.temporalAddress ?? testTemporalAddress();
  const connection = await NativeConnection.connect({ address });
  const deps = { sites, driverFor: wrap ? (site: string) => wrap(realDriverFor(site)) : realDriverFor };
  const workersFor = (servedSites: string[], serveControl: boolean) => createRunbookWorkers({
    connection, namespace: 'default', deps, servedSites, serveControl,
    workflowBundle: { codePath: testBundlePath() }, taskQueuePrefix: prefix,
  });
  const served = opts.sites ?? Object.keys(sites.sites);
  const workers: Worker[] = await workersFor(served, true);
  const running = workers.map((w) => w.run());
  // createRunbookWorkers returns the control worker first, then one worker per served site in order.
  const bySite = new Map<string, Worker[]>(served.map((site, i) => [site, [workers[i + 1]]]));
  const addSiteWorker = async (site: string) => {
    for (const w of await workersFor([site], false)) {
      workers.push(w);
      running.push(w.run());
      bySite.set(site, [...(bySite.get(site) ?? []), w]);
    }
  };
  const stopSiteWorker = async (site: string) => {
    const gone = (bySite.get(site) ?? []).filter((w) => w.getState() === 'RUNNING');
    bySite.set(site, []);
    for (const w of gone) w.shutdown();
    await Promise.allSettled(gone.map((w) => running[workers.indexOf(w)]));
  };
  const clientConnection = await Connection.connect({ address });
  try {
    return await fn({ client: new Client({ connection: clientConnection }), taskQueue: controlTaskQueue(prefix), prefix, addSiteWorker, stopSiteWorker });
  } finally {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(running);
    await clientConnection.close();
    await connection.close();
  }
}
