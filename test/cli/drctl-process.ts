// drctl as an operator runs it: a child process (scripts/drctl ...) against the suite's real Temporal server.
// Asynchronous, so the workers a test runs in this process keep serving while drctl waits on them.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunbookHarness } from '../helpers/runbook-workers';
import { REPO_ROOT, testLayout, testTemporalAddress } from '../helpers/test-env';

export const DRCTL = join(REPO_ROOT, 'scripts', 'drctl');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout as the one JSON document --json promises. */
  json: any;
}

export interface Child {
  done: Promise<Run>;
  stderrSoFar(): string;
  /** Ends it early (a test that failed while it was still following). */
  kill(): void;
}

export function drctlChild(args: string[], env: Record<string, string> = {}): Child {
  const child = spawn(DRCTL, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, TEMPORAL_ADDRESS: testTemporalAddress(), TEMPORAL_NAMESPACE: 'default', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      let json: unknown;
      try {
        json = args.includes('--json') ? JSON.parse(stdout) : undefined;
      } catch (err) {
        reject(new Error(`drctl ${args.join(' ')}: stdout is not one JSON document (${(err as Error).message}):\n${stdout}\nstderr:\n${stderr}`));
        return;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
  return { done, stderrSoFar: () => stderr, kill: () => { child.kill(); } };
}

/** drctl on the harness's queues (DR_TASK_QUEUE_PREFIX), or with no harness for runs that must not connect. */
export const drctl = (h: RunbookHarness | null, args: string[], env: Record<string, string> = {}) =>
  drctlChild(args, { ...(h ? { DR_TASK_QUEUE_PREFIX: h.prefix } : {}), ...env }).done;

/**
 * The environment of an operator who ran `drctl login --user <user>` against the test sandbox's issuer (a cache of
 * their own): drctl then decides and starts as that user, with ID tokens bound to each gate or run.
 */
export async function loggedInAs(user: string): Promise<Record<string, string>> {
  const env = { XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), `drctl-${user}-`)), DR_SITES_FILE: testLayout().sitesFile };
  const login = await drctlChild(['login', '--user', user, '--json'], env).done;
  if (login.code !== 0) throw new Error(`drctl login --user ${user} failed (${login.code}): ${login.stdout}${login.stderr}`);
  return env;
}

/** Polls until `fn` answers (visibility and schedules act asynchronously); the deadline only bounds a hang. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}
