// Switching a local cluster between standby and primary through Patroni's dynamic config: promotion
// (standby_cluster removed) and demotion of a FENCED former primary into a standby of the promoted cluster
// (standby_cluster written while paused, then resumed), as in patroni-recipes.md "Planned switchback".
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client, type ClientConfig } from 'pg';
import { BadInputError, PreconditionFailedError, RewindFailedError, SiteUnreachableError } from '../../../workflows/contracts/errors';
import type { S3ArchiveConfig } from '../sites-file';
import type { DemoteResult, PromoteOutcome } from '../site-driver';
import { hasPromoteCluster, promotePathFor } from '../patroni-states';
import { clusterDir, withRegionLock, writeClusterFile, type LocalClusterInfo, type StandbySpec } from './cluster-files';
import {
  clusterView, describeView, memberStates, needCluster, pollUntil, runAsOf, waitPauseSeen, waitRestAnswers,
  writableLeader, type RegionHandle,
} from './cluster-state';
import {
  leaderKeyHolder, patchDynamicConfig, patchThroughPatroni, patchViaPatroni, readDynamicConfig, type DynamicConfig,
} from './dcs-config';
import { liveFacts } from './former-primary';
import { fitLeaderPositionToSource } from './leader-position';
import { logTail, restUrl } from './members';
import { rewindsSince } from './patroni-log';
import { standbyClusterSection } from './patroni-config';
import { leaderOf, patroniGet, type PatroniNodeStatus } from './patroni-api';
import { probePort } from './pg-control';
import { lookupUser } from './processes';
import { parseS3Url, walgEnv, walgScriptPaths, writeWalgFiles } from './walg-env';
import { armRewindRestore, disarmRewindRestore, rewindArchiveFetches, rewindRestorePath, rewindRestoreScript } from './rewind-wal';
import { shq, writeFileAtomic } from './fs-util';
import { walgBin } from './tools';

export interface SwitchHandle extends RegionHandle {
  pgConfig(name: string, opts?: { member?: string }): Promise<ClientConfig>;
}

const WRITABLE_POLL_MS = 50;

/**
 * Removes `standby_cluster` (the standby leader promotes) and waits for a writable primary. Already promoted is
 * `changed: false`, and the wait still runs so a retry after a crash mid-promotion reports the truth.
 */
export async function promoteStandbyCluster(
  region: RegionHandle,
  name: string,
  opts: { timeoutMs?: number } = {},
): Promise<PromoteOutcome> {
  const info = needCluster(region, name);
  const leader = leaderOf(await clusterView(info));
  const leaderMember = leader && info.members.find((m) => m.name === leader.name);
  const patroniVersion = leaderMember ? (await patroniGet<PatroniNodeStatus>(restUrl(leaderMember), '/patroni'))?.patroni?.version : undefined;
  let config: DynamicConfig | null = null;
  for (const m of info.members) {
    config = await patroniGet<DynamicConfig>(restUrl(m), '/config');
    if (config && typeof config === 'object') break;
  }
  // Promotion is Patroni's job: with no Patroni answering there is nothing to ask (no etcd fallback here).
  if (!config) throw new SiteUnreachableError(`no Patroni of ${region.name}/${name} answers`, { site: region.name, cluster: name });
  let changed = false;
  if (config.standby_cluster != null) {
    // Patroni 4's promote-cluster sends the PATCH to the leader; on 3.0.2 any member takes it.
    const patched = hasPromoteCluster(patroniVersion) && leaderMember
      ? await patchViaPatroni(restUrl(leaderMember), { standby_cluster: null })
      : await patchThroughPatroni(info, { standby_cluster: null });
    if (!patched) {
      throw new SiteUnreachableError(`${region.name}/${name}: no Patroni accepted the config change`, { cluster: name });
    }
    changed = true;
  }
  const timeoutMs = opts.timeoutMs ?? 60_000;
  // Nobody can write while this waits (a planned switch has fenced the old primary), so it looks often: a promotion
  // takes Patroni a few hundred ms, and a 500 ms poll alone would add up to half a second of downtime.
  await pollUntil(timeoutMs, () => writableLeader(info), async () => {
    const view = await clusterView(info);
    return {
      message: `${region.name}/${name} has no writable primary ${timeoutMs} ms after standby_cluster was removed ` +
        `(${describeView(view)})${view?.pause ? ': Patroni is paused' : ''}`,
      facts: { cluster: name, paused: view?.pause === true },
    };
  }, WRITABLE_POLL_MS);
  return { changed, ...(patroniVersion ? { patroniVersion } : {}), promotePath: promotePathFor(patroniVersion) };
}

export interface DemoteSpec {
  sourceRef: string;
  fromHost?: { host: string; port: number };
  fromArchive?: { s3: S3ArchiveConfig; walPrefix: string };
  slotName?: string;
}

export function validateDemote(region: RegionHandle, info: LocalClusterInfo, req: DemoteSpec): void {
  const bad = (msg: string) => new BadInputError(`demote ${region.name}/${info.name}: ${msg}`, { cluster: info.name });
  if (!req.fromHost && !req.fromArchive) throw bad('a standby needs a host to stream from, an archive, or both');
  if (!/^[a-z][a-z0-9-]*\/[a-z][a-z0-9-]*$/.test(req.sourceRef)) throw bad(`sourceRef "${req.sourceRef}" is not <site>/<cluster>`);
  if (req.sourceRef === `${region.name}/${info.name}`) throw bad('a cluster cannot follow itself');
  if (req.fromHost && (!req.fromHost.host || !Number.isInteger(req.fromHost.port))) throw bad('fromHost needs host and port');
  if (req.fromHost && info.members.some((m) => m.pgPort === req.fromHost?.port && /^(127\.|localhost)/.test(req.fromHost.host))) {
    throw bad(`fromHost ${req.fromHost.host}:${req.fromHost.port} is one of its own members`);
  }
  if (req.fromArchive) {
    if (parseS3Url(req.fromArchive.walPrefix).bucket !== req.fromArchive.s3.bucket) throw bad('walPrefix bucket differs from the archive config');
    // Restoring from its own prefix would replay its own old timeline, never the new primary's.
    if (req.fromArchive.walPrefix === info.archivePrefix) throw bad('fromArchive is this cluster\'s own archive');
  }
}

/** What cluster.json records for a demotion onto `req.sourceRef`. */
export function demoteSpecOf(req: DemoteSpec): StandbySpec {
  return {
    fromHost: req.fromHost ? { host: req.fromHost.host, port: req.fromHost.port } : undefined,
    fromArchive: req.fromArchive ? { s3: req.fromArchive.s3, walPrefix: req.fromArchive.walPrefix } : undefined,
    ...(req.fromHost && req.slotName ? { slotName: req.slotName } : {}),
    sourceRef: req.sourceRef,
  };
}

export const sameJson = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export function sameSpec(a: StandbySpec | null, b: StandbySpec): boolean {
  return !!a && a.sourceRef === b.sourceRef && sameJson(a.fromHost, b.fromHost) && (a.slotName ?? null) === (b.slotName ?? null) &&
    (a.fromArchive?.walPrefix ?? null) === (b.fromArchive?.walPrefix ?? null);
}

/**
 * Makes a fenced cluster a standby of `req.sourceRef`: paused, `standby_cluster` written (streaming and/or the
 * restore wrapper on the new primary's own archive), the spec recorded in cluster.json, the old leader's last WAL
 * position in the DCS lowered to where the source forked off, resumed, and waited for until its leader is a standby_leader receiving from the
 * new primary. Refuses a cluster whose Postgres runs (fence it first: Patroni < 4.1 demotes a running primary with
 * an immediate shutdown).
 *
 * A former primary that crashed (region loss) and diverged after the fork point works the same way: its Patroni
 * processes are started paused, the config written, and on resume Patroni itself does crash recovery in single-user
 * mode, sees its timeline is not an ancestor of the source's at its LSN and runs pg_rewind against the source
 * (its superuser credentials must be the source's). `rewound` is read from the Patroni logs written since the
 * standby spec was recorded, so a repeated call (`changed: false`) reports the same rewind.
 */
export async function demoteToStandby(
  region: SwitchHandle,
  name: string,
  req: DemoteSpec,
  opts: { timeoutMs?: number } = {},
): Promise<DemoteResult> {
  const since = new Date();
  let info = needCluster(region, name);
  validateDemote(region, info, req);
  const etcdPort = region.cfg.etcd.clientPort;
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const spec = demoteSpecOf(req);
  const scripts = walgScriptPaths(clusterDir(region.cfg.dataDir, name));
  const section = standbyClusterSection(spec, scripts, null);
  const dcs = await readDynamicConfig(info, etcdPort);
  if (!dcs) throw new SiteUnreachableError(`${region.name}/${name}: neither Patroni nor etcd answers`, { cluster: name });
  const dcsDone = sameJson(dcs.config.standby_cluster, section);
  const fileDone = sameSpec(info.standby, spec);
  if (dcsDone && fileDone && dcs.config.pause !== true) {
    // Done by an earlier call: its Patroni log lines count from when that call recorded the spec, so a retry
    // reports the rewind that call saw, and a pg_rewind that failed then fails this call too instead of a timeout.
    const specAt = statSync(join(clusterDir(region.cfg.dataDir, name), 'cluster.json')).mtime;
    await withOwnWalDisarmed(region, info, () => waitFollowing(region, info, req, timeoutMs, specAt));
    const rw = rewindsSince(logsOf(region, info), specAt);
    return { changed: false, rewound: rw.rewound, rewindLog: rw.lines, targetWalFromArchive: rewindArchiveFetches(rw.lines) };
  }

  const states = memberStates(region, info);
  const open: string[] = [];
  for (const s of states) if (s.postgresRunning || (await probePort(s.member.pgPort)) !== 'refused') open.push(s.member.name);
  // Every interrupted run of this function stopped while still paused (resuming is its last write), so a running
  // Postgres here means the cluster was never fenced, or was re-pointed by hand: refuse either way.
  if (open.length) {
    throw new PreconditionFailedError(
      `${region.name}/${name} is not fenced (Postgres accepts connections on ${open.join(', ')}): fence it before demoting`,
      { cluster: name, running: open },
    );
  }

  // Paused before any Patroni starts, so none starts Postgres in its old role while the config is rewritten.
  if (dcs.config.pause !== true && !dcsDone) await patchDynamicConfig(info, etcdPort, { pause: true });
  if (states.some((s) => !s.patroniAlive)) {
    await region.startCluster(name);
    await waitRestAnswers(region, info, 60_000);
    await waitPauseSeen(memberStates(region, info), 20_000);
  }

  if (req.fromArchive) {
    const u = lookupUser(runAsOf(region));
    writeWalgFiles(clusterDir(region.cfg.dataDir, name), { uid: u.uid, gid: u.gid }, null, {
      env: await walgEnv(req.fromArchive.s3, req.fromArchive.walPrefix),
      backupName: null,
    });
  }
  if (!fileDone) {
    info = await withRegionLock(region.cfg.dataDir, async () => {
      const fresh = needCluster(region, name);
      // bootstrapBackup named a backup of the previous source; this cluster keeps its own data.
      const next: LocalClusterInfo = { ...fresh, standby: spec, bootstrapBackup: null };
      writeClusterFile(region.cfg.dataDir, next);
      return next;
    });
  }
  if (!dcsDone) {
    // PATCH merges: a leftover section (another source) is removed first so no stale key survives.
    if (dcs.config.standby_cluster != null) await patchDynamicConfig(info, etcdPort, { standby_cluster: null });
    await patchDynamicConfig(info, etcdPort, { standby_cluster: section });
  }
  await waitLeaderKeyReleased(region, info, etcdPort);
  // A diverged former primary's last position, left as it is, keeps every member out of the standby leader race
  // until the new source's WAL has passed it, rewound or not.
  await fitLeaderPositionToSource(region, info, req.fromArchive);
  armOwnWalForRewind(region, info);
  const demoted = info;
  const rw = await withOwnWalDisarmed(region, info, async () => {
    await patchDynamicConfig(demoted, etcdPort, { pause: null });
    await waitFollowing(region, demoted, req, timeoutMs, since);
    // Another member (a replica whose data predates the fork) may win the standby leader race while the former
    // leader is still rewinding: the report waits for every pg_rewind started here to end.
    return pollUntil(
      timeoutMs,
      async () => {
        const r = rewindsSince(logsOf(region, demoted), since);
        return r.running.length ? null : r;
      },
      async () => ({ message: `${region.name}/${name}: pg_rewind still running ${timeoutMs} ms after the cluster followed ${req.sourceRef}`, facts: { cluster: name } }),
    );
  });
  return { changed: true, rewound: rw.rewound, rewindLog: rw.lines, targetWalFromArchive: rewindArchiveFetches(rw.lines) };
}

/**
 * Until no member holds the leader key: a paused Patroni drops it on its first cycle after its Postgres stopped,
 * and only then records that Postgres as stopped. Resumed before that, Patroni 4 takes the stop for a crash of the
 * primary it leads and starts it as a primary again ("starting primary after failure", standby_cluster or not),
 * then demotes it with a new shutdown checkpoint past the point where the new source's timeline forked off: a
 * cluster that follows through the archive alone then finds no checkpoint to start from and has no host to
 * pg_rewind against. Released, every member starts in recovery and the standby leader is chosen by a race. A
 * holder whose Postgres already answers in recovery (Patroni released the key, started it as a standby once
 * standby_cluster was set and took the key back between two looks) is as good.
 */
async function waitLeaderKeyReleased(region: SwitchHandle, info: LocalClusterInfo, etcdPort: number): Promise<void> {
  let holder: string | null = null;
  // Patroni's loop_wait is 10 s and a dead holder's key lapses after its ttl (30 s).
  const timeoutMs = 60_000;
  await pollUntil(
    timeoutMs,
    async () => {
      holder = await leaderKeyHolder(info, etcdPort);
      if (holder === null) return true;
      // Asked of Postgres itself: Patroni's REST answers and member keys lag a stop it has not looked at yet.
      const cfg = await region.pgConfig(info.name, { member: holder }).catch(() => null);
      return cfg && (await liveFacts(cfg))?.in_recovery === true ? true : null;
    },
    async () => ({
      message: `${region.name}/${info.name}: ${holder} still holds the leader key ${timeoutMs} ms after its Postgres stopped; ` +
        `resuming now would let its Patroni restart it as a primary. Last log lines of ${holder}:\n` +
        logTail(region.memberPaths(info.name, holder ?? info.members[0].name).logFile),
      facts: { cluster: info.name, leader: holder },
    }),
  );
}

/**
 * A former primary that archives gets, until its demotion ends, a restore_command that pg_rewind alone may use: its
 * OWN WAL from its own prefix, which a member that kept running after the fork has recycled (rewind-wal.ts).
 */
function armOwnWalForRewind(region: RegionHandle, info: LocalClusterInfo): void {
  const dir = clusterDir(region.cfg.dataDir, info.name);
  const ownEnv = join(dir, 'walg', 'archive.env');
  if (!info.archive || !existsSync(ownEnv)) return;
  const u = lookupUser(runAsOf(region));
  const owner = { uid: u.uid, gid: u.gid };
  writeFileAtomic(rewindRestorePath(dir), rewindRestoreScript(shq(walgBin()), ownEnv), 0o700, owner);
  armRewindRestore(info.members.map((m) => m.dataDir), rewindRestorePath(dir), owner);
}

/** Runs `work` and takes the rewind's restore_command out again, whether the demotion succeeded or pg_rewind failed. */
async function withOwnWalDisarmed<T>(region: RegionHandle, info: LocalClusterInfo, work: () => Promise<T>): Promise<T> {
  const u = lookupUser(runAsOf(region));
  const disarm = () => disarmRewindRestore(info.members.map((m) => m.dataDir), { uid: u.uid, gid: u.gid });
  try {
    const r = await work();
    disarm();
    return r;
  } catch (err) {
    // A timeout keeps it: Patroni may still be about to rewind a member, and a retry of the demotion disarms it.
    if (err instanceof RewindFailedError) disarm();
    throw err;
  }
}

const logsOf = (region: RegionHandle, info: LocalClusterInfo) =>
  info.members.map((m) => ({ member: m.name, file: region.memberPaths(info.name, m.name).logFile }));

/**
 * Until the leader is a running standby_leader, and when streaming, its WAL receiver streams from fromHost.
 * A pg_rewind that failed on every member that tried it ends the wait at once (RewindFailedError): Patroni
 * does not retry it, so only a reseed brings such a cluster back.
 */
async function waitFollowing(region: SwitchHandle, info: LocalClusterInfo, req: DemoteSpec, timeoutMs: number, since: Date): Promise<void> {
  let last = '';
  await pollUntil(
    timeoutMs,
    async () => {
      const rw = rewindsSince(logsOf(region, info), since);
      if (rw.failed.length && !rw.rewound) {
        throw new RewindFailedError(
          `${region.name}/${info.name}: pg_rewind against ${req.sourceRef} failed on ${rw.failed.join(', ')}: it must be reseeded\n` +
            rw.lines.slice(-15).join('\n'),
          { cluster: info.name, source: req.sourceRef, failed: rw.failed },
        );
      }
      const view = await clusterView(info);
      last = describeView(view);
      const l = leaderOf(view);
      const lm = l && info.members.find((m) => m.name === l.name);
      if (!l || !lm || l.role !== 'standby_leader') return null;
      // /cluster names the role from the config alone; the node's own /patroni says what Postgres is.
      const node = await patroniGet<PatroniNodeStatus>(restUrl(lm), '/patroni');
      if (node?.role !== 'standby_leader' || node.state !== 'running') return null;
      if (!req.fromHost) return true;
      const rx = await walReceiver(await region.pgConfig(info.name, { member: lm.name }));
      last += rx ? `; ${lm.name} WAL receiver ${rx.status} from ${rx.sender_host}:${rx.sender_port}` : `; ${lm.name} has no WAL receiver`;
      return rx?.status === 'streaming' && Number(rx.sender_port) === req.fromHost.port ? true : null;
    },
    async () => ({
      message: `${region.name}/${info.name} is not a standby of ${req.sourceRef} ${timeoutMs} ms after resuming (${last}); ` +
        `last log lines of ${info.members[0].name}:\n${logTail(region.memberPaths(info.name, info.members[0].name).logFile)}`,
      facts: { cluster: info.name, source: req.sourceRef, state: last },
    }),
  );
}

export async function walReceiver(cfg: ClientConfig): Promise<{ status: string; sender_host: string; sender_port: number } | null> {
  const c = new Client({ ...cfg, connectionTimeoutMillis: 3_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query<{ status: string; sender_host: string; sender_port: number }>(
      'select status, sender_host, sender_port from pg_stat_wal_receiver',
    );
    return r.rows[0] ?? null;
  } catch {
    return null;
  } finally {
    await c.end().catch(() => undefined);
  }
}
