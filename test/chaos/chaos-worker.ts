// Test-only worker entry for the chaos suite: the production workers (createRunbookWorkers) plus an activity
// interceptor that SIGKILLs this process at an activity boundary. Run by test/chaos/chaos-harness.ts with tsx.
//
// Environment:
//   CHAOS_TEMPORAL_ADDRESS, CHAOS_SITES_FILE, CHAOS_PREFIX, CHAOS_BUNDLE   where and what to serve
//   CHAOS_GO_FILE     start polling only once this file exists (a spare waits, warmed up, for its predecessor's death)
//   CHAOS_KILL        "every": die after every activity this process completes; "none": a plain worker
//   CHAOS_LOSE        activity types whose first attempt's result is lost: the effect happens, the worker reports a
//                     retryable failure instead of the result and dies, so a new worker runs it again
//   CHAOS_LOG         JSON lines, one per activity this process finished: what the harness counts boundaries by
//   CHAOS_PENDING     where a finished activity's task token and result go just before the process kills itself
//
// Why the result is reported by the harness after the kill: a worker that dies holding a started activity makes
// Temporal wait for that activity's startToClose or heartbeat timeout (1-2 min here) before anyone runs it again.
// Reporting it before dying does not work either: the server creates the run's next workflow task at once and this
// worker's own poller takes it in the instant before the kill (measured: every boundary then cost the 10 s workflow
// task timeout). So the process dies holding the finished task, and the harness completes it by task token (or,
// for a lost result, fails it retryably) once the process is gone and a spare is polling.
import { appendFileSync, existsSync } from 'node:fs';
import { NativeConnection, type Worker, type ActivityInboundCallsInterceptor, type ActivityExecuteInput, type Next } from '@temporalio/worker';
import type { Context } from '@temporalio/activity';
import { LocalSiteDriver } from '../../activities/sites/local-driver';
import { loadSites, localSite } from '../../activities/sites/sites-file';
import { createRunbookWorkers, runAll } from '../../worker/workers';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const KILL_EVERY = process.env.CHAOS_KILL === 'every';
const LOSE = new Set((process.env.CHAOS_LOSE ?? '').split(',').filter(Boolean));
const LOG = env('CHAOS_LOG');
const PENDING = env('CHAOS_PENDING');
const SETTLE_MS = 300;
const POLL_CANCEL_MS = 200;
let workers: Worker[] = [];
let inFlight = 0;

function log(entry: Record<string, unknown>): void {
  appendFileSync(LOG, `${JSON.stringify({ pid: process.pid, at: Date.now(), ...entry })}\n`);
}

class KillAtBoundary implements ActivityInboundCallsInterceptor {
  constructor(private readonly ctx: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const { info } = this.ctx;
    // A local activity (the approval gate's identity check) runs inside a workflow task and has no task of its own to
    // report after a kill: killed after it, the next worker would run it again and be killed again, forever. Its
    // boundary is the workflow task's, which the kills at the activities around it already cut.
    if (info.isLocal) return next(input);
    const about = { activity: info.activityType, workflowId: info.workflowExecution?.workflowId, attempt: info.attempt };
    inFlight++;
    let result: unknown;
    try {
      result = await next(input);
    } catch (err) {
      // A real failure is reported by the SDK as usual and is not a boundary this suite kills at.
      inFlight--;
      log({ ...about, outcome: 'failed', error: String((err as Error)?.message ?? err).slice(0, 200) });
      throw err;
    }
    if (!KILL_EVERY) {
      inFlight--;
      log({ ...about, outcome: 'completed' });
      return result;
    }
    const lose = LOSE.has(info.activityType) && info.attempt === 1;
    // The harness reports this after the process is gone (see the header): nothing can pick up the next task here.
    appendFileSync(PENDING, `${JSON.stringify({ taskToken: Buffer.from(info.taskToken).toString('base64'), lose, result: result ?? null, activity: info.activityType })}\n`);
    inFlight--;
    log({ ...about, outcome: lose ? 'lost-then-killed' : 'completed-then-killed' });
    // Parallel calls (Promise.all in a runbook) reach this process a few ms apart: one that arrived but has not
    // entered here yet would die unreported and cost its 2 min timeout. Wait for them; the last one to end kills.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    if (inFlight === 0) {
      // Stop this process's long polls first: a poll left behind by a dead process can still be handed the next
      // task of its queue, which then waits (measured: 25-30 s) before the server gives it to a live worker.
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await new Promise((r) => setTimeout(r, POLL_CANCEL_MS));
      process.kill(process.pid, 'SIGKILL');
    }
    return new Promise(() => undefined);
  }
}

/**
 * createDriverFactory for the sandbox's local sites only: it would load the zalando driver's Kubernetes client too,
 * 1.7 of a spare's 2.7 s of start-up, paid at every kill.
 */
function localDrivers(sites: ReturnType<typeof loadSites>) {
  const cache = new Map<string, LocalSiteDriver>();
  return (site: string) => {
    if (!cache.has(site)) cache.set(site, new LocalSiteDriver(localSite(sites, site)));
    return cache.get(site)!;
  };
}

async function main(): Promise<void> {
  // A jest that died without reaping its workers must not leave them polling (or waiting as spares) for ever.
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();
  const sites = loadSites(env('CHAOS_SITES_FILE'));
  const connection = await NativeConnection.connect({ address: env('CHAOS_TEMPORAL_ADDRESS') });
  workers = await createRunbookWorkers({
    connection,
    namespace: 'default',
    deps: { sites, driverFor: localDrivers(sites) },
    servedSites: Object.keys(sites.sites),
    serveControl: true,
    taskQueuePrefix: env('CHAOS_PREFIX'),
    workflowBundle: { codePath: env('CHAOS_BUNDLE') },
    activityInterceptors: [(ctx) => ({ inbound: new KillAtBoundary(ctx) })],
    // No sticky queue: the next workflow task of a run whose worker was killed goes straight to the shared queue
    // instead of waiting out the dead worker's sticky schedule-to-start timeout (5 s per kill).
    maxCachedWorkflows: 0,
  });
  process.stdout.write(`chaos worker ready after ${process.uptime().toFixed(1)} s\n`);
  const go = process.env.CHAOS_GO_FILE;
  while (go && !existsSync(go)) await new Promise((r) => setTimeout(r, 20));
  process.stdout.write(`chaos worker polling at ${process.uptime().toFixed(1)} s\n`);
  await runAll(workers);
}

main().catch((err) => {
  process.stderr.write(`chaos worker failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
