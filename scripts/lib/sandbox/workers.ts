// One worker process per region, each serving its own site queue and the control queue (so the runbooks keep
// running when either region is lost). They run the same entry as production: worker/main.ts.
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { isAlive, startProcess, stopProcess } from '../../../activities/sites/local/processes';
import { CHILD_PATH } from '../../../activities/sites/local/tools';
import { REGIONS, type RegionName, type SandboxLayout } from './layout';

const REPO = resolve(__dirname, '..', '..', '..');
const dir = (layout: SandboxLayout) => join(layout.dir, 'workers');
export const workerPidFile = (layout: SandboxLayout, region: string) => join(dir(layout), `worker-${region}.pid`);
export const workerLogFile = (layout: SandboxLayout, region: string) => join(dir(layout), `worker-${region}.log`);

/** Bundles the workflows once, so each worker starts in seconds instead of bundling itself. */
export async function buildWorkflowBundle(layout: SandboxLayout): Promise<string> {
  mkdirSync(dir(layout), { recursive: true });
  const path = join(dir(layout), 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../../../workflows'), logger: quietLogger });
  writeFileSync(path, code);
  return path;
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };

export async function startWorker(layout: SandboxLayout, region: RegionName, bundlePath: string): Promise<boolean> {
  const logFile = workerLogFile(layout, region);
  const before = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
  const { changed } = await startProcess({
    name: `worker-${region}`,
    cmd: join(REPO, 'node_modules', '.bin', 'tsx'),
    args: [join(REPO, 'worker', 'main.ts')],
    env: {
      PATH: CHILD_PATH,
      HOME: process.env.HOME ?? '/root',
      TEMPORAL_ADDRESS: `127.0.0.1:${layout.temporalPort}`,
      TEMPORAL_NAMESPACE: 'default',
      DR_SITES_FILE: layout.sitesFile,
      DR_WORKER_SITES: region,
      DR_WORKER_CONTROL: 'true',
      DR_WORKFLOW_BUNDLE: bundlePath,
      DR_NOTIFY_FILE: join(layout.dir, 'notifications.jsonl'),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...(process.env.DR_TOOLS_BIN ? { DR_TOOLS_BIN: process.env.DR_TOOLS_BIN } : {}),
      ...(process.env.DR_PATRONI ? { DR_PATRONI: process.env.DR_PATRONI } : {}),
      ...(process.env.DR_PATRONI_BIN ? { DR_PATRONI_BIN: process.env.DR_PATRONI_BIN } : {}),
    },
    cwd: REPO,
    logFile,
    pidFile: workerPidFile(layout, region),
  });
  if (changed) await waitForLine(logFile, before, 'worker ready', 60_000);
  return changed;
}

async function waitForLine(file: string, from: number, needle: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = existsSync(file) ? readFileSync(file, 'utf8').slice(from) : '';
    if (text.includes(needle)) return;
    if (text.includes('worker failed')) throw new Error(`worker did not start: ${text.trim().split('\n').slice(-3).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`worker did not report ready within ${timeoutMs / 1000}s; see ${file}`);
}

export async function stopWorker(layout: SandboxLayout, region: string): Promise<boolean> {
  return (await stopProcess(workerPidFile(layout, region), { signal: 'SIGTERM', timeoutMs: 15_000 })).changed;
}

export function workersRunning(layout: SandboxLayout): Record<string, boolean> {
  return Object.fromEntries(REGIONS.map((r) => [r, isAlive(workerPidFile(layout, r))]));
}
