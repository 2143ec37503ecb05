// What fencing, unfencing, promotion and demotion need to know about a local cluster before acting: which
// Patroni processes and postmasters are alive, who leads (or led), and small bounded waits on the REST API.
import { ClusterNotFoundError, NotReadyError } from '../../../workflows/contracts/errors';
import type { LocalClusterInfo, LocalMemberInfo } from './cluster-files';
import { logTail, nodeRunsAs, restUrl } from './members';
import type { MemberPaths } from './patroni-config';
import { leaderOf, patroniGet, type PatroniClusterView, type PatroniNodeStatus } from './patroni-api';
import { postmasterPid, readControlData, type ControlData } from './pg-control';
import { isAlive } from './processes';
import { etcdGet } from './etcd';
import { PRIMARY_NODE_ROLES } from '../patroni-states';

/** The parts of LocalRegion these operations use (kept narrow so region.ts can delegate without a cycle). */
export interface RegionHandle {
  readonly name: string;
  readonly cfg: { etcd: { clientPort: number }; runAs?: string; dataDir: string };
  getCluster(name: string): LocalClusterInfo | null;
  memberPaths(cluster: string, member: string): MemberPaths;
  startCluster(name: string): Promise<{ changed: boolean }>;
}

export interface MemberState {
  member: LocalMemberInfo;
  paths: MemberPaths;
  patroniAlive: boolean;
  postgresRunning: boolean;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const runAsOf = (region: RegionHandle): string => region.cfg.runAs ?? 'postgres';

export function needCluster(region: RegionHandle, name: string): LocalClusterInfo {
  const info = region.getCluster(name);
  if (!info) throw new ClusterNotFoundError(`no cluster ${name} in region ${region.name}`, { cluster: name, site: region.name });
  return info;
}

export function memberStates(region: RegionHandle, info: LocalClusterInfo): MemberState[] {
  return info.members.map((m) => {
    const paths = region.memberPaths(info.name, m.name);
    return { member: m, paths, patroniAlive: isAlive(paths.pidFile), postgresRunning: postmasterPid(m.dataDir) !== null };
  });
}

export async function clusterView(info: LocalClusterInfo): Promise<PatroniClusterView | null> {
  for (const m of info.members) {
    const v = await patroniGet<PatroniClusterView>(restUrl(m), '/cluster');
    if (v && Array.isArray(v.members)) return v;
  }
  return null;
}

/**
 * The member that leads, or led before it was stopped: Patroni's leader when there is one, else the member
 * whose control file says it ran as a primary (`in production`, or `shut down` = a primary stopped cleanly),
 * highest checkpoint first; else the first member.
 */
export async function formerLeader(info: LocalClusterInfo, view: PatroniClusterView | null, runAs: string): Promise<LocalMemberInfo> {
  const l = leaderOf(view);
  const byView = l && info.members.find((m) => m.name === l.name);
  if (byView) return byView;
  const seen = await Promise.all(info.members.map(async (m) => ({ item: m, cd: await readControlData(m.dataDir, runAs) })));
  return lastPrimary(seen) ?? info.members[0];
}

/** With no Patroni leader: the member whose control file says it last ran as a primary, at the newest checkpoint. */
export function lastPrimary<T>(seen: Array<{ item: T; cd: ControlData | null }>): T | null {
  let best: { item: T; lsn: bigint } | null = null;
  for (const { item, cd } of seen) {
    if (!cd || !['in production', 'shut down'].includes(cd.state)) continue;
    const [hi, lo] = (cd.checkpointLsn ?? '0/0').split('/');
    const lsn = (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
    if (!best || lsn > best.lsn) best = { item, lsn };
  }
  return best?.item ?? null;
}

/** Replicas first, leader last: stopping a leader first would let a replica take over (or lose WAL to it). */
export function leaderLast<T extends { member: LocalMemberInfo }>(items: T[], leader: string): T[] {
  return [...items.filter((x) => x.member.name !== leader), ...items.filter((x) => x.member.name === leader)];
}

/** Polls `test` every intervalMs (500 ms unless a caller's wait is on a critical path) until it returns a value, or throws NotReadyError with `describe()` after timeoutMs. */
export async function pollUntil<T>(
  timeoutMs: number,
  test: () => Promise<T | null>,
  describe: () => Promise<{ message: string; facts?: Record<string, unknown> }>,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await test();
    if (v !== null) return v;
    if (Date.now() > deadline) {
      const d = await describe();
      throw new NotReadyError(d.message, d.facts ?? {});
    }
    await sleep(intervalMs);
  }
}

/** Members whose Patroni reports maintenance mode within timeoutMs; the rest are returned as not confirmed. */
export async function waitPauseSeen(members: MemberState[], timeoutMs: number): Promise<{ seen: string[]; unseen: string[] }> {
  const deadline = Date.now() + timeoutMs;
  const seen = new Set<string>();
  for (;;) {
    for (const s of members) {
      if (seen.has(s.member.name)) continue;
      const st = await patroniGet<PatroniNodeStatus & { pause?: boolean }>(restUrl(s.member), '/patroni', 2_000);
      if (st?.pause === true) seen.add(s.member.name);
    }
    const unseen = members.filter((s) => !seen.has(s.member.name)).map((s) => s.member.name);
    if (!unseen.length || Date.now() > deadline) return { seen: [...seen], unseen };
    // The primary takes writes until its Patroni has seen the pause and it is stopped: look often.
    await sleep(100);
  }
}

/**
 * Until no member holds the leader key: a paused Patroni that finds its Postgres down drops the key it held. Resumed
 * while it still holds it, Patroni 4 takes the fence's stop for a crash of the primary it leads and restarts it
 * READ-WRITE ("starting primary after failure") before it reads standby_cluster: writes the new primary never gets,
 * then a demotion and a pg_rewind. Without the key no member can take that path (a replica never does). Returns the
 * holder still there after timeoutMs, else null.
 */
export async function waitLeaderKeyReleased(etcdPort: number, info: LocalClusterInfo, timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const holder = (await etcdGet(etcdPort, `/service/${info.name}/leader`))?.value ?? null;
    if (holder === null || Date.now() > deadline) return holder;
    // A paused Patroni looks once per loop_wait; nobody can write meanwhile, so a relaxed poll is enough.
    await sleep(500);
  }
}

/** Until every member's REST API answers (Patroni just started); NotReadyError with a log tail otherwise. */
export async function waitRestAnswers(region: RegionHandle, info: LocalClusterInfo, timeoutMs: number): Promise<void> {
  await pollUntil(
    timeoutMs,
    async () => {
      for (const m of info.members) if (!(await patroniGet(restUrl(m), '/patroni', 2_000))) return null;
      return true;
    },
    async () => ({
      message: `Patroni of ${info.name} not answering ${timeoutMs} ms after start; last log lines:\n${logTail(region.memberPaths(info.name, info.members[0].name).logFile)}`,
      facts: { cluster: info.name },
    }),
  );
}

/**
 * The member answering GET /primary with 200 whose Postgres also says it is out of recovery (/patroni role
 * master): /primary alone answers from Patroni's cached leader flag, a moment before promotion completes.
 */
export async function writableLeader(info: LocalClusterInfo): Promise<LocalMemberInfo | null> {
  for (const m of info.members) {
    try {
      const r = await fetch(`${restUrl(m)}/primary`, { signal: AbortSignal.timeout(2_000) });
      await r.body?.cancel();
      if (r.status === 200 && (await nodeRunsAs(m, [...PRIMARY_NODE_ROLES]))) return m;
    } catch {
      // not this one
    }
  }
  return null;
}

export function describeView(view: PatroniClusterView | null): string {
  if (!view) return 'no Patroni answers';
  return view.members.map((v) => `${v.name}:${v.role}/${v.state}`).join(' ') + (view.pause ? ' (paused)' : '');
}
