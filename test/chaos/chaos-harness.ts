// Runs the runbook workers in child processes the chaos suite can SIGKILL (test/chaos/chaos-worker.ts), with one
// warmed-up spare always waiting, so a killed worker is replaced in milliseconds instead of a process start.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { controlTaskQueue } from '../../workflows/contracts/task-queues';
import { REPO_ROOT, testBundlePath, testLayout, testTemporalAddress } from '../helpers/test-env';

export interface ChaosEntry {
  pid: number;
  at: number;
  activity: string;
  workflowId: string;
  attempt: number;
  outcome: 'completed' | 'failed' | 'completed-then-killed' | 'lost-then-killed';
  error?: string;
}

export interface ChaosWorkers {
  client: Client;
  taskQueue: string;
  prefix: string;
  /** Every activity a worker process finished, in order. */
  entries(): ChaosEntry[];
  /** Worker processes that died by SIGKILL. */
  kills(): number;
}

export interface ChaosOptions {
  /** 'every': each worker process dies after each activity it completes. */
  kill: 'every' | 'none';
  /** Activity types whose first attempt's result is lost (effect done, result never reported, worker dead). */
  lose?: string[];
  sitesFile?: string;
  temporalAddress?: string;
  label: string;
  /** Extra environment for the workers (DR_NOTIFY_FILE). */
  env?: Record<string, string>;
}

// A spare needs ~3 s of CPU to get ready (loading the SDK, the activities and the bundle), longer than most
// activities take; two warming side by side on two cores keep one ready at almost every kill.
const SPARES = 2;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function withChaosWorkers<T>(opts: ChaosOptions, fn: (w: ChaosWorkers) => Promise<T>): Promise<T> {
  const prefix = `c${randomBytes(4).toString('hex')}-`;
  const dir = join(testLayout().dir, 'chaos', `${opts.label}-${prefix.slice(0, -1)}`);
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'activities.jsonl');
  writeFileSync(logFile, '');
  const address = opts.temporalAddress ?? testTemporalAddress();
  const children = new Map<number, ChildProcess>();
  let stopping = false;
  let kills = 0;
  const crashes: string[] = [];

  const start = (k: number): ChildProcess => {
    const out = openSync(join(dir, `worker-${k}.log`), 'a');
    // node --import tsx, not the tsx wrapper: one process, so SIGKILL hits the worker itself and nothing is orphaned.
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'chaos-worker.ts')], {
      cwd: REPO_ROOT,
      stdio: ['ignore', out, out],
      env: {
        ...process.env,
        ...opts.env,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        CHAOS_TEMPORAL_ADDRESS: address,
        CHAOS_SITES_FILE: opts.sitesFile ?? testLayout().sitesFile,
        CHAOS_PREFIX: prefix,
        CHAOS_BUNDLE: testBundlePath(),
        CHAOS_GO_FILE: join(dir, `go-${k}`),
        CHAOS_KILL: opts.kill,
        CHAOS_LOSE: (opts.lose ?? []).join(','),
        CHAOS_LOG: logFile,
        CHAOS_PENDING: join(dir, `pending-${k}.jsonl`),
      },
    });
    children.set(child.pid!, child);
    child.on('exit', (code, signal) => {
      children.delete(child.pid!);
      if (stopping) return;
      if (signal === 'SIGKILL') kills++;
      else crashes.push(`worker ${k} exited with ${code ?? signal}: see ${join(dir, `worker-${k}.log`)}`);
      // The spare takes over at once; a new spare starts warming up behind it.
      writeFileSync(join(dir, `go-${k + 1}`), '');
      start(k + 1 + SPARES);
      reports = reports.then(() => reportFor(k)).catch((err: Error) => { crashes.push(`reporting for worker ${k}: ${err.message}`); });
    });
    return child;
  };

  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  let reports = Promise.resolve();
  // What the killed worker finished but could not report: its result, or for a lost result a retryable failure.
  const reportFor = async (k: number) => {
    const file = join(dir, `pending-${k}.jsonl`);
    if (!existsSync(file)) return;
    for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
      const p = JSON.parse(line) as { taskToken: string; lose: boolean; result: unknown; activity: string };
      const token = Buffer.from(p.taskToken, 'base64');
      if (p.lose) await client.activity.fail(token, ApplicationFailure.retryable(`chaos: the worker died before reporting ${p.activity}`, 'ChaosResultLost'));
      else await client.activity.complete(token, p.result);
    }
  };
  start(0);
  writeFileSync(join(dir, 'go-0'), '');
  for (let k = 1; k <= SPARES; k++) start(k);
  try {
    // Incarnation 0 polls before the runbook starts, so the first task never waits for a process start.
    const first = join(dir, 'worker-0.log');
    for (let i = 0; i < 600 && !(existsSync(first) && readFileSync(first, 'utf8').includes('chaos worker polling')); i++) await sleep(100);
    return await fn({
      client,
      taskQueue: controlTaskQueue(prefix),
      prefix,
      entries: () => readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as ChaosEntry),
      kills: () => kills,
    });
  } finally {
    stopping = true;
    const exits = [...children.values()].map((c) => new Promise((r) => c.once('exit', r)));
    for (const c of children.values()) c.kill('SIGKILL');
    await Promise.all(exits);
    await reports;
    await connection.close();
    appendFileSync(join(dir, 'summary.txt'), `kills ${kills}\n${crashes.join('\n')}\n`);
    if (crashes.length > 0) throw new Error(`chaos workers crashed instead of being killed: ${crashes.join('; ')}`);
  }
}
