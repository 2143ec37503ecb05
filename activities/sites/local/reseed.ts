// Failback by reseeding: when a former primary cannot be rewound (another system identifier, no WAL for the
// rewind, a failed pg_rewind), its data is set aside and it is bootstrapped again as a fresh standby of the
// promoted cluster, from that cluster's base backup and archive and/or by streaming. DESTRUCTIVE: the runbook
// quarantines the divergent WAL first. Name, member count and secrets stay; the uid does not: like the operator's
// delete-and-recreate, the reseeded cluster is a new incarnation that archives under a new prefix, and the old
// prefix, which holds the diverged timeline (WAL and history files the new primary's history does not know), is
// left untouched, so no later restore can mix the two histories. The old data is not deleted: at the moment of the
// stop the target is checked again (not a primary, the assessed system), then its folder is renamed aside and
// removed only once the new standby replays (reseed-guard.ts).
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError, ClusterNotFoundError, PreconditionFailedError, SiteUnreachableError } from '../../../workflows/contracts/errors';
import type { ReseedResult } from '../site-driver';
import type { S3ArchiveConfig } from '../sites-file';
import { checkSourceHost, resolveSourceBackup } from './cluster-checks';
import { clustersDir, type CreateLocalClusterSpec, type LocalClusterInfo } from './cluster-files';
import { readDynamicConfig } from './dcs-config';
import { etcdDeletePrefix } from './etcd';
import { writeFileAtomic } from './fs-util';
import { nodeRunsAs, type ProgressFn } from './members';
import { postmasterPid } from './pg-control';
import type { LocalRegion } from './region';
import { asideDirFor, moveAside, proveReplay, recheckTarget, removeAside } from './reseed-guard';
import { parseS3Url } from './walg-env';

export interface ReseedSpec {
  sourceRef: string;
  fromArchive: { s3: S3ArchiveConfig; walPrefix: string; backupName: string };
  fromHost?: { host: string; port: number };
  /** The source's permanent slot to stream through (streaming only). */
  slotName?: string;
  /** The system identifier the runbook assessed: a target holding another one is refused, untouched. */
  assessedSystemIdentifier?: string | null;
  /** Names the aside copy of the old data (the run's id), with the time. */
  runTag?: string;
}

/** What survives the wipe, written before it: a retry after a crash mid-wipe still knows what to re-create. */
interface Pending {
  /** The new incarnation's uid, chosen once so a retry re-creates the same one. */
  uid: string;
  previousArchivePrefix: string | null;
  members: number;
  archive: boolean;
  sourceRef: string;
  /** Where the old incarnation's folder goes (absent in records written before the old data was kept aside). */
  aside?: string;
}

/** A finished reseed: which incarnation it made and what became of the old data, for a retry whose result was lost. */
interface Done {
  uid: string;
  sourceRef: string;
  aside: string | null;
  removed: boolean;
  replayedLsn: string | null;
}

// Under clusters/ but dot-named, so listClusterFiles ignores it.
const pendingFile = (dataDir: string, name: string) => join(clustersDir(dataDir), `.reseed-${name}.json`);

const doneFile = (dataDir: string, name: string) => join(clustersDir(dataDir), `.reseed-${name}.done.json`);

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

const readPending = (dataDir: string, name: string) => readJson<Pending>(pendingFile(dataDir, name));

const oldDataOf = (d: Done | null): ReseedResult['oldData'] =>
  d?.aside ? { location: d.aside, removed: d.removed, replayedLsn: d.replayedLsn } : null;

function validate(region: LocalRegion, name: string, info: LocalClusterInfo | null, req: ReseedSpec): void {
  const bad = (msg: string) => new BadInputError(`reseed ${region.name}/${name}: ${msg}`, { cluster: name });
  if (!/^[a-z][a-z0-9-]*\/[a-z][a-z0-9-]*$/.test(req.sourceRef)) throw bad(`sourceRef "${req.sourceRef}" is not <site>/<cluster>`);
  if (req.sourceRef === `${region.name}/${name}`) throw bad('a cluster cannot follow itself');
  if (!req.fromArchive?.backupName) throw bad('a reseed needs the source backup to bootstrap from');
  if (parseS3Url(req.fromArchive.walPrefix).bucket !== req.fromArchive.s3.bucket) throw bad('walPrefix bucket differs from the archive config');
  // Its own prefix holds its own (diverged) history, never the new primary's.
  if (info && req.fromArchive.walPrefix === info.archivePrefix) throw bad('fromArchive is this cluster\'s own archive');
  if (req.fromHost && info?.members.some((m) => m.pgPort === req.fromHost?.port)) throw bad('fromHost is one of its own members');
}

/** Configured as a standby of this source in cluster.json AND the DCS, with a running standby_leader. */
async function alreadyStandbyOf(region: LocalRegion, info: LocalClusterInfo, req: ReseedSpec): Promise<boolean> {
  if (info.standby?.sourceRef !== req.sourceRef) return false;
  const dcs = await readDynamicConfig(info, region.cfg.etcd.clientPort);
  if (dcs?.config.standby_cluster == null) return false;
  const l = await region.leaderMember(info.name);
  return !!l && l.role === 'standby_leader' && (await nodeRunsAs(l, ['standby_leader']));
}

/** Stops every member, removes the DCS scope and moves the cluster folder (data, configs, WAL-G env) aside. Logs stay. */
async function stopAndMoveAside(region: LocalRegion, info: LocalClusterInfo, aside: string): Promise<void> {
  // A paused Patroni leaves Postgres running when it exits: stopCluster stops a leftover postmaster fast.
  await region.stopCluster(info.name);
  const alive = info.members.filter((m) => postmasterPid(m.dataDir) !== null).map((m) => m.name);
  if (alive.length) {
    throw new PreconditionFailedError(`reseed ${region.name}/${info.name}: Postgres still runs on ${alive.join(', ')} after stop`, {
      cluster: info.name, running: alive,
    });
  }
  if (!(await region.etcdHealthy())) {
    throw new SiteUnreachableError(`reseed ${region.name}/${info.name}: etcd is down, its DCS keys cannot be removed`, { cluster: info.name });
  }
  // The old leader key and config (with the old standby_cluster or none) must not steer the new bootstrap.
  await etcdDeletePrefix(region.cfg.etcd.clientPort, `/service/${info.name}/`);
  moveAside(region.cfg.dataDir, info.name, aside);
}

export async function reseedAsStandby(
  region: LocalRegion,
  name: string,
  req: ReseedSpec,
  opts: { onProgress?: ProgressFn; timeoutMs?: number } = {},
): Promise<ReseedResult> {
  const progress: ProgressFn = opts.onProgress ?? (() => undefined);
  const info = region.getCluster(name);
  let pending = readPending(region.cfg.dataDir, name);
  // The incarnation an earlier call of this reseed made: never the "old data" of a retry.
  const done = readJson<Done>(doneFile(region.cfg.dataDir, name));
  const ours = !!info && done?.uid === info.uid && done.sourceRef === req.sourceRef;
  if (!info && !pending) throw new ClusterNotFoundError(`no cluster ${name} in region ${region.name}`, { cluster: name, site: region.name });
  validate(region, name, info, req);
  if (pending && pending.sourceRef !== req.sourceRef) {
    throw new PreconditionFailedError(`reseed ${region.name}/${name} toward ${pending.sourceRef} is unfinished: finish it first`, {
      cluster: name, pending: pending.sourceRef,
    });
  }
  if (info && !pending && (await alreadyStandbyOf(region, info, req))) {
    return { changed: false, walPrefix: info.archivePrefix, previousWalPrefix: null, oldData: ours ? oldDataOf(done) : null };
  }
  const finishingOurs = !pending && ours;
  if (finishingOurs) {
    // Ours but not (yet) a running standby leader, e.g. a member restarting: finish the creation, move nothing.
    pending = {
      uid: info!.uid, previousArchivePrefix: null, members: info!.members.length, archive: info!.archive, sourceRef: req.sourceRef,
      aside: done!.aside ?? undefined,
    };
  }
  if (!pending) {
    pending = {
      uid: randomUUID(), previousArchivePrefix: info!.archivePrefix, members: info!.members.length, archive: info!.archive, sourceRef: req.sourceRef,
      aside: asideDirFor(region.cfg.dataDir, name, req.runTag),
    };
  }

  const spec: CreateLocalClusterSpec = {
    name,
    uid: pending.uid,
    pgVersion: 15,
    members: pending.members,
    archive: pending.archive,
    standby: {
      fromArchive: { s3: req.fromArchive.s3, walPrefix: req.fromArchive.walPrefix, backupName: req.fromArchive.backupName },
      fromHost: req.fromHost,
      ...(req.fromHost && req.slotName ? { slotName: req.slotName } : {}),
      sourceRef: req.sourceRef,
    },
  };
  // Everything that can refuse runs before the wipe: credentials, the source, the backup. After the wipe there is
  // nothing to go back to.
  const superuser = await region.readSecret(name, 'postgres');
  const replication = await region.readSecret(name, 'standby');
  if (!superuser || !replication) {
    throw new PreconditionFailedError(`reseed ${region.name}/${name}: secrets postgres and standby must be there (the source's values)`, { cluster: name });
  }
  if (req.fromHost) await checkSourceHost(name, req.fromHost, { superuser, replication });
  await resolveSourceBackup(spec);

  // A cluster.json of our own re-creation (same source) is a creation to finish; anything else is moved aside.
  const recreating = info?.uid === pending.uid;
  if (info && !recreating) {
    // Checked again here, at the moment of the stop: the assessment that chose this reseed is minutes old.
    await recheckTarget(region, info, req.assessedSystemIdentifier);
    const aside = pending.aside ?? asideDirFor(region.cfg.dataDir, name, req.runTag);
    pending = { ...pending, aside };
    writeFileAtomic(pendingFile(region.cfg.dataDir, name), JSON.stringify(pending) + '\n', 0o644);
    progress({ phase: 'move-aside', detail: `stopping ${name}, removing its DCS keys and moving its data to ${aside}` });
    await stopAndMoveAside(region, info, aside);
  }
  progress({ phase: 'bootstrap', detail: `re-creating ${name} as a standby of ${req.sourceRef} from ${req.fromArchive.backupName}` });
  const created = await region.createCluster(spec, { onProgress: opts.onProgress, timeoutMs: opts.timeoutMs });
  const leader = await region.leaderMember(name);
  const replayedLsn = await proveReplay(region, created.cluster, leader?.name ?? created.cluster.members[0].name, 120_000);
  if (pending.aside && existsSync(pending.aside)) {
    progress({ phase: 'remove-aside', detail: `the new standby replays (${replayedLsn}): removing the old data at ${pending.aside}` });
    removeAside(pending.aside);
  }
  const record: Done = { uid: pending.uid, sourceRef: req.sourceRef, aside: pending.aside ?? null, removed: !!pending.aside, replayedLsn };
  writeFileAtomic(doneFile(region.cfg.dataDir, name), JSON.stringify(record) + '\n', 0o644);
  const file = pendingFile(region.cfg.dataDir, name);
  if (existsSync(file)) rmSync(file);
  return { changed: !finishingOurs, walPrefix: created.cluster.archivePrefix, previousWalPrefix: pending.previousArchivePrefix, oldData: oldDataOf(record) };
}
