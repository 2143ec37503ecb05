// Fencing a local cluster: Patroni paused (so it does not start Postgres again) and Postgres fast-stopped on
// every member, leader last, then proven by connection attempts; and lifting such a fence. On Patroni < 4.1 this
// is the clean half of a demotion (see patroni-recipes.md, Pitfalls): a standby streaming from the leader gets
// the shutdown checkpoint, and the control file tells where it is.
import type { FenceResult } from '../site-driver';
import { SiteUnreachableError } from '../../../workflows/contracts/errors';
import type { LocalClusterInfo, LocalMemberInfo } from './cluster-files';
import {
  clusterView, describeView, formerLeader, leaderLast, memberStates, needCluster, pollUntil, runAsOf,
  waitPauseSeen, waitRestAnswers, type MemberState, type RegionHandle,
} from './cluster-state';
import { patchDynamicConfig, readDynamicConfig, type ConfigVia } from './dcs-config';
import { etcdHealthy } from './etcd';
import { logTail, nodeRunsAs, restUrl, waitReady } from './members';
import { leaderOf } from './patroni-api';
import { pgCtlStop, postmasterPid, probePort, readControlData } from './pg-control';
import { isAlive, stopProcess } from './processes';
import { PRIMARY_NODE_ROLES } from '../patroni-states';

export interface FenceOptions {
  /** How long members get to report the pause before their Patroni is stopped instead. Default 20 s. */
  pauseWaitMs?: number;
}

async function confirmFenced(info: LocalClusterInfo): Promise<{ confirmed: boolean; open: string[] }> {
  const open: string[] = [];
  for (const m of info.members) {
    // Only "connection refused" proves nothing listens; a timeout could be a hung but live postmaster.
    if ((await probePort(m.pgPort)) !== 'refused' || postmasterPid(m.dataDir) !== null) open.push(m.name);
  }
  return { confirmed: open.length === 0, open };
}

async function finalCheckpoint(dataDir: string, runAs: string) {
  const cd = await readControlData(dataDir, runAs);
  const state = cd?.state ?? 'unreadable';
  // A primary stopped cleanly says "shut down"; a standby says "shut down in recovery", and its checkpoint is a
  // restartpoint, not the end of any WAL another cluster must reach: no finalLsn for it.
  return {
    state,
    cleanShutdown: state === 'shut down' || state === 'shut down in recovery',
    finalLsn: state === 'shut down' ? (cd?.checkpointLsn ?? null) : null,
  };
}

export async function fenceCluster(region: RegionHandle, name: string, opts: FenceOptions = {}): Promise<FenceResult> {
  const info = needCluster(region, name);
  const runAs = runAsOf(region);
  const etcdPort = region.cfg.etcd.clientPort;
  const states = memberStates(region, info);
  // With etcd down, Patroni's REST calls hang for seconds each and a config change cannot land anywhere; every
  // second spent asking is a second the primary keeps taking writes (until Patroni demotes it on its own).
  const etcdUp = await etcdHealthy(etcdPort);
  const leader = await formerLeader(info, etcdUp ? await clusterView(info) : null, runAs);
  const dcs = etcdUp ? await readDynamicConfig(info, etcdPort) : null;
  const paused = dcs?.config.pause === true;

  // Nothing runs, and nothing would start it again (paused, or no Patroni alive): already fenced.
  if (!states.some((s) => s.postgresRunning) && (paused || !states.some((s) => s.patroniAlive))) {
    // A Patroni started later (the region coming back) would start Postgres again: leave the pause in the DCS
    // whenever it can be written, so the fence outlives the restart.
    const pausedNow = !paused && etcdUp && (await patchDynamicConfig(info, etcdPort, { pause: true }).then(() => true, () => false));
    const { confirmed, open } = await confirmFenced(info);
    const cp = await finalCheckpoint(leader.dataDir, runAs);
    return {
      changed: pausedNow,
      confirmed,
      method: 'already-stopped',
      finalLsn: cp.finalLsn,
      cleanShutdown: cp.cleanShutdown,
      detail: `Postgres was already stopped on every member of ${name} (${paused ? 'Patroni paused' : pausedNow ? 'no Patroni running; pause written to the DCS' : 'no Patroni running'}); ` +
        `${leader.name} is "${cp.state}"${cp.finalLsn ? ` at checkpoint ${cp.finalLsn}` : ''}; ` +
        (confirmed ? 'every port refuses connections.' : `still accepting connections: ${open.join(', ')}.`),
    };
  }

  let changed = false;
  let pauseVia: ConfigVia | 'already' | 'none' = 'already';
  if (!paused && !etcdUp) {
    pauseVia = 'none';
  } else if (!paused) {
    try {
      pauseVia = (await patchDynamicConfig(info, etcdPort, { pause: true })).via;
      changed = true;
    } catch (err) {
      if (!(err instanceof SiteUnreachableError)) throw err;
      pauseVia = 'none';
    }
  }
  // A Patroni that has not seen the pause would restart the Postgres stopped below: those are stopped too.
  const alive = states.filter((s) => s.patroniAlive);
  const { unseen } = pauseVia === 'none'
    ? { unseen: alive.map((s) => s.member.name) }
    : await waitPauseSeen(alive, opts.pauseWaitMs ?? 20_000);

  const stoppedPg: string[] = [];
  const stoppedPatroni: string[] = [];
  const stoppedByPatroni: string[] = [];
  let immediate = false;
  for (const s of leaderLast<MemberState>(states, leader.name)) {
    if (unseen.includes(s.member.name) && isAlive(s.paths.pidFile)) {
      // SIGTERM: a Patroni that is not paused stops its Postgres fast on the way out. The SIGKILL that follows a
      // timeout hits Patroni's process group only; the postmaster runs in its own session (Patroni setsid()s it).
      if ((await stopProcess(s.paths.pidFile, { signal: 'SIGTERM', timeoutMs: 60_000 })).changed) stoppedPatroni.push(s.member.name);
    }
    const r = await pgCtlStop(s.member.dataDir, runAs);
    if (r.stopped) stoppedPg.push(s.member.name);
    else if (s.postgresRunning) stoppedByPatroni.push(s.member.name);
    if (r.mode === 'immediate') immediate = true;
  }
  changed = changed || stoppedPg.length > 0 || stoppedPatroni.length > 0;

  const cp = await finalCheckpoint(leader.dataDir, runAs);
  const { confirmed, open } = await confirmFenced(info);
  const how = pauseVia === 'none'
    ? `Patroni unreachable and pause not written (etcd ${etcdUp ? 'refused it' : 'down'})`
    : `Patroni paused${pauseVia === 'etcd' ? ' in etcd (no Patroni answered)' : pauseVia === 'already' ? ' (already)' : ''}`;
  return {
    changed,
    confirmed,
    method: 'paused-and-stopped',
    finalLsn: cp.finalLsn,
    cleanShutdown: cp.cleanShutdown && !immediate,
    detail: `${how}; ${stoppedPatroni.length ? `Patroni stopped on ${stoppedPatroni.join(', ')}; ` : ''}` +
      `Postgres ${immediate ? 'stopped (fast timed out, immediate used)' : 'fast-stopped'} on ${stoppedPg.join(', ') || 'no member'}` +
      `${stoppedByPatroni.length ? ` (stopped fast by Patroni's own shutdown on ${stoppedByPatroni.join(', ')})` : ''}` +
      `, leader ${leader.name} last, now "${cp.state}"${cp.finalLsn ? ` at checkpoint ${cp.finalLsn}` : ''}; ` +
      (confirmed ? 'every port refuses connections.' : `still accepting connections: ${open.join(', ')}.`),
  };
}

export interface UnfenceOptions {
  /** How long to wait for the cluster to run again. Default 180 s. */
  timeoutMs?: number;
}

/**
 * Resumes Patroni. The former primary is started first while still paused (POST /restart takes its role from the
 * data dir, and a paused Patroni running a primary takes the leader key as is); resuming with everything stopped
 * would instead start it as a replica, win the leader race and promote it onto a new timeline.
 */
export async function unfenceCluster(region: RegionHandle, name: string, opts: UnfenceOptions = {}): Promise<{ changed: boolean }> {
  const info = needCluster(region, name);
  const runAs = runAsOf(region);
  const etcdPort = region.cfg.etcd.clientPort;
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const pathsOf = (m: { name: string }) => region.memberPaths(name, m.name);
  const dcs = await readDynamicConfig(info, etcdPort);
  if (!dcs) throw new SiteUnreachableError(`cluster ${name}: neither Patroni nor etcd answers`, { cluster: name, site: region.name });
  const states = memberStates(region, info);
  const dead = states.filter((s) => !s.patroniAlive);

  if (dcs.config.pause !== true && !dead.length) {
    await waitReady(info, pathsOf, { timeoutMs, scope: 'leader' });
    return { changed: false };
  }

  if (dead.length) {
    // Started into a paused DCS, Patroni leaves a stopped Postgres alone until the former primary is up.
    if (dcs.config.pause !== true) await patchDynamicConfig(info, etcdPort, { pause: true });
    await region.startCluster(name);
    await waitRestAnswers(region, info, 60_000);
  }

  // The leader key may still name the stopped primary (a paused Patroni drops it only on its next cycle), so the
  // decision rests on Postgres itself: the former primary is down and was shut down cleanly as a primary.
  if (dcs.config.standby_cluster == null) {
    const prev = await formerLeader(info, await clusterView(info), runAs);
    const cd = await readControlData(prev.dataDir, runAs);
    if (cd?.state === 'shut down' && postmasterPid(prev.dataDir) === null) await restartPaused(region, info, prev, timeoutMs);
  }
  await patchDynamicConfig(info, etcdPort, { pause: null });
  await waitReady(info, pathsOf, { timeoutMs, scope: 'all' });
  return { changed: true };
}

async function restartPaused(region: RegionHandle, info: LocalClusterInfo, m: LocalMemberInfo, timeoutMs: number): Promise<void> {
  const member = m.name;
  const r = await fetch(`${restUrl(m)}/restart`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
    signal: AbortSignal.timeout(timeoutMs),
  }).catch((err: Error) => ({ status: 0, text: async () => err.message }));
  const body = await r.text();
  if (r.status !== 200) {
    throw new SiteUnreachableError(`Patroni of ${member} refused to start Postgres (HTTP ${r.status}: ${body.slice(0, 200)})`, {
      cluster: info.name,
      member,
    });
  }
  // The paused Patroni takes (or keeps) the leader key once it sees a running primary.
  await pollUntil(
    timeoutMs,
    async () => (leaderOf(await clusterView(info))?.name === member && (await nodeRunsAs(m, [...PRIMARY_NODE_ROLES])) ? true : null),
    async () => ({
      message: `${member} of ${info.name} started but did not take the leader key (${describeView(await clusterView(info))}); ` +
        `last log lines:\n${logTail(region.memberPaths(info.name, member).logFile)}`,
      facts: { cluster: info.name, member },
    }),
  );
}
