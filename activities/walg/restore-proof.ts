// Proof of a base backup by restoring it: backup-fetch into a scratch directory, a throwaway Postgres that replays
// the cluster's archive up to a marker written after the backup, then checks on the restored data (the marker row,
// amcheck on every btree index of every database, a row count measured on the primary at the marker). The sentinel
// says the backup landed; only this says it restores. Kind-neutral: it runs on the site's worker with the machine's
// Postgres binaries and WAL-G, reading the archive with the env the project builds for WAL-G. The scratch never
// archives (see scratch-postgres.ts) and is removed at the end, also on failure; a retry starts from a new one.
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import { keepHeartbeating } from '../keep-heartbeating';
import { siteConfig } from '../deps';
import type { ArchiveLocation } from '../sites/site-driver';
import { lastArchivedWal } from '../s3/backup-catalogue';
import { MARKER_TABLE, readMarker } from '../postgres/markers';
import { quotedTable } from '../postgres/count-rows';
import { runCommand, walgEnv } from '../sites/local/walg-env';
import { walgBin } from '../sites/local/tools';
import { chownTree } from '../sites/local/fs-util';
import {
  freeLoopbackPort, logTail, makeScratch, prepareRecovery, removeScratch, scratchClient, startScratchPostgres,
  stopScratchPostgres, type RunningScratch, type Scratch,
} from './scratch-postgres';
import { BackupNotProvenError, RunbookError, WaitTimedOutError } from '../../workflows/contracts/errors';
import { parseLsn } from '../../workflows/contracts/lsn';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import type { RestoreProofResult } from '../../workflows/contracts/runbooks';

export interface RestoreProofInput {
  /** `<site>/<cluster>`, for messages and the site's settings (the OS user Postgres runs as). */
  clusterRef: string;
  archive: ArchiveLocation;
  backupName: string;
  /** The LSN of the marker written on the primary after the backup: recovery stops there. */
  targetLsn: string;
  markerId: string;
  /** Row counts the primary had at the marker (`schema.table` -> rows), compared on the restored copy. */
  expectedCounts: Record<string, number>;
  /** Bound on the whole proof (default 3600). */
  timeoutSeconds?: number;
}


const POLL_MS = 1000;

function notProven(input: RestoreProofInput, what: string, facts: Record<string, unknown> = {}): BackupNotProvenError {
  return new BackupNotProvenError(
    `restore proof of backup ${input.backupName} of ${input.clusterRef} failed: ${what}`,
    { backupName: input.backupName, cluster: input.clusterRef, targetLsn: input.targetLsn, ...facts },
  );
}

export function createRestoreProof(deps: ActivityDeps) {
  return async function walgRestoreProof(input: RestoreProofInput): Promise<RestoreProofResult> {
    const ctx = Context.current();
    const t0 = Date.now();
    const deadline = t0 + (input.timeoutSeconds ?? 3600) * 1000;
    const beat = (step: string) => ctx.heartbeat({ step, elapsedMs: Date.now() - t0 });
    const { site } = parseClusterRef(input.clusterRef);
    const cfg = siteConfig(deps, site);
    const osUser = (cfg as { runAs?: string }).runAs ?? 'postgres';
    const durationsMs = { archiveWait: 0, fetch: 0, recovery: 0, checks: 0, total: 0 };

    const archiveStart = Date.now();
    await waitForArchived(input, deadline, beat);
    durationsMs.archiveWait = Date.now() - archiveStart;

    const scratch = makeScratch(osUser);
    let server: RunningScratch | undefined;
    try {
      const env = await walgEnv(input.archive.s3, input.archive.walPrefix);
      const fetchStart = Date.now();
      await fetchBackup(input, scratch, env, deadline, beat, ctx.cancellationSignal);
      durationsMs.fetch = Date.now() - fetchStart;

      const recoveryStart = Date.now();
      const port = await freeLoopbackPort();
      const conf = prepareRecovery(scratch, walgBin(), env, input.targetLsn, port);
      server = startScratchPostgres(scratch, conf);
      const restoredToLsn = await waitForPromotion(input, scratch, server, port, deadline, beat, ctx.cancellationSignal);
      durationsMs.recovery = Date.now() - recoveryStart;

      const checksStart = Date.now();
      // One database's amcheck can outlast the heartbeat timeout without a beat of its own.
      const checks = await keepHeartbeating('amcheck', () => checkRestored(input, scratch, port, beat));
      durationsMs.checks = Date.now() - checksStart;
      durationsMs.total = Date.now() - t0;
      return { backupName: input.backupName, restoredToLsn, ...checks, durationsMs };
    } finally {
      if (server) await stopScratchPostgres(server);
      removeScratch(scratch);
    }
  };
}

/** Until the archive holds the marker's segment: recovery stops at the first record at or after the target. */
async function waitForArchived(input: RestoreProofInput, deadline: number, beat: (s: string) => void): Promise<void> {
  for (;;) {
    const last = await lastArchivedWal(input.archive.s3, input.archive.walPrefix);
    if (last && parseLsn(last.endLsn) > parseLsn(input.targetLsn)) return;
    if (Date.now() > deadline) {
      throw new WaitTimedOutError(
        `the WAL segment holding LSN ${input.targetLsn} of ${input.clusterRef} was not archived in time (newest archived: ${last?.segment ?? 'none'}): check the cluster's archive_command`,
        { targetLsn: input.targetLsn, newestSegment: last?.segment ?? null },
      );
    }
    beat(`waiting for the segment of ${input.targetLsn} in the archive (newest: ${last?.segment ?? 'none'})`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// WAL-G 3.0.9's backup-fetch of a corrupt tar partition was seen to hang with no CPU and ignore SIGTERM: a fetch
// whose scratch stops growing is stopped (SIGTERM, then SIGKILL) and the backup is not proven.
const DEFAULT_FETCH_STALL_SECONDS = 120;
const fetchStallSeconds = () => Number(process.env.DR_RESTORE_FETCH_STALL_SECONDS) || DEFAULT_FETCH_STALL_SECONDS;

/** Bytes under a directory (0 while it does not exist yet). */
function treeBytes(dir: string): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += treeBytes(p);
    else {
      try {
        total += lstatSync(p).size;
      } catch {
        // removed meanwhile
      }
    }
  }
  return total;
}

async function fetchBackup(
  input: RestoreProofInput, scratch: Scratch, env: Record<string, string>, deadline: number,
  beat: (s: string) => void, signal: AbortSignal,
): Promise<void> {
  const stallSeconds = fetchStallSeconds();
  const stalled = new AbortController();
  let last = { bytes: -1, at: Date.now() };
  beat(`backup-fetch ${input.backupName}`);
  const ticker = setInterval(() => {
    const bytes = treeBytes(scratch.dataDir);
    if (bytes !== last.bytes) last = { bytes, at: Date.now() };
    else if (Date.now() - last.at > stallSeconds * 1000) stalled.abort();
    beat(`backup-fetch ${input.backupName}: ${bytes} bytes restored`);
  }, 5_000);
  try {
    const r = await runCommand(walgBin(), ['backup-fetch', scratch.dataDir, input.backupName], env, {
      runAs: scratch.runAs, cwd: scratch.root, timeoutMs: Math.max(1000, deadline - Date.now()),
      signal: AbortSignal.any([signal, stalled.signal]),
    });
    if (signal.aborted) throw signal.reason;
    const tail = (r.stderr + r.stdout).trim().split('\n').slice(-3).join(' | ');
    if (stalled.signal.aborted) {
      throw notProven(input, `wal-g backup-fetch made no progress for ${stallSeconds}s (${Math.max(0, last.bytes)} bytes restored) and was stopped: ${tail || '(no output)'}`,
        { step: 'backup-fetch', stalledSeconds: stallSeconds });
    }
    if (r.exitCode !== 0) {
      throw notProven(input, `wal-g backup-fetch exited ${r.exitCode}: ${tail}`, { step: 'backup-fetch', exitCode: r.exitCode });
    }
  } finally {
    clearInterval(ticker);
  }
  if (scratch.owner) chownTree(scratch.dataDir, scratch.owner);
}

/** Until the scratch ends recovery at the target and promotes; a server that exits first failed to restore. */
async function waitForPromotion(
  input: RestoreProofInput, scratch: Scratch, server: RunningScratch, port: number, deadline: number,
  beat: (s: string) => void, signal: AbortSignal,
): Promise<string> {
  let exitCode: number | null | undefined;
  void server.exited.then((c) => { exitCode = c; });
  for (;;) {
    if (signal.aborted) throw signal.reason;
    if (exitCode !== undefined) {
      throw notProven(input, `the restored copy stopped during recovery (exit ${exitCode}) before reaching LSN ${input.targetLsn}: ${logTail(scratch)}`,
        { step: 'recovery', exitCode });
    }
    if (Date.now() > deadline) {
      throw notProven(input, `recovery did not reach LSN ${input.targetLsn} in time: ${logTail(scratch)}`, { step: 'recovery' });
    }
    const pos = await promotedAt(scratch, port);
    if (pos) return pos;
    beat(`replaying the archive up to ${input.targetLsn}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** The last replayed LSN once the scratch is promoted; null while it starts, replays, or refuses connections. */
async function promotedAt(scratch: Scratch, port: number): Promise<string | null> {
  let client;
  try {
    client = await scratchClient(scratch, port);
  } catch {
    return null;
  }
  try {
    const r = await client.query<{ rec: boolean; lsn: string | null }>(
      'SELECT pg_is_in_recovery() AS rec, pg_last_wal_replay_lsn()::text AS lsn');
    return r.rows[0].rec ? null : (r.rows[0].lsn ?? 'unknown');
  } catch {
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function checkRestored(
  input: RestoreProofInput, scratch: Scratch, port: number, beat: (s: string) => void,
): Promise<Pick<RestoreProofResult, 'markerFound' | 'databasesChecked' | 'indexesChecked' | 'rowsCompared'>> {
  const main = await scratchClient(scratch, port);
  let databases: string[];
  const rowsCompared: Record<string, number> = {};
  try {
    const markerFound = (await readMarker(main, input.markerId)) !== null;
    if (!markerFound) throw notProven(input, `marker ${input.markerId} is not in ${MARKER_TABLE} of the restored copy`, { step: 'marker' });
    for (const [table, expected] of Object.entries(input.expectedCounts)) {
      const r = await main.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM ${quotedTable(table)}`);
      const got = Number(r.rows[0].n);
      if (got !== expected) {
        throw notProven(input, `${table} has ${got} rows in the restored copy, the primary had ${expected} at the marker`,
          { step: 'row-count', table, expected, got });
      }
      rowsCompared[table] = got;
    }
    databases = (await main.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")).rows.map((r) => r.datname);
  } finally {
    await main.end().catch(() => undefined);
  }
  let indexesChecked = 0;
  for (const db of databases) {
    beat(`amcheck in database ${db}`);
    indexesChecked += await checkIndexes(input, scratch, port, db);
  }
  return { markerFound: true, databasesChecked: databases.length, indexesChecked, rowsCompared };
}

/** bt_index_check on every valid btree index of one database; amcheck is created in the scratch only. */
async function checkIndexes(input: RestoreProofInput, scratch: Scratch, port: number, db: string): Promise<number> {
  const client = await scratchClient(scratch, port, db);
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS amcheck');
    const idx = await client.query<{ oid: number; name: string }>(
      `SELECT c.oid::int AS oid, c.oid::regclass::text AS name
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
        WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't'`);
    for (const row of idx.rows) {
      try {
        await client.query('SELECT bt_index_check($1::oid)', [row.oid]);
      } catch (err) {
        if (err instanceof RunbookError) throw err;
        throw notProven(input, `amcheck bt_index_check failed on index ${row.name} in database ${db}: ${(err as Error).message}`,
          { step: 'amcheck', database: db, index: row.name });
      }
    }
    return idx.rows.length;
  } finally {
    await client.end().catch(() => undefined);
  }
}
