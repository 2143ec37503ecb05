// Starting, stopping and waiting for the Patroni members of one local cluster.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NotReadyError, PreconditionFailedError } from '../../../workflows/contracts/errors';
import type { LocalClusterInfo, LocalMemberInfo } from './cluster-files';
import type { MemberPaths } from './patroni-config';
import { leaderOf, patroniGet, type PatroniClusterView, type PatroniNodeStatus } from './patroni-api';
import { isAlive, lookupUser, startProcess, stopPid, stopProcess } from './processes';
import { memberStateRunning, PRIMARY_NODE_ROLES } from '../patroni-states';
import { CHILD_PATH, patroniBin } from './tools';

export type ProgressFn = (p: { phase: string; detail: string }) => void;

export function memberPaths(clusterDir: string, logDir: string, member: string): MemberPaths {
  const memberDir = join(clusterDir, member);
  const run = join(memberDir, 'run');
  // sun_path is 108 bytes: deep data dirs fall back to /tmp (socket names carry the port, so they stay unique).
  const socketDir = `${run}/.s.PGSQL.65535`.length < 100 ? run : '/tmp';
  return {
    memberDir,
    configFile: join(memberDir, 'patroni.yml'),
    pidFile: join(memberDir, 'patroni.pid'),
    logFile: join(logDir, `${member}.patroni.log`),
    socketDir,
    pgLogDir: join(memberDir, 'pglog'),
  };
}

export const restUrl = (m: LocalMemberInfo): string => `http://127.0.0.1:${m.restPort}`;

export function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function startMember(paths: MemberPaths, member: LocalMemberInfo, runAs: string): Promise<boolean> {
  const user = lookupUser(runAs);
  const { changed } = await startProcess({
    name: `patroni:${member.name}`,
    cmd: patroniBin(),
    args: [paths.configFile],
    env: { PATH: CHILD_PATH, HOME: user.home, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', PYTHONUNBUFFERED: '1' },
    cwd: paths.memberDir,
    logFile: paths.logFile,
    pidFile: paths.pidFile,
    runAs,
    settleMs: 1_000,
  });
  return changed;
}

/** Patroni detaches the postmaster (so it can survive a Patroni crash): after Patroni is gone, check it. */
async function stopLeftoverPostmaster(dataDir: string): Promise<boolean> {
  const f = join(dataDir, 'postmaster.pid');
  if (!existsSync(f)) return false;
  const pid = Number(readFileSync(f, 'utf8').split('\n')[0]);
  if (!pid) return false;
  let cmd = '';
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  if (!cmd.includes('postgres')) return false;
  // SIGINT = fast shutdown: a shutdown checkpoint, connections dropped.
  return stopPid(pid, 'SIGINT', 60_000);
}

export async function stopMember(paths: MemberPaths, member: LocalMemberInfo): Promise<boolean> {
  // Patroni stops Postgres (fast) on SIGTERM before exiting.
  const { changed } = await stopProcess(paths.pidFile, { signal: 'SIGTERM', timeoutMs: 90_000 });
  const leftover = await stopLeftoverPostmaster(member.dataDir);
  return changed || leftover;
}

export interface WaitOptions {
  timeoutMs?: number;
  onProgress?: ProgressFn;
  /** Wait for the leader only, or for every member to run (default). */
  scope?: 'leader' | 'all';
  /** How often to look (default 1 s): shorter where a runbook waits on it, e.g. a new standby coming up. */
  intervalMs?: number;
}

async function httpStatus(url: string): Promise<number | null> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    await r.body?.cancel();
    return r.status;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET /patroni says Postgres answered its query (as one of `roles` when given); state 'unknown' when it failed. */
export async function nodeRunsAs(m: LocalMemberInfo, roles?: string[]): Promise<boolean> {
  const node = await patroniGet<PatroniNodeStatus>(restUrl(m), '/patroni', 3_000);
  return !!node && node.state === 'running' && (!roles || roles.includes(node.role));
}

async function clusterView(info: LocalClusterInfo): Promise<PatroniClusterView | null> {
  for (const m of info.members) {
    const v = await patroniGet<PatroniClusterView>(restUrl(m), '/cluster');
    if (v && Array.isArray(v.members)) return v;
  }
  return null;
}

/**
 * Waits for the leader to run (a standby_leader, or a leader that answers /primary: a standby cluster may
 * have been promoted since, and a source may have been made a standby by a runbook) and, with
 * scope 'all', for each member started here to run too. Throws NotReadyError on timeout (the caller may
 * retry: creation is idempotent) and PreconditionFailedError when a Patroni process died.
 */
export async function waitReady(
  info: LocalClusterInfo,
  pathsOf: (m: LocalMemberInfo) => MemberPaths,
  opts: WaitOptions = {},
): Promise<PatroniClusterView> {
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const deadline = Date.now() + timeoutMs;
  const expected = opts.scope === 'leader' ? [] : info.members.filter((m) => isAlive(pathsOf(m).pidFile));
  let last = '';
  const reinitialized = new Set<string>();
  for (;;) {
    for (const m of info.members) {
      const p = pathsOf(m);
      if (existsSync(p.pidFile) && !isAlive(p.pidFile)) {
        throw new PreconditionFailedError(`Patroni of ${m.name} exited; last log lines:\n${logTail(p.logFile)}`, {
          member: m.name,
          logFile: p.logFile,
        });
      }
    }
    const view = await clusterView(info);
    const leader = leaderOf(view);
    let ok = !!leader && memberStateRunning(leader.state);
    const lm = leader ? info.members.find((m) => m.name === leader.name) : undefined;
    if (ok && leader?.role === 'leader') ok = !!lm && (await httpStatus(`${restUrl(lm)}/primary`)) === 200;
    // /cluster and /primary answer from Patroni's cached state (a leader whose Postgres was just stopped still
    // reads as running there); /patroni queries Postgres, so it is what proves the leader really runs.
    if (ok && lm && leader) ok = await nodeRunsAs(lm, leader.role === 'leader' ? [...PRIMARY_NODE_ROLES] : ['standby_leader']);
    if (ok && view) {
      ok = expected.every((m) => view.members.some((v) => v.name === m.name && memberStateRunning(v.state)));
      // The same staleness for replicas: a member resumed a moment ago still reads "running" in /cluster.
      for (const m of expected) if (ok && m.name !== leader?.name) ok = await nodeRunsAs(m);
    }
    // A replica whose Postgres cannot start under a running leader (seen after a former primary was demoted on
    // Patroni 3.0.2: "start failed" for minutes) is rebuilt from the leader, as `patronictl reinit` would:
    // a replica holds nothing the leader does not.
    if (leader && memberStateRunning(leader.state) && view) {
      for (const v of view.members) {
        const m = info.members.find((x) => x.name === v.name);
        if (m && v.name !== leader.name && v.state === 'start failed' && !reinitialized.has(v.name)) {
          reinitialized.add(v.name);
          await fetch(`${restUrl(m)}/reinitialize`, { method: 'POST', body: JSON.stringify({ force: true }), signal: AbortSignal.timeout(5_000) })
            .catch(() => undefined);
          opts.onProgress?.({ phase: 'reinitializing', detail: `${v.name} failed to start: rebuilding it from ${leader.name}` });
        }
      }
    }
    const state = view ? view.members.map((v) => `${v.name}:${v.role}/${v.state}`).join(' ') : 'no Patroni answer';
    if (state !== last) {
      opts.onProgress?.({ phase: 'waiting', detail: state });
      last = state;
    }
    if (ok && view) return view;
    if (Date.now() > deadline) {
      const lp = pathsOf(info.members[0]);
      throw new NotReadyError(
        `cluster ${info.name} not ready after ${timeoutMs} ms (${state}); last log lines of ${info.members[0].name}:\n${logTail(lp.logFile)}`,
        { cluster: info.name, state },
      );
    }
    await sleep(opts.intervalMs ?? 1_000);
  }
}
