// Failback through the Zalando operator: a former primary comes back as a standby of the promoted cluster, the
// operator's way. Reading (assess, quarantine) goes through pods/exec, since it must work with Postgres down and
// Patroni paused or dead. Rewind is Patroni's own, as on a local site: standby_cluster written while paused, then
// resumed. Reseed is the operator's documented failback: delete the postgresql object and create it again as a
// standby (a new uid, so a new archive prefix; the diverged one is left as it was).
//
// How a failed pg_rewind is seen: Patroni's log, which a Spilo container writes to its stdout, read through
// pods/log (RBAC `pods/log` get). Patroni's REST API does not report it (after a failed rewind /patroni still
// answers "starting"/"stopped" like any slow start, and a standby that cannot follow its source may even report
// `running`), while Patroni's own words are terminal: "Failed to rewind from healty primary" (it never retries),
// or "pg_rewind exit code=0". The same rules read local Patroni logs (local/patroni-log.ts).
import type {
  DemoteRequest, DemoteResult, FormerPrimaryAssessment, QuarantineRequest, QuarantineResult, ReseedRequest, ReseedResult,
} from '../site-driver';
import { patroniRole } from '../site-driver';
import { memberStateRunning } from '../patroni-states';
import {
  BadInputError, ClusterNotFoundError, NotReadyError, PreconditionFailedError, RewindFailedError, SiteUnreachableError, WaitTimedOutError,
} from '../../../workflows/contracts/errors';
import {
  CONTAINER, credentialsSecretName, isLeader, PGDATA, SOURCE_ANNOTATION, standbySpec,
  type PodObject, type PostgresqlObject, type ZalandoSiteDriver,
} from '../zalando-driver';
import { lastPrimary } from '../local/cluster-state';
import { assessLive, assessStopped, liveFacts, walFileRange, type WalAccess } from '../local/former-primary';
import { rewindReport, type RewindReport } from '../local/patroni-log';
import { parseControlData, type ControlData } from '../local/pg-control';
import { quarantineFrom, validateQuarantine } from '../local/quarantine-wal';
import { walReceiver } from '../local/standby-switch';

/** When the runbooks made this object a standby by demotion (not by creation): a reseed never counts it as done. */
export const DEMOTED_AT_ANNOTATION = 'standby-runbooks.dev/demoted-at';
/** On a reseeded object: the archive prefix of the incarnation it replaced (its diverged timeline is there). */
export const PREVIOUS_PREFIX_ANNOTATION = 'standby-runbooks.dev/previous-wal-prefix';
/** On the cluster's `postgres` Secret, which outlives the object: an unfinished reseed (no values, only names). */
const PENDING_RESEED_ANNOTATION = 'standby-runbooks.dev/pending-reseed';
// A function, not a constant: this module and zalando-driver.ts import each other.
const pgWal = () => `${PGDATA}/pg_wal`;
/** What the operator (1.11+, syncStandbyClusterConfiguration) writes for spec.standby; Spilo writes env-standby. */
const SPILO_RESTORE = 'envdir "/run/etc/wal-e.d/env-standby" /scripts/restore_command.sh "%f" "%p"';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sameJson = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export function validateSource(d: ZalandoSiteDriver, cluster: string, sourceRef: string, what: string): void {
  if (!/^[a-z][a-z0-9-]*\/[a-z][a-z0-9-]*$/.test(sourceRef)) throw new BadInputError(`${what} ${d.site}/${cluster}: sourceRef "${sourceRef}" is not <site>/<cluster>`);
  if (sourceRef === `${d.site}/${cluster}`) throw new BadInputError(`${what} ${d.site}/${cluster}: a cluster cannot follow itself`);
}

export async function needPostgresql(d: ZalandoSiteDriver, cluster: string): Promise<PostgresqlObject> {
  const pg = await d.getPostgresql(cluster);
  if (!pg) throw new ClusterNotFoundError(`no postgresql ${cluster} in namespace ${d.cfg.namespace} (site ${d.site})`, { cluster, site: d.site });
  return pg;
}

async function exec(d: ZalandoSiteDriver, pod: PodObject, argv: string[], timeoutMs = 60_000) {
  return d.kube.exec(pod.metadata.name, CONTAINER, argv, timeoutMs);
}

async function controlData(d: ZalandoSiteDriver, pod: PodObject): Promise<ControlData | null> {
  const r = await exec(d, pod, ['pg_controldata', PGDATA]).catch(() => null);
  return r?.exitCode === 0 ? parseControlData(r.stdout) : null;
}

/** pg_wal of a pod, read with `ls`, pg_waldump and base64 in its container. */
async function podWal(d: ZalandoSiteDriver, pod: PodObject): Promise<WalAccess & { read(file: string): Promise<Buffer> }> {
  const ls = await exec(d, pod, ['ls', pgWal()]);
  if (ls.exitCode !== 0) throw new SiteUnreachableError(`${d.site}: ls ${pgWal()} in pod ${pod.metadata.name} exited ${ls.exitCode}: ${ls.stderr.trim()}`);
  return {
    files: ls.stdout.split('\n').map((f) => f.trim()).filter((f) => walFileRange(f) !== null).sort(),
    waldump: (args) => exec(d, pod, ['pg_waldump', ...args, '--path', pgWal()], 300_000).catch(() => null),
    read: async (file) => {
      // exec carries text: base64 keeps the bytes intact (a segment is 16 MiB, about 22 MB on the wire).
      const r = await exec(d, pod, ['base64', '-w0', `${pgWal()}/${file}`], 300_000);
      if (r.exitCode !== 0) throw new SiteUnreachableError(`${d.site}: reading ${file} in pod ${pod.metadata.name} exited ${r.exitCode}: ${r.stderr.trim()}`);
      return Buffer.from(r.stdout.trim(), 'base64');
    },
  };
}

/** Patroni's leader pod when Patroni answers, else the pod whose control file says it last ran as a primary. */
async function formerLeaderPod(d: ZalandoSiteDriver, cluster: string): Promise<{ pod: PodObject; pods: PodObject[] }> {
  const pods = await d.pods(cluster);
  if (!pods.length) throw new PreconditionFailedError(`${d.site}/${cluster} has no pods: its StatefulSet must run (scaled to 0 or region still down?)`, { cluster });
  const view = await d.patroniView(pods);
  const leader = view?.members.find(isLeader);
  const byView = leader && pods.find((p) => p.metadata.name === leader.name);
  if (byView) return { pod: byView, pods };
  const seen = await Promise.all(pods.map(async (p) => ({ item: p, cd: await controlData(d, p) })));
  return { pod: lastPrimary(seen) ?? pods[0], pods };
}

async function accepting(d: ZalandoSiteDriver, pods: PodObject[]): Promise<string[]> {
  const open: string[] = [];
  for (const p of pods) if (!(await d.allRefuseConnections([p]))) open.push(p.metadata.name);
  return open;
}

export async function assessFormerPrimary(d: ZalandoSiteDriver, cluster: string): Promise<FormerPrimaryAssessment> {
  await needPostgresql(d, cluster);
  const { pod } = await formerLeaderPod(d, cluster);
  const wal = await podWal(d, pod);
  if ((await accepting(d, [pod])).length) {
    const live = await liveFacts(await d.podPgConfig(cluster, pod));
    if (live) return assessLive(pod.metadata.name, live, wal.files);
    // Accepting but not answering (starting, crash recovery): the control file is still the best source.
  }
  return assessStopped(pod.metadata.name, (await accepting(d, [pod])).length > 0, await controlData(d, pod), wal);
}

export async function quarantineWal(d: ZalandoSiteDriver, cluster: string, req: QuarantineRequest): Promise<QuarantineResult> {
  validateQuarantine(req);
  await needPostgresql(d, cluster);
  const { pod, pods } = await formerLeaderPod(d, cluster);
  // A segment being written while it is read is a torn copy; and a running primary keeps diverging.
  const open = await accepting(d, pods);
  if (open.length) {
    throw new PreconditionFailedError(`${d.site}/${cluster}: Postgres accepts connections in ${open.join(', ')}: fence it before quarantining its WAL`, { cluster, running: open });
  }
  const wal = await podWal(d, pod);
  return quarantineFrom({ site: d.site, cluster, member: pod.metadata.name, cd: await controlData(d, pod), wal, read: wal.read }, req);
}

// ---- demote (rewind) ------------------------------------------------------------------------------------------

/** The standby_cluster section the operator writes for this spec.standby (so its next sync finds nothing to change). */
function operatorStandbySection(standby: NonNullable<PostgresqlObject['spec']['standby']>): Record<string, unknown> {
  return {
    create_replica_methods: ['bootstrap_standby_with_wale', 'basebackup_fast_xlog'],
    restore_command: SPILO_RESTORE,
    ...(standby.standby_host ? { host: standby.standby_host, port: standby.standby_port } : {}),
    ...(standby.standby_host && standby.standby_primary_slot_name ? { primary_slot_name: standby.standby_primary_slot_name } : {}),
  };
}

/** Patroni's standby_cluster already points at this source (whoever wrote it: the operator's sync, or us). */
export function followsSource(section: unknown, req: DemoteRequest): boolean {
  const s = section as { host?: string; port?: string | number; restore_command?: string; primary_slot_name?: string } | null | undefined;
  if (!s) return false;
  const hostOk = req.fromHost
    ? s.host === req.fromHost.host && String(s.port) === String(req.fromHost.port) && (s.primary_slot_name ?? null) === (req.slotName ?? null)
    : !s.host;
  return hostOk && (!req.fromArchive || !!s.restore_command);
}

async function patroniOrFail(d: ZalandoSiteDriver, cluster: string, pod: PodObject, body: unknown, what: string): Promise<void> {
  const r = await d.patroni(pod, 'PATCH', '/config', body);
  if (r?.status !== 200) throw new SiteUnreachableError(`${d.site}/${cluster}: ${what} via ${pod.metadata.name} answered ${r?.status ?? 'nothing'}`, { cluster });
}

/** pg_rewind as Patroni logged it in every pod since `since` (pods/log). */
async function rewinds(d: ZalandoSiteDriver, cluster: string, since: Date): Promise<RewindReport> {
  const pods = await d.pods(cluster);
  return rewindReport(await Promise.all(pods.map(async (p) => ({
    member: p.metadata.name, lines: (await d.kube.podLog(p.metadata.name, CONTAINER, since)) ?? [],
  }))));
}

/**
 * Until the leader is a running standby_leader and, when streaming, its WAL receiver streams from fromHost.
 * A pg_rewind that failed on every pod that tried it ends the wait at once: Patroni does not retry it.
 */
async function waitFollowing(d: ZalandoSiteDriver, cluster: string, req: DemoteRequest, since: Date, timeoutMs: number): Promise<RewindReport> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no leader';
  for (;;) {
    const rw = await rewinds(d, cluster, since);
    if (rw.failed.length && !rw.rewound) {
      throw new RewindFailedError(`${d.site}/${cluster}: pg_rewind against ${req.sourceRef} failed in ${rw.failed.join(', ')} (Patroni's log): it must be reseeded\n` +
        rw.lines.slice(-15).join('\n'), { cluster, source: req.sourceRef, failed: rw.failed });
    }
    const leader = await d.leaderPod(cluster);
    const node = leader && (await d.patroni<{ role?: string; state?: string }>(leader.pod, 'GET', '/patroni'))?.body;
    last = leader ? `${leader.pod.metadata.name} ${node?.role ?? '?'}/${node?.state ?? '?'}` : 'no leader';
    // Another pod may win the standby leader race while the former leader still rewinds: wait for those to end.
    if (node?.role === 'standby_leader' && node.state === 'running' && !rw.running.length) {
      if (!req.fromHost) return rw;
      const rx = await walReceiver(await d.podPgConfig(cluster, leader!.pod));
      last += rx ? `, WAL receiver ${rx.status} from ${rx.sender_host}:${rx.sender_port}` : ', no WAL receiver';
      if (rx?.status === 'streaming' && Number(rx.sender_port) === req.fromHost.port) return rw;
    }
    if (Date.now() > deadline) {
      throw new WaitTimedOutError(`${d.site}/${cluster} is not a standby of ${req.sourceRef} ${timeoutMs / 1000} s after resuming (${last}); see its pods' logs`, { cluster, state: last });
    }
    await sleep(1000);
  }
}

/** The runbooks demoted this object into a standby of req.sourceRef (by a fence, or by Patroni 4 while it ran). */
export function demotionRecorded(pg: PostgresqlObject, req: DemoteRequest): boolean {
  const notes = pg.metadata.annotations ?? {};
  return notes[SOURCE_ANNOTATION] === req.sourceRef && !!notes[DEMOTED_AT_ANNOTATION] && sameJson(pg.spec.standby, standbySpec(req));
}

/**
 * The operator's view of a standby of req.sourceRef recorded (spec.standby, STANDBY_* env, the source annotation and
 * `annotations`): the operator then leaves the cluster alone, and 1.11+ writes standby_cluster into Patroni itself
 * on its next sync; what it did not write within 30 s is written through `view.via` in the operator's own form.
 */
export async function pointAtSource(
  d: ZalandoSiteDriver, cluster: string, pg: PostgresqlObject, req: DemoteRequest,
  view: { config: Record<string, unknown> | null; via: PodObject }, annotations: Record<string, string>,
): Promise<void> {
  const standby = standbySpec(req);
  const env = [...(pg.spec.env ?? []).filter((e) => !e.name.startsWith('STANDBY_')), ...(await d.standbyEnv(cluster, req.fromArchive))];
  await d.kube.mergePatch(d.pgPath(cluster), {
    metadata: { annotations: { [SOURCE_ANNOTATION]: req.sourceRef, ...annotations } },
    spec: { standby, env },
  });
  let config = view.config;
  for (const until = Date.now() + 30_000; !followsSource(config?.standby_cluster, req) && Date.now() < until; await sleep(1000)) {
    config = (await d.patroni<Record<string, unknown>>(view.via, 'GET', '/config'))?.body ?? config;
  }
  if (!followsSource(config?.standby_cluster, req)) {
    // PATCH merges: a leftover section (another source) goes first so no stale key survives.
    if (config?.standby_cluster != null) await patroniOrFail(d, cluster, view.via, { standby_cluster: null }, 'clearing standby_cluster');
    await patroniOrFail(d, cluster, view.via, { standby_cluster: operatorStandbySection(standby) }, 'writing standby_cluster');
  }
}

/**
 * Fenced (paused, Postgres down) former primary -> standby of req.sourceRef: the operator's view recorded and
 * standby_cluster written (pointAtSource), then Patroni is resumed and rewinds on its own. A cluster Patroni 4
 * demoted while running (native-demote.ts) records the same, so this finds it done.
 */
export async function demoteToStandby(d: ZalandoSiteDriver, cluster: string, req: DemoteRequest, timeoutMs = 300_000): Promise<DemoteResult> {
  validateSource(d, cluster, req.sourceRef, 'demote');
  if (!req.fromHost && !req.fromArchive) throw new BadInputError(`demote ${d.site}/${cluster}: a standby needs a host to stream from, an archive, or both`);
  const pg = await needPostgresql(d, cluster);
  const own = (await d.describeCluster(cluster))?.archive.walPrefix;
  if (req.fromArchive && req.fromArchive.archive.walPrefix === own) throw new BadInputError(`demote ${d.site}/${cluster}: fromArchive is this cluster's own archive`);
  const pods = await d.pods(cluster);
  const view = await d.patroniView(pods);
  if (!view) throw new SiteUnreachableError(`${d.site}/${cluster}: no Patroni answers in its pods; they must run (Patroni paused by the fence) before it can be demoted`, { cluster });
  const notes = pg.metadata.annotations ?? {};
  if (demotionRecorded(pg, req) && followsSource(view.config?.standby_cluster, req) && view.config?.pause !== true) {
    // Done by an earlier call (resuming is its last write): report the rewind it saw, or fail as it would have.
    const rw = await waitFollowing(d, cluster, req, new Date(notes[DEMOTED_AT_ANNOTATION]), timeoutMs);
    return { changed: false, rewound: rw.rewound, rewindLog: rw.lines };
  }
  const open = await accepting(d, pods);
  if (open.length) {
    throw new PreconditionFailedError(`${d.site}/${cluster} is not fenced (Postgres accepts connections in ${open.join(', ')}): fence it before demoting`, { cluster, running: open });
  }
  if (view.config?.pause !== true) await patroniOrFail(d, cluster, view.via, { pause: true }, 'pausing Patroni');
  const since = new Date();
  await pointAtSource(d, cluster, pg, req, view, { [DEMOTED_AT_ANNOTATION]: since.toISOString() });
  await waitLeaderKeyReleased(d, cluster, pods);
  await patroniOrFail(d, cluster, view.via, { pause: false }, 'resuming Patroni');
  const rw = await waitFollowing(d, cluster, req, since, timeoutMs);
  return { changed: true, rewound: rw.rewound, rewindLog: rw.lines };
}

/**
 * Resumes only once no pod holds the leader key: a paused Patroni drops it when it finds its Postgres down; resumed
 * while it still holds it, Patroni 4 restarts the old primary read-write first (local/standby-switch.ts
 * waitLeaderKeyReleased says why), unless its Postgres already answers in recovery. Patroni looks once per loop_wait
 * while paused; 60 s leaves room for two loops.
 */
async function waitLeaderKeyReleased(d: ZalandoSiteDriver, cluster: string, pods: PodObject[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await d.patroniView(pods);
    const holder = view ? view.members.find(isLeader)?.name ?? null : 'unknown (no Patroni answers)';
    if (holder === null || (await answersInRecovery(d, cluster, pods, holder))) return;
    if (Date.now() > deadline) {
      throw new NotReadyError(`${d.site}/${cluster}: ${holder} still holds the leader key ${timeoutMs} ms after the pause: not resuming`, { cluster, leaderKeyHolder: holder });
    }
    await sleep(500);
  }
}

/** Whether the pod's Postgres itself says it runs in recovery (Patroni's view lags a stop it has not looked at yet). */
async function answersInRecovery(d: ZalandoSiteDriver, cluster: string, pods: PodObject[], name: string): Promise<boolean> {
  const pod = pods.find((p) => p.metadata.name === name);
  if (!pod || (await d.allRefuseConnections([pod]))) return false;
  return (await liveFacts(await d.podPgConfig(cluster, pod)))?.in_recovery === true;
}

// ---- reseed ---------------------------------------------------------------------------------------------------

interface PendingReseed {
  sourceRef: string;
  previousUid: string;
  previousWalPrefix: string;
  like: { pgVersion: number; instances: number; volumeSize: string };
}

const postgresSecretPath = (d: ZalandoSiteDriver, cluster: string) => d.kube.path('', `secrets/${credentialsSecretName('postgres', cluster)}`);

async function readPending(d: ZalandoSiteDriver, cluster: string): Promise<PendingReseed | null> {
  const s = await d.kube.get(postgresSecretPath(d, cluster));
  const text = s?.metadata.annotations?.[PENDING_RESEED_ANNOTATION];
  return text ? (JSON.parse(text) as PendingReseed) : null;
}

async function writePending(d: ZalandoSiteDriver, cluster: string, p: PendingReseed | null): Promise<void> {
  await d.kube.mergePatch(postgresSecretPath(d, cluster), { metadata: { annotations: { [PENDING_RESEED_ANNOTATION]: p ? JSON.stringify(p) : null } } });
}

/**
 * At the moment of the delete, as on local sites (local/reseed-guard.ts): no pod runs as a primary (Patroni's
 * /cluster, pg_is_in_recovery on each pod that accepts connections, pg_controldata of one that runs but refuses SQL),
 * and every readable control file names the assessed system. Refuses, non-retryable, with nothing changed.
 */
async function recheckReseedTarget(d: ZalandoSiteDriver, cluster: string, assessed: string | null | undefined): Promise<void> {
  const where = `${d.site}/${cluster}`;
  const pods = await d.pods(cluster);
  const view = await d.patroniView(pods);
  const primaries = (view?.members ?? []).filter((m) => patroniRole(m.role) === 'primary' && memberStateRunning(m.state))
    .map((m) => `Patroni reports ${m.name} running as ${m.role}`);
  for (const name of await accepting(d, pods)) {
    const pod = pods.find((p) => p.metadata.name === name)!;
    const live = await liveFacts(await d.podPgConfig(cluster, pod));
    if (live && !live.in_recovery) primaries.push(`Postgres in pod ${name} answers pg_is_in_recovery() = false`);
    if (!live && (await controlData(d, pod))?.state === 'in production') primaries.push(`Postgres in pod ${name} accepts connections and its control file says "in production"`);
  }
  if (primaries.length) {
    throw new PreconditionFailedError(
      `reseed ${where} refused: it runs as a primary now (${primaries.join('; ')}); it was assessed as a former primary that no longer ` +
        'takes writes. Nothing was changed: fence it (or find out who promoted it) and rerun failback-reseed.',
      { cluster, evidence: primaries },
    );
  }
  if (!assessed) return;
  const seen: Array<{ member: string; systemIdentifier: string }> = [];
  for (const pod of pods) {
    const sys = (await controlData(d, pod))?.systemIdentifier;
    if (sys) seen.push({ member: pod.metadata.name, systemIdentifier: sys });
  }
  const other = seen.find((x) => x.systemIdentifier !== assessed);
  if (other || !seen.length) {
    throw new PreconditionFailedError(other
      ? `reseed ${where} refused: pod ${other.member} holds system ${other.systemIdentifier}, but the assessment was of system ${assessed}; ` +
          'this is not the cluster that was assessed. Nothing was changed: rerun failback-reseed to assess it again.'
      : `reseed ${where} refused: no pod's control file could be read to confirm the assessed system ${assessed}. Nothing was changed.`,
    { cluster, assessedSystemIdentifier: assessed, seen });
  }
}

/**
 * DESTRUCTIVE (the runbook quarantined first): the operator's failback, delete and recreate. Everything that can
 * refuse runs before the delete; what the recreation needs (source, shape, the old prefix) is written on the
 * `postgres` Secret first, so a retry after a crash between delete and create finishes the job. The Secrets'
 * values are read before the delete and written back if the operator deleted them (enable_secrets_deletion);
 * the operator adopts Secrets that exist. The operator must delete the PVCs (enable_persistent_volume_claim_deletion,
 * its default): a new StatefulSet on the old volumes would start the old data again.
 */
export async function reseedAsStandby(d: ZalandoSiteDriver, cluster: string, req: ReseedRequest, onProgress?: (detail: string) => void): Promise<ReseedResult> {
  validateSource(d, cluster, req.sourceRef, 'reseed');
  if (!req.fromArchive?.backupName) throw new BadInputError(`reseed ${d.site}/${cluster}: a reseed needs the source backup to bootstrap from`);
  let pg = await d.getPostgresql(cluster);
  let pending = await readPending(d, cluster);
  if (!pg && !pending) throw new ClusterNotFoundError(`no postgresql ${cluster} in namespace ${d.cfg.namespace} (site ${d.site})`, { cluster, site: d.site });
  if (pending && pending.sourceRef !== req.sourceRef) {
    throw new PreconditionFailedError(`reseed ${d.site}/${cluster} toward ${pending.sourceRef} is unfinished: finish it first`, { cluster, pending: pending.sourceRef });
  }
  const createReq = (like: PendingReseed['like']) => ({ cluster, like, sourceRef: req.sourceRef, fromArchive: req.fromArchive, fromHost: req.fromHost, slotName: req.slotName });
  // Created (not demoted) as a standby of this source, and not the incarnation being replaced: done, or our
  // recreation to wait for.
  const created = pg && pg.metadata.uid !== pending?.previousUid && pg.metadata.annotations?.[SOURCE_ANNOTATION] === req.sourceRef &&
    !pg.metadata.annotations?.[DEMOTED_AT_ANNOTATION];
  if (pg && created) {
    const facts = (await d.describeCluster(cluster))!;
    await d.createStandby(createReq({ pgVersion: facts.pgVersion, instances: pg.spec.numberOfInstances, volumeSize: pg.spec.volume.size }), {}, onProgress);
    if (pending) await writePending(d, cluster, null);
    return { changed: !!pending, walPrefix: facts.archive.walPrefix, previousWalPrefix: pending?.previousWalPrefix ?? null };
  }

  const users = await d.listSecretUsers(cluster);
  const values = new Map(await Promise.all(users.map(async (u) => [u, await d.readSecret(cluster, u)] as const)));
  if (!values.get('postgres') || !values.get('standby')) {
    throw new PreconditionFailedError(`reseed ${d.site}/${cluster}: Secrets ${credentialsSecretName('postgres', cluster)} and ${credentialsSecretName('standby', cluster)} must hold the source's values`, { cluster });
  }
  if (pg) {
    const facts = await d.describeCluster(cluster);
    // Its own prefix holds its own (diverged) history, never the new primary's.
    if (req.fromArchive.archive.walPrefix === facts!.archive.walPrefix) throw new BadInputError(`reseed ${d.site}/${cluster}: fromArchive is this cluster's own archive`);
    // The old volumes go with the object (the operator deletes the PVCs), so no copy of the data directory is kept
    // here as on a local site. What stays: its own archive prefix (backups and archived WAL, never deleted by a
    // runbook) and the divergent WAL the protect step quarantined; this re-check is the last line before the rest.
    await recheckReseedTarget(d, cluster, req.assessedSystemIdentifier);
    pending = {
      sourceRef: req.sourceRef, previousUid: pg.metadata.uid!, previousWalPrefix: facts!.archive.walPrefix,
      like: { pgVersion: facts!.pgVersion, instances: pg.spec.numberOfInstances, volumeSize: pg.spec.volume.size },
    };
    await writePending(d, cluster, pending);
    onProgress?.(`deleting postgresql ${cluster} (uid ${pg.metadata.uid}): the operator removes its pods and volumes`);
    await d.kube.delete(d.pgPath(cluster));
  }
  // Until the old incarnation and its pods are gone (a new object, made by an earlier attempt of this call, ends it).
  const oldOnes = async () => ((pg = await d.getPostgresql(cluster)) ? pg.metadata.uid === pending!.previousUid : (await d.pods(cluster)).length > 0);
  for (const until = Date.now() + 300_000; await oldOnes(); await sleep(1000)) {
    if (Date.now() > until) throw new NotReadyError(`reseed ${d.site}/${cluster}: the old incarnation's object or pods are still there 300 s after the delete`, { cluster });
    onProgress?.(`waiting for the operator to remove ${cluster}'s ${pg ? 'object' : 'pods'}`);
  }
  for (const [user, value] of values) if (value && !sameJson(await d.readSecret(cluster, user), value)) await d.writeSecret(cluster, user, value);
  onProgress?.(`bootstrap: creating ${cluster} again as a standby of ${req.sourceRef} from ${req.fromArchive.backupName}`);
  await d.createStandby(createReq(pending!.like), { [PREVIOUS_PREFIX_ANNOTATION]: pending!.previousWalPrefix }, onProgress);
  await writePending(d, cluster, null);
  return { changed: true, walPrefix: (await d.describeCluster(cluster))!.archive.walPrefix, previousWalPrefix: pending!.previousWalPrefix };
}
