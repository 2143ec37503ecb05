// The incident bridge as it is deployed: its own process (scripts/incident-bridge --config ...) against the suite's
// real Temporal, started on the queues of a test's workers (DR_TASK_QUEUE_PREFIX). Stopping it and starting it
// again is a real restart: nothing it held in memory survives. Its output goes to `logFile` (a .log file, which the
// secrets audit reads).
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, testTemporalAddress } from '../helpers/test-env';

export interface BridgeProcess {
  baseUrl: string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startBridgeProcess(
  configPath: string, port: number, taskQueuePrefix: string, env: Record<string, string>, logFile: string,
): Promise<BridgeProcess> {
  const child: ChildProcess = spawn(join(REPO_ROOT, 'scripts', 'incident-bridge'), ['--config', configPath], {
    cwd: REPO_ROOT,
    env: { ...process.env, TEMPORAL_ADDRESS: testTemporalAddress(), TEMPORAL_NAMESPACE: 'default', DR_TASK_QUEUE_PREFIX: taskQueuePrefix, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => {
    output += d;
    appendFileSync(logFile, d);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => { gone = true; });
  const baseUrl = `http://127.0.0.1:${port}`;
  // Ready when it answers; a bridge that exits (a bad config) fails at once with what it said.
  for (;;) {
    if (gone) throw new Error(`the incident bridge exited before it listened: ${output}`);
    const up = await fetch(`${baseUrl}/healthz`).then((r) => r.ok, () => false);
    if (up) break;
    await sleep(200);
  }
  return {
    baseUrl,
    async stop() {
      if (!gone) child.kill('SIGTERM');
      await exited;
    },
  };
}
