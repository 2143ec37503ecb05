// Read-only facts about a former primary that may have diverged from the promoted cluster: which member led, its
// system identifier, timeline, where its WAL ends, whether pg_rewind could work on it (wal_log_hints/checksums),
// and what its pg_wal holds. Must work on a cluster whose Patroni and Postgres are dead (a returning region), so it
// reads the control file and the WAL itself when nothing answers.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, type ClientConfig } from 'pg';
import type { FormerPrimaryAssessment } from '../site-driver';
import { formatLsn, parseLsn, WAL_SEGMENT_BYTES } from '../../../workflows/contracts/lsn';
import type { LocalClusterInfo, LocalMemberInfo } from './cluster-files';
import { clusterView, formerLeader, needCluster, runAsOf, type RegionHandle } from './cluster-state';
import { postmasterPid, probePort, readControlData, type ControlData } from './pg-control';
import { pgBinDir } from './tools';
import { runCommand, type RunResult } from './walg-env';

export interface AssessHandle extends RegionHandle {
  pgConfig(name: string, opts?: { member?: string }): Promise<ClientConfig>;
}

const WAL_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$/;

/** WAL files (segments and `.partial`) in a data dir's pg_wal, sorted; [] when it cannot be read. */
export function walFilesOf(dataDir: string): string[] {
  try {
    return readdirSync(join(dataDir, 'pg_wal')).filter((f) => WAL_NAME.test(f)).sort();
  } catch {
    return [];
  }
}

/** Timeline and LSN range [start, end) of a WAL file name; null for anything else. */
export function walFileRange(name: string): { timeline: number; start: bigint; end: bigint; partial: boolean } | null {
  const m = WAL_NAME.exec(name);
  if (!m) return null;
  const segmentsPerLog = 0x100000000n / WAL_SEGMENT_BYTES;
  const start = (BigInt(`0x${m[2]}`) * segmentsPerLog + BigInt(`0x${m[3]}`)) * WAL_SEGMENT_BYTES;
  return { timeline: parseInt(m[1], 16), start, end: start + WAL_SEGMENT_BYTES, partial: !!m[4] };
}

/**
 * A member's pg_wal as failback reads it: the file names, and pg_waldump run on that folder. Local members are
 * read directly; on Kubernetes the same reads go through pods/exec.
 */
export interface WalAccess {
  /** WAL file names in pg_wal (segments and `.partial`), sorted. */
  files: string[];
  /** pg_waldump with these arguments and `--path <pg_wal>`; null when it could not be run. */
  waldump(args: string[]): Promise<RunResult | null>;
}

export function localWalAccess(dataDir: string, runAs: string): WalAccess {
  return {
    files: walFilesOf(dataDir),
    waldump: (args) => runCommand(join(pgBinDir(), 'pg_waldump'), [...args, '--path', join(dataDir, 'pg_wal')], { LC_ALL: 'C' }, { runAs, timeoutMs: 300_000 })
      .catch(() => null),
  };
}

/**
 * Where the WAL in `dataDir/pg_wal` on `timeline` ends, read with pg_waldump from `startLsn` (a record start, or
 * any LSN: pg_waldump skips to the next record). pg_waldump stops with an error at the end; the error names it:
 * "invalid record length at X" (zeros after the last record), "unexpected pageaddr ... in log segment S, offset O"
 * (a recycled segment follows), or "could not find file S" (the WAL ends on a segment boundary). Null when none
 * of these is found: the caller must then treat the end as unknown, not as the start. After pg_switch_wal() the
 * end is the next segment boundary (the switch record "fills" the rest of its segment).
 */
export async function endOfWal(dataDir: string, timeline: number, startLsn: string, runAs: string): Promise<string | null> {
  return findEndOfWal(localWalAccess(dataDir, runAs), timeline, startLsn);
}

/** endOfWal over any WalAccess. */
export async function findEndOfWal(wal: WalAccess, timeline: number, startLsn: string): Promise<string | null> {
  // pg_waldump waits 5 s for a missing next segment before it gives up: bounded by --end at the end of the last
  // segment present without a gap, reaching it (exit 0) means the WAL runs to that segment's end.
  const present = new Set(wal.files);
  const segs = 0x100000000n / WAL_SEGMENT_BYTES;
  const nameAt = (pos: bigint) => [BigInt(timeline), pos / WAL_SEGMENT_BYTES / segs, (pos / WAL_SEGMENT_BYTES) % segs]
    .map((n) => n.toString(16).toUpperCase().padStart(8, '0')).join('');
  let last = parseLsn(startLsn) - (parseLsn(startLsn) % WAL_SEGMENT_BYTES);
  if (!present.has(nameAt(last))) return null;
  while (present.has(nameAt(last + WAL_SEGMENT_BYTES))) last += WAL_SEGMENT_BYTES;
  const stop = formatLsn(last + WAL_SEGMENT_BYTES);
  const r = await wal.waldump(['--quiet', '--timeline', String(timeline), '--start', startLsn, '--end', stop]);
  if (!r) return null;
  if (r.exitCode === 0) return stop;
  const text = r.stderr + r.stdout;
  const invalid = /invalid record length at ([0-9A-F]+\/[0-9A-F]+)/.exec(text) ?? /record with incorrect prev-link [0-9A-F/]+ at ([0-9A-F]+\/[0-9A-F]+)/.exec(text);
  if (invalid) return formatLsn(parseLsn(invalid[1]));
  const pageaddr = /in log segment ([0-9A-F]{24}), offset (\d+)/.exec(text);
  if (pageaddr) return formatLsn(walFileRange(pageaddr[1])!.start + BigInt(pageaddr[2]));
  const missing = /could not find file "([0-9A-F]{24})"/.exec(text);
  if (missing) {
    const seg = walFileRange(missing[1])!;
    // The start segment itself missing means nothing was read at all.
    if (seg.start > parseLsn(startLsn)) return formatLsn(seg.start);
  }
  return null;
}

export interface LiveFacts {
  sysid: string;
  in_recovery: boolean;
  lsn: string | null;
  timeline: number | null;
  hints: string;
  checksums: string;
}

export async function liveFacts(cfg: ClientConfig): Promise<LiveFacts | null> {
  const c = new Client({ ...cfg, connectionTimeoutMillis: 5_000, statement_timeout: 10_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    // pg_walfile_name() is refused in recovery: the CASE keeps it to a primary.
    const r = await c.query<LiveFacts>(`
      select s.system_identifier::text as sysid, pg_is_in_recovery() as in_recovery,
        (case when pg_is_in_recovery() then coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
              else pg_current_wal_lsn() end)::text as lsn,
        case when pg_is_in_recovery()
             -- The WAL receiver's timeline: the control file keeps the old one until the first restartpoint.
             then coalesce((select received_tli from pg_stat_wal_receiver), (select timeline_id from pg_control_checkpoint()))
             else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end as timeline,
        current_setting('wal_log_hints') as hints, current_setting('data_checksums') as checksums
      from pg_control_system() s`);
    return r.rows[0] ?? null;
  } catch {
    return null;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** What a running member says about itself (SQL). */
export function assessLive(member: string, live: LiveFacts, walFiles: string[]): FormerPrimaryAssessment {
  return {
    running: true,
    member,
    systemIdentifier: live.sysid,
    timeline: live.timeline,
    lastLsn: live.lsn,
    lastLsnSource: live.in_recovery ? 'pg_last_wal_receive_lsn' : 'pg_current_wal_lsn',
    checkpointLsn: null,
    clusterState: null,
    walLogHints: live.hints === 'on',
    dataChecksums: live.checksums === 'on',
    walFiles,
  };
}

/** What a stopped member's control file and WAL say: the end of its WAL from its last checkpoint on. */
export async function assessStopped(member: string, open: boolean, cd: ControlData | null, wal: WalAccess): Promise<FormerPrimaryAssessment> {
  let lastLsn = cd?.checkpointLsn ?? null;
  let lastLsnSource: FormerPrimaryAssessment['lastLsnSource'] = lastLsn ? 'pg_controldata' : null;
  if (cd?.checkpointLsn && cd.timeline) {
    const end = await findEndOfWal(wal, cd.timeline, cd.checkpointLsn);
    if (end && parseLsn(end) >= parseLsn(cd.checkpointLsn)) {
      lastLsn = end;
      lastLsnSource = 'pg_waldump';
    }
  }
  return {
    running: open,
    member,
    systemIdentifier: cd?.systemIdentifier ?? null,
    timeline: cd?.timeline ?? null,
    lastLsn,
    lastLsnSource,
    checkpointLsn: cd?.checkpointLsn ?? null,
    clusterState: cd?.state ?? null,
    walLogHints: cd?.walLogHints ?? null,
    dataChecksums: cd?.dataChecksums ?? null,
    walFiles: wal.files,
  };
}

async function assessMember(region: AssessHandle, info: LocalClusterInfo, m: LocalMemberInfo): Promise<FormerPrimaryAssessment> {
  const runAs = runAsOf(region);
  const walFiles = walFilesOf(m.dataDir);
  const open = postmasterPid(m.dataDir) !== null || (await probePort(m.pgPort)) === 'accepting';
  if (open) {
    const live = await liveFacts(await region.pgConfig(info.name, { member: m.name }));
    if (live) return assessLive(m.name, live, walFiles);
    // Accepting but not answering (starting, crash recovery): the control file is still the best source.
  }
  return assessStopped(m.name, open, await readControlData(m.dataDir, runAs), localWalAccess(m.dataDir, runAs));
}

/** Facts about the member that leads or last led `name`; changes nothing. */
export async function assessFormerPrimary(region: AssessHandle, name: string): Promise<FormerPrimaryAssessment> {
  const info = needCluster(region, name);
  const leader = await formerLeader(info, await clusterView(info), runAsOf(region));
  return assessMember(region, info, leader);
}
