// What a reseed re-checks at the moment it would destroy a cluster, and how it keeps the old data instead of
// destroying it. The runbook decided from an assessment made minutes (or an approval's hours) earlier; in between
// someone may have unfenced or promoted the cluster, or the name may now hold another cluster. So, in the same call
// that stops it: no member runs as a primary, every readable control file names the assessed system, and the old
// incarnation is renamed, not removed, until its replacement proves it replays.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client, type ClientConfig } from 'pg';
import { NotReadyError, PreconditionFailedError } from '../../../workflows/contracts/errors';
import { clusterDir, clustersDir, type LocalClusterInfo, type LocalMemberInfo } from './cluster-files';
import { liveFacts } from './former-primary';
import { restUrl } from './members';
import { patroniGet, type PatroniNodeStatus } from './patroni-api';
import { isPrimaryNodeRole } from '../patroni-states';
import { postmasterPid, readControlData } from './pg-control';

/** The parts of LocalRegion the guard uses. */
export interface GuardHandle {
  readonly name: string;
  readonly cfg: { dataDir: string; runAs?: string };
  pgConfig(cluster: string, opts: { member?: string }): Promise<ClientConfig>;
}


/** Why `m` counts as a primary right now, or null. Any one source saying so is enough: a refusal costs a rerun. */
async function primaryEvidence(region: GuardHandle, info: LocalClusterInfo, m: LocalMemberInfo): Promise<string | null> {
  const node = await patroniGet<PatroniNodeStatus>(restUrl(m), '/patroni', 3_000);
  if (node && isPrimaryNodeRole(node.role) && node.state === 'running') return `Patroni reports ${m.name} running as ${node.role}`;
  if (postmasterPid(m.dataDir) === null) return null;
  // No superuser secret: no SQL, so the control file decides (never a connection with default settings).
  const cfg = await region.pgConfig(info.name, { member: m.name }).catch(() => null);
  const live = cfg && (await liveFacts(cfg));
  if (live) return live.in_recovery ? null : `Postgres of ${m.name} answers pg_is_in_recovery() = false`;
  // A postmaster that refuses SQL (starting, or its pg_hba closed) is judged by its control file: "in production"
  // with the postmaster alive is a primary, whatever the REST API says.
  const cd = await readControlData(m.dataDir, region.cfg.runAs ?? 'postgres');
  if (!cd) return `Postgres of ${m.name} runs but neither SQL nor its control file says whether it is in recovery`;
  return cd.state === 'in production' ? `Postgres of ${m.name} runs and its control file says "in production"` : null;
}

/**
 * Refuses (non-retryable, nothing changed) when any member runs as a primary, or when a member's control file names
 * another system than the one assessed. Unreadable control files prove nothing either way; at least one must be read
 * when an identifier was assessed.
 */
export async function recheckTarget(region: GuardHandle, info: LocalClusterInfo, assessedSystemIdentifier: string | null | undefined): Promise<void> {
  const where = `${region.name}/${info.name}`;
  const primaries: string[] = [];
  for (const m of info.members) {
    const why = await primaryEvidence(region, info, m);
    if (why) primaries.push(why);
  }
  if (primaries.length) {
    throw new PreconditionFailedError(
      `reseed ${where} refused: it runs as a primary now (${primaries.join('; ')}); it was assessed as a former primary that ` +
        'no longer takes writes. Nothing was changed: fence it (or find out who promoted it) and rerun failback-reseed.',
      { cluster: info.name, evidence: primaries },
    );
  }
  if (!assessedSystemIdentifier) return;
  const seen: Array<{ member: string; systemIdentifier: string }> = [];
  for (const m of info.members) {
    const cd = await readControlData(m.dataDir, region.cfg.runAs ?? 'postgres');
    if (cd?.systemIdentifier) seen.push({ member: m.name, systemIdentifier: cd.systemIdentifier });
  }
  const other = seen.find((s) => s.systemIdentifier !== assessedSystemIdentifier);
  if (other || !seen.length) {
    throw new PreconditionFailedError(
      other
        ? `reseed ${where} refused: member ${other.member} holds system ${other.systemIdentifier}, but the assessment was of system ` +
            `${assessedSystemIdentifier}; this is not the cluster that was assessed. Nothing was changed: rerun failback-reseed to assess it again.`
        : `reseed ${where} refused: no member's control file could be read to confirm the assessed system ${assessedSystemIdentifier}. ` +
            'Nothing was changed.',
      { cluster: info.name, assessedSystemIdentifier, seen },
    );
  }
}

/** A dot-named sibling of the cluster folder (listClusterFiles skips it), named by time and run. */
export function asideDirFor(dataDir: string, name: string, runTag: string | undefined, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const tag = (runTag ?? '').replace(/[^A-Za-z0-9-]/g, '').slice(0, 36);
  return join(clustersDir(dataDir), `.aside-${name}-${stamp}${tag ? `-${tag}` : ''}`);
}

/**
 * One rename of the whole cluster folder: every member's data directory moves with its Patroni config and WAL-G
 * env, so a human can start the old incarnation from there, and a crash cannot leave it half moved. Idempotent.
 */
export function moveAside(dataDir: string, name: string, aside: string): 'moved' | 'already' {
  const dir = clusterDir(dataDir, name);
  if (existsSync(aside)) {
    if (existsSync(dir)) {
      throw new PreconditionFailedError(`reseed ${name}: both ${dir} and its aside copy ${aside} exist; look at both before rerunning`, { cluster: name, aside });
    }
    return 'already';
  }
  renameSync(dir, aside);
  return 'moved';
}

export function removeAside(aside: string): void {
  rmSync(aside, { recursive: true, force: true });
}

async function replayPosition(cfg: ClientConfig): Promise<string | null> {
  const c = new Client({ ...cfg, connectionTimeoutMillis: 5_000, statement_timeout: 10_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query<{ r: boolean; l: string | null }>('select pg_is_in_recovery() as r, pg_last_wal_replay_lsn()::text as l');
    return r.rows[0]?.r ? r.rows[0].l : null;
  } catch {
    return null;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The new standby leader answers SQL in recovery with a replay position: the bootstrap produced data that replays. */
export async function proveReplay(region: GuardHandle, info: LocalClusterInfo, leader: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cfg = await region.pgConfig(info.name, { member: leader }).catch(() => null);
    const lsn = cfg && (await replayPosition(cfg));
    if (lsn) return lsn;
    if (Date.now() > deadline) {
      throw new NotReadyError(`reseed ${region.name}/${info.name}: the new standby ${leader} does not replay yet (${timeoutMs} ms); the old data stays aside`, {
        cluster: info.name, member: leader,
      });
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}
