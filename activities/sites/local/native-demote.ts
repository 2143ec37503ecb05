// Patroni 4's own clean demotion of a RUNNING primary cluster (`patronictl demote-cluster`): `standby_cluster` is
// written into its dynamic config and Patroni fast-stops the primary (the walsenders hand the shutdown checkpoint to
// a streaming standby), archives the checkpoint's segment itself when it archives, and starts it again as the
// standby leader of the given source. No pg_rewind follows: the old primary's WAL ends exactly where the promoted
// standby's new timeline begins. Patroni 3.0.2 has no such operation (it demotes a primary that finds itself in a
// standby cluster with an immediate shutdown), so there the caller fences instead (fencing.ts).
import { Client, type ClientConfig } from 'pg';
import { PreconditionFailedError, SiteUnreachableError } from '../../../workflows/contracts/errors';
import { lsnAtOrAfter } from '../../../workflows/contracts/lsn';
import type { NativeDemoteOutcome } from '../site-driver';
import { hasDemoteCluster, PRIMARY_NODE_ROLES } from '../patroni-states';
import { clusterDir, withRegionLock, writeClusterFile, type LocalClusterInfo, type LocalMemberInfo, type StandbySpec } from './cluster-files';
import { clusterView, describeView, needCluster, pollUntil, runAsOf } from './cluster-state';
import { patchThroughPatroni, patchViaPatroni, readDynamicConfig } from './dcs-config';
import { etcdHealthy } from './etcd';
import { logTail, nodeRunsAs, restUrl } from './members';
import { leaderOf, patroniGet, type PatroniNodeStatus } from './patroni-api';
import { standbyClusterSection } from './patroni-config';
import { lookupUser } from './processes';
import { demoteSpecOf, promoteStandbyCluster, sameJson, sameSpec, validateDemote, type DemoteSpec, type SwitchHandle } from './standby-switch';
import { walgEnv, walgScriptPaths, writeWalgFiles } from './walg-env';

/** A member as seen while waiting for the demotion: refusing connections, in recovery, or still writable. */
type MemberWrites = { member: string; state: 'refused' | 'in-recovery' | 'writable' | 'unknown'; checkpoint?: { lsn: string; redo: string } };

async function memberWrites(region: SwitchHandle, info: LocalClusterInfo, m: LocalMemberInfo): Promise<MemberWrites> {
  const c = new Client({ ...(await region.pgConfig(info.name, { member: m.name })), connectionTimeoutMillis: 2_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query<{ rec: boolean; lsn: string; redo: string }>(
      'select pg_is_in_recovery() as rec, checkpoint_lsn::text as lsn, redo_lsn::text as redo from pg_control_checkpoint()',
    );
    const row = r.rows[0];
    return { member: m.name, state: row.rec ? 'in-recovery' : 'writable', checkpoint: { lsn: row.lsn, redo: row.redo } };
  } catch (err) {
    return { member: m.name, state: /ECONNREFUSED/.test(String((err as Error).message)) ? 'refused' : 'unknown' };
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * The demoted primary's shutdown checkpoint among what its members' control files say (the member with the highest
 * checkpoint): a shutdown checkpoint's redo is the checkpoint itself, and one at or past the primary's last insert
 * position before the demotion (`before`, when known) is its last. `finalLsn` null when there is none.
 */
export function shutdownCheckpointOf<T extends { member: string; checkpoint?: { lsn: string; redo: string } }>(
  seen: T[], before: string | null,
): { newest: T | undefined; finalLsn: string | null } {
  const newest = seen.filter((w) => w.checkpoint).sort((a, b) => (lsnAtOrAfter(a.checkpoint!.lsn, b.checkpoint!.lsn) ? -1 : 1))[0];
  const shutdown = !!newest && newest.checkpoint!.redo === newest.checkpoint!.lsn && (before === null || lsnAtOrAfter(newest.checkpoint!.lsn, before));
  return { newest, finalLsn: shutdown ? newest.checkpoint!.lsn : null };
}

async function currentLsn(region: SwitchHandle, info: LocalClusterInfo, m: LocalMemberInfo): Promise<string | null> {
  return currentLsnAt(await region.pgConfig(info.name, { member: m.name }));
}

/** The primary's current WAL position, or null when it does not answer (stopped, or in recovery). */
export async function currentLsnAt(cfg: ClientConfig): Promise<string | null> {
  const c = new Client({ ...cfg, connectionTimeoutMillis: 3_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0].lsn;
  } catch {
    return null;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function patroniVersionOf(info: LocalClusterInfo, preferred: LocalMemberInfo | undefined): Promise<string | undefined> {
  for (const m of preferred ? [preferred, ...info.members] : info.members) {
    const v = (await patroniGet<PatroniNodeStatus>(restUrl(m), '/patroni'))?.patroni?.version;
    if (v) return v;
  }
  return undefined;
}

/** cluster.json records the new source; what it held before is kept so undoing the demotion restores it. */
async function recordSpec(region: SwitchHandle, name: string, spec: StandbySpec): Promise<void> {
  await withRegionLock(region.cfg.dataDir, async () => {
    const fresh = needCluster(region, name);
    if (sameSpec(fresh.standby, spec)) return;
    writeClusterFile(region.cfg.dataDir, { ...fresh, standby: spec, standbyBeforeDemotion: fresh.standby, bootstrapBackup: null });
  });
}

/**
 * Demotes a running primary cluster into a standby of `req.sourceRef` the way Patroni >= 4 does it, then proves
 * writes stopped: every member refuses connections or is in recovery, and the leader runs as standby_leader. The
 * final LSN is the former primary's shutdown checkpoint, read from its control file (the member with the highest
 * checkpoint, whose redo must equal it): until the new source is promoted it has no WAL past that checkpoint, so
 * no restartpoint can move it. `{ native: false }` (nothing changed) when this Patroni cannot, or the cluster is
 * paused or its DCS down: the caller fences instead. Already a standby of that source is `changed: false`.
 */
export async function demoteRunningPrimary(
  region: SwitchHandle, name: string, req: DemoteSpec, opts: { timeoutMs?: number } = {},
): Promise<NativeDemoteOutcome | { native: false; patroniVersion?: string; why: string }> {
  const info = needCluster(region, name);
  validateDemote(region, info, req);
  const etcdPort = region.cfg.etcd.clientPort;
  const view = await clusterView(info);
  const leader = leaderOf(view);
  const leaderMember = leader ? info.members.find((m) => m.name === leader.name) : undefined;
  const patroniVersion = await patroniVersionOf(info, leaderMember);
  const no = (why: string) => ({ native: false as const, ...(patroniVersion ? { patroniVersion } : {}), why });
  if (!hasDemoteCluster(patroniVersion)) return no(`Patroni ${patroniVersion ?? '(version unknown)'} has no demote-cluster`);
  if (!(await etcdHealthy(etcdPort))) return no('its etcd does not answer');
  const dcs = await readDynamicConfig(info, etcdPort);
  if (!dcs) throw new SiteUnreachableError(`${region.name}/${name}: neither Patroni nor etcd answers`, { cluster: name });
  if (dcs.config.pause === true) return no('Patroni is paused (a paused Patroni does not demote)');

  const spec = demoteSpecOf(req);
  const section = standbyClusterSection(spec, walgScriptPaths(clusterDir(region.cfg.dataDir, name)), null);
  const timeoutMs = opts.timeoutMs ?? 90_000;
  let changed = false;
  let before: string | null = null;
  if (!sameJson(dcs.config.standby_cluster, section)) {
    if (dcs.config.standby_cluster != null) {
      throw new PreconditionFailedError(
        `${region.name}/${name} is a standby cluster already (${JSON.stringify(dcs.config.standby_cluster)}), not a primary to demote`,
        { cluster: name },
      );
    }
    if (!leaderMember || !(await nodeRunsAs(leaderMember, [...PRIMARY_NODE_ROLES]))) {
      return no(`no running primary leads it (${describeView(view)})`);
    }
    before = await currentLsn(region, info, leaderMember);
    if (req.fromArchive) {
      const u = lookupUser(runAsOf(region));
      writeWalgFiles(clusterDir(region.cfg.dataDir, name), { uid: u.uid, gid: u.gid }, null, {
        env: await walgEnv(req.fromArchive.s3, req.fromArchive.walPrefix),
        backupName: null,
      });
    }
    await recordSpec(region, name, spec);
    // demote-cluster's PATCH goes to the leader, as patronictl sends it.
    const patched = (await patchViaPatroni(restUrl(leaderMember), { standby_cluster: section }))
      ?? (await patchThroughPatroni(info, { standby_cluster: section }));
    if (!patched) throw new SiteUnreachableError(`${region.name}/${name}: no Patroni accepted standby_cluster`, { cluster: name });
    changed = true;
  } else {
    await recordSpec(region, name, spec);
  }

  let last: MemberWrites[] = [];
  const done = await pollUntil(timeoutMs, async () => {
    last = await Promise.all(info.members.map((m) => memberWrites(region, info, m)));
    if (last.some((w) => w.state === 'writable' || w.state === 'unknown')) return null;
    const l = leaderOf(await clusterView(info));
    const lm = l && info.members.find((m) => m.name === l.name);
    const node = lm ? await patroniGet<PatroniNodeStatus>(restUrl(lm), '/patroni') : null;
    // Patroni names the role before its Postgres is up again: the leader itself must answer, in recovery.
    const leaderUp = last.find((w) => w.member === lm?.name)?.state === 'in-recovery';
    return node?.role === 'standby_leader' && node.state === 'running' && leaderUp ? { leader: lm!.name } : null;
  }, async () => ({
    message: `${region.name}/${name} did not become a standby of ${req.sourceRef} within ${timeoutMs} ms after standby_cluster was written ` +
      `(${last.map((w) => `${w.member} ${w.state}`).join(', ')}; ${describeView(await clusterView(info))}); ` +
      `last log lines of ${info.members[0].name}:\n${logTail(region.memberPaths(name, info.members[0].name).logFile)}`,
    facts: { cluster: name, members: last.map((w) => ({ member: w.member, state: w.state })) },
  }), 100);

  const { newest, finalLsn } = shutdownCheckpointOf(last, before);
  const shutdown = finalLsn !== null;
  return {
    native: true,
    changed,
    confirmed: true,
    method: 'demoted-to-standby',
    finalLsn,
    cleanShutdown: shutdown,
    ...(patroniVersion ? { patroniVersion } : {}),
    detail: `${changed ? 'standby_cluster written to the running primary' : 'standby_cluster was already written'} (Patroni ${patroniVersion} demote-cluster, ` +
      `following ${req.sourceRef}); ${done.leader} runs as standby_leader; members: ${last.map((w) => `${w.member} ${w.state}`).join(', ')}` +
      `${finalLsn ? `; shutdown checkpoint ${finalLsn} (on ${newest!.member}${before ? `, last write position before ${before}` : ''})` : '; no shutdown checkpoint found'}.`,
  };
}

/**
 * Undoes such a demotion (a rejected or failed switchover): `standby_cluster` removed, Patroni promotes the standby
 * leader (a new timeline that starts where its WAL ended), and cluster.json gets back what it held before.
 */
export async function undoNativeDemotion(region: SwitchHandle, name: string): Promise<{ changed: boolean }> {
  const r = await promoteStandbyCluster(region, name);
  await withRegionLock(region.cfg.dataDir, async () => {
    const fresh = needCluster(region, name);
    if (fresh.standbyBeforeDemotion === undefined) return;
    const { standbyBeforeDemotion, ...rest } = fresh;
    writeClusterFile(region.cfg.dataDir, { ...rest, standby: standbyBeforeDemotion });
  });
  return { changed: r.changed };
}
