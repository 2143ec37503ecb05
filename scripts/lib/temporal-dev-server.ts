// Starts the project-built Temporal CLI dev server (never the SDK's download, which fails offline), with a
// persistent SQLite file and the runbooks' search attributes registered.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { startProcess, stopProcess, isAlive } from '../../activities/sites/local/processes';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../../workflows/contracts/search-attributes';

export const REPO_ROOT = resolve(__dirname, '..', '..');

/** TEMPORAL_CLI_PATH, then the bootstrapped binary, then `temporal` on PATH. */
export function temporalCliPath(): string {
  const candidates = [process.env.TEMPORAL_CLI_PATH, join(REPO_ROOT, '.tools', 'bin', 'temporal')];
  for (const c of candidates) if (c && existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('no Temporal CLI: run scripts/bootstrap (it builds temporal v1.5.1 into .tools/bin) or set TEMPORAL_CLI_PATH');
  }
}

export interface DevServerSpec {
  dir: string;
  port: number;
  /** Web UI port; absent means headless. */
  uiPort?: number;
  namespace?: string;
}

export function devServerFiles(dir: string) {
  return { db: join(dir, 'temporal.db'), log: join(dir, 'temporal.log'), pid: join(dir, 'temporal.pid') };
}

export async function startDevServer(spec: DevServerSpec): Promise<{ changed: boolean; address: string }> {
  const files = devServerFiles(spec.dir);
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(spec.port),
    '--db-filename', files.db,
    '--log-level', 'warn',
    '--namespace', spec.namespace ?? 'default',
    '--dynamic-config-value', 'frontend.enableServerVersionCheck=false',
    ...SEARCH_ATTRIBUTE_REGISTRATIONS.flatMap((a) => ['--search-attribute', `${a.name}=${a.type}`]),
    ...(spec.uiPort ? ['--ui-port', String(spec.uiPort)] : ['--headless']),
  ];
  const { changed } = await startProcess({
    name: 'temporal',
    cmd: temporalCliPath(),
    args,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
    cwd: spec.dir,
    logFile: files.log,
    pidFile: files.pid,
  });
  const address = `127.0.0.1:${spec.port}`;
  await waitForServer(address, files.log);
  return { changed, address };
}

async function waitForServer(address: string, logFile: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      const conn = await Connection.connect({ address, connectTimeout: 2_000 });
      await conn.healthService.check({});
      await conn.close();
      return;
    } catch (err) {
      lastError = (err as Error).message;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw new Error(`Temporal dev server at ${address} did not answer within ${timeoutMs / 1000}s (${lastError}); see ${logFile}`);
}

export async function stopDevServer(dir: string): Promise<{ changed: boolean }> {
  return stopProcess(devServerFiles(dir).pid, { signal: 'SIGTERM', timeoutMs: 15_000 });
}

export function devServerRunning(dir: string): boolean {
  return isAlive(devServerFiles(dir).pid);
}
