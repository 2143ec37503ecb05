// Patroni 4's clean demotion of a RUNNING primary cluster (demote-cluster) on a zalando site, for a planned
// switchover. The operator's view is recorded first, exactly as a fenced demotion records it (failback.ts
// pointAtSource: spec.standby, STANDBY_* env, the source annotation, when it was demoted): the operator 1.11+ then
// writes standby_cluster into Patroni on its own sync, and a Patroni 4 that finds it on its running primary
// fast-stops it (the walsenders hand the shutdown checkpoint to a streaming standby), archives the checkpoint's
// segment itself (Spilo archives) while it keeps the leader key, and starts it again as the standby leader. The
// rejoin after the promotion (demoteToStandby) then finds it done, with no pg_rewind. The version is read from
// Patroni's REST API BEFORE anything is recorded: on a Patroni 3 the operator's own sync of spec.standby would
// demote it with an immediate shutdown, so there nothing is changed and the caller fences instead.
import { Client as PgClient, type ClientConfig } from 'pg';
import { patroniRole, type DemoteRequest, type NativeDemoteOutcome } from '../site-driver';
import { hasDemoteCluster, memberStateRunning } from '../patroni-states';
import { BadInputError, PreconditionFailedError } from '../../../workflows/contracts/errors';
import { pollUntil } from '../local/cluster-state';
import { currentLsnAt, shutdownCheckpointOf } from '../local/native-demote';
import { isLeader, SOURCE_ANNOTATION, type PodObject, type ZalandoSiteDriver } from '../zalando-driver';
import { DEMOTED_AT_ANNOTATION, demotionRecorded, followsSource, needPostgresql, pointAtSource, validateSource } from './failback';

/** What the source annotation held before the demotion ('' for none), so undoing it puts that back. */
export const SOURCE_BEFORE_DEMOTION_ANNOTATION = 'standby-runbooks.dev/source-before-demotion';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type PodWrites = { member: string; state: 'refused' | 'in-recovery' | 'writable' | 'unknown'; checkpoint?: { lsn: string; redo: string } };

async function podWrites(member: string, cfg: ClientConfig): Promise<PodWrites> {
  const c = new PgClient({ ...cfg, connectionTimeoutMillis: 2_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const row = (await c.query<{ rec: boolean; lsn: string; redo: string }>(
      'select pg_is_in_recovery() as rec, checkpoint_lsn::text as lsn, redo_lsn::text as redo from pg_control_checkpoint()',
    )).rows[0];
    return { member, state: row.rec ? 'in-recovery' : 'writable', checkpoint: { lsn: row.lsn, redo: row.redo } };
  } catch (err) {
    return { member, state: /ECONNREFUSED/.test((err as Error).message) ? 'refused' : 'unknown' };
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** GET /patroni's `patroni.version`, from `preferred` first, else from any pod whose Patroni answers. */
export async function patroniVersionOf(d: ZalandoSiteDriver, pods: PodObject[], preferred?: PodObject): Promise<string | undefined> {
  for (const pod of preferred ? [preferred, ...pods] : pods) {
    const v = (await d.patroni<{ patroni?: { version?: string } }>(pod, 'GET', '/patroni'))?.body?.patroni?.version;
    if (v) return v;
  }
  return undefined;
}

/**
 * Demotes a running primary cluster into a standby of `req.sourceRef` the way Patroni >= 4 does it, then proves
 * writes stopped: every pod refuses connections or is in recovery, and the leader runs as standby_leader. The final
 * LSN is the former primary's shutdown checkpoint, read from the pods' control files (local/native-demote.ts says
 * why it stays put). `{ native: false }` with nothing changed when this Patroni cannot, no Patroni answers, or it is
 * paused: the caller fences instead. Already demoted toward that source (recorded, and standby_cluster follows it)
 * is `changed: false`.
 */
export async function demoteRunningPrimary(
  d: ZalandoSiteDriver, cluster: string, req: DemoteRequest, timeoutMs = 120_000,
): Promise<NativeDemoteOutcome | { native: false; patroniVersion?: string; why: string }> {
  validateSource(d, cluster, req.sourceRef, 'demote');
  if (!req.fromHost && !req.fromArchive) throw new BadInputError(`demote ${d.site}/${cluster}: a standby needs a host to stream from, an archive, or both`);
  const where = `${d.site}/${cluster}`;
  const pg = await needPostgresql(d, cluster);
  const pods = await d.pods(cluster);
  const view = await d.patroniView(pods);
  if (!view) return { native: false, why: 'no Patroni answers in its pods' };
  const leader = view.members.find(isLeader);
  const leaderPod = leader && pods.find((p) => p.metadata.name === leader.name);
  const patroniVersion = await patroniVersionOf(d, pods, leaderPod);
  const no = (why: string) => ({ native: false as const, ...(patroniVersion ? { patroniVersion } : {}), why });
  if (!hasDemoteCluster(patroniVersion)) return no(`Patroni ${patroniVersion ?? '(version unknown)'} has no demote-cluster`);
  if (view.config?.pause === true) return no('Patroni is paused (a paused Patroni does not demote)');

  const pgConfigs = new Map(await Promise.all(pods.map(async (p) => [p.metadata.name, await d.podPgConfig(cluster, p)] as const)));
  const done = demotionRecorded(pg, req) && followsSource(view.config?.standby_cluster, req);
  let before: string | null = null;
  if (!done) {
    // Not recorded by a demotion toward this source, yet a standby cluster: not ours to demote (nor to undo later).
    if (view.config?.standby_cluster != null) {
      throw new PreconditionFailedError(
        `${where} is a standby cluster already (${JSON.stringify(view.config.standby_cluster)}), not a primary to demote`, { cluster },
      );
    }
    const primary = leader && patroniRole(leader.role) === 'primary' && memberStateRunning(leader.state) ? leaderPod : undefined;
    if (!primary) return no(`no running primary leads it (${view.members.map((m) => `${m.name} ${m.role}/${m.state}`).join(', ') || 'no members'})`);
    before = await currentLsnAt(pgConfigs.get(primary.metadata.name)!);
    const previous = pg.metadata.annotations?.[SOURCE_ANNOTATION] ?? '';
    // A retry after the annotations were written keeps the first attempt's record of what was there before.
    await pointAtSource(d, cluster, pg, req, view, {
      [DEMOTED_AT_ANNOTATION]: new Date().toISOString(),
      [SOURCE_BEFORE_DEMOTION_ANNOTATION]: pg.metadata.annotations?.[SOURCE_BEFORE_DEMOTION_ANNOTATION] ?? previous,
    });
  }

  let last: PodWrites[] = [];
  const leaderName = await pollUntil(timeoutMs, async () => {
    last = await Promise.all(pods.map((p) => podWrites(p.metadata.name, pgConfigs.get(p.metadata.name)!)));
    if (last.some((w) => w.state === 'writable' || w.state === 'unknown')) return null;
    const l = await d.leaderPod(cluster);
    const node = l ? (await d.patroni<{ role?: string; state?: string }>(l.pod, 'GET', '/patroni'))?.body : null;
    // Patroni names the role before its Postgres is up again: the leader itself must answer, in recovery.
    const leaderUp = last.find((w) => w.member === l?.pod.metadata.name)?.state === 'in-recovery';
    return node?.role === 'standby_leader' && node.state === 'running' && leaderUp ? l!.pod.metadata.name : null;
  }, async () => ({
    message: `${where} did not become a standby of ${req.sourceRef} within ${timeoutMs} ms after standby_cluster was recorded ` +
      `(${last.map((w) => `${w.member} ${w.state}`).join(', ')}); see its pods' logs`,
    facts: { cluster, members: last.map((w) => ({ member: w.member, state: w.state })) },
  }), 250);

  const { newest, finalLsn } = shutdownCheckpointOf(last, before);
  return {
    native: true,
    changed: !done,
    confirmed: true,
    method: 'demoted-to-standby',
    finalLsn,
    cleanShutdown: finalLsn !== null,
    ...(patroniVersion ? { patroniVersion } : {}),
    detail: `${done ? 'standby_cluster was already recorded' : 'spec.standby recorded and standby_cluster written to the running primary'} ` +
      `(Patroni ${patroniVersion} demote-cluster, following ${req.sourceRef}); ${leaderName} runs as standby_leader; ` +
      `pods: ${last.map((w) => `${w.member} ${w.state}`).join(', ')}` +
      `${finalLsn ? `; shutdown checkpoint ${finalLsn} (on ${newest!.member}${before ? `, last write position before ${before}` : ''})` : '; no shutdown checkpoint found'}.`,
  };
}

/**
 * Undoes such a demotion (a rejected or failed switchover): the annotations put back as they were, then
 * spec.standby and standby_cluster removed the way a promotion removes them (removeStandbyConfig), so the standby
 * leader promotes (a new timeline where its WAL ended); returns once it takes writes. Nothing demoted is `changed: false`.
 */
export async function undoNativeDemotion(d: ZalandoSiteDriver, cluster: string): Promise<{ changed: boolean }> {
  const pg = await needPostgresql(d, cluster);
  const notes = pg.metadata.annotations ?? {};
  let changed = false;
  if (notes[SOURCE_BEFORE_DEMOTION_ANNOTATION] !== undefined) {
    await d.kube.mergePatch(d.pgPath(cluster), {
      metadata: {
        annotations: { [SOURCE_ANNOTATION]: notes[SOURCE_BEFORE_DEMOTION_ANNOTATION] || null, [DEMOTED_AT_ANNOTATION]: null, [SOURCE_BEFORE_DEMOTION_ANNOTATION]: null },
      },
      spec: { standby: null },
    });
    changed = true;
    // The operator 1.11+ removes standby_cluster itself once it sees spec.standby gone. Removed by the driver before
    // that, an operator still acting on the spec it saw a moment ago writes it back and demotes the cluster again;
    // so the driver waits for it (30 s, as pointAtSource does) and writes only what it did not.
    const leader = await d.leaderPod(cluster);
    for (const until = Date.now() + 30_000; leader && Date.now() < until; await sleep(500)) {
      const config = await d.patroni<Record<string, unknown>>(leader.pod, 'GET', '/config');
      if (config?.status === 200 && config.body.standby_cluster == null) break;
    }
  }
  const promoted = await d.removeStandbyConfig(cluster);
  // Patroni names the leader primary as it asks Postgres to promote: it takes writes once out of recovery.
  const inRecovery = () => d.withLeaderSql(cluster, async (c) => (await c.query<{ rec: boolean }>('select pg_is_in_recovery() as rec')).rows[0].rec);
  await pollUntil(60_000, async () => ((await inRecovery().catch(() => true)) ? null : true), async () => ({
    message: `${d.site}/${cluster}: its leader is still in recovery 60 s after standby_cluster was removed`, facts: { cluster },
  }), 250);
  return { changed: changed || promoted.changed };
}
