// Marker rows prove replication end to end: written on one side, read on the other.
// They live in their own schema so the runbooks never touch application tables.
import type { Client as PgClient } from 'pg';

export const MARKER_TABLE = 'standby_runbooks.markers';

export async function ensureMarkerTable(client: PgClient): Promise<void> {
  await client.query('CREATE SCHEMA IF NOT EXISTS standby_runbooks');
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${MARKER_TABLE} (id text PRIMARY KEY, runbook text NOT NULL, written_at timestamptz NOT NULL DEFAULT now())`,
  );
}

/** Reads a marker; a missing table (nothing replayed yet) reads as "not there". */
export async function readMarker(client: PgClient, id: string): Promise<{ writtenAt: string } | null> {
  try {
    const r = await client.query<{ written_at: Date }>(`SELECT written_at FROM ${MARKER_TABLE} WHERE id = $1`, [id]);
    return r.rows[0] ? { writtenAt: r.rows[0].written_at.toISOString() } : null;
  } catch (err) {
    if ((err as { code?: string }).code === '42P01' || (err as { code?: string }).code === '3F000') return null;
    throw err;
  }
}

export interface ServerPosition {
  inRecovery: boolean;
  /** Write LSN on a primary, replayed LSN in recovery. */
  lsn: string;
  timeline: number;
  /** The server's clock when it answered (ISO). */
  at: string;
  /** In recovery: commit time of the last replayed transaction (ISO), null when none yet or on a primary. */
  lastReplayedCommitAt: string | null;
  /** pg_control's system identifier (digits of a 64-bit number): equal on a primary and its physical standbys. */
  systemIdentifier: string;
}

/** Where this server is: LSN, timeline (a primary's current one; a standby's received or replayed one), clocks. */
export async function readPosition(client: PgClient, opts: { settleTimeline?: boolean } = {}): Promise<ServerPosition> {
  // settleTimeline: a standby with no WAL receiver names its timeline only through its control file, which holds the timeline of its
  // last restartpoint: right after its source switched timelines that is still the old one, and the lineage check
  // would refuse a good standby. A CHECKPOINT there is a restartpoint at the newest checkpoint replayed (as
  // CloudNativePG does before it reads a replica's timeline).
  // Not while polling replay: only where the timeline is judged (the position promote and failback assess).
  const archiveOnly = opts.settleTimeline ? await client.query<{ yes: boolean }>(
    'SELECT pg_is_in_recovery() AND NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver) AS yes',
  ) : null;
  if (archiveOnly?.rows[0].yes) await client.query('CHECKPOINT');
  const r = await client.query<{ in_recovery: boolean; lsn: string | null; timeline: number; at: Date; replayed_at: Date | null; system_id: string }>(
    `SELECT pg_is_in_recovery() AS in_recovery,
            CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END AS lsn,
            CASE WHEN pg_is_in_recovery()
                 THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
                 -- A fresh primary's checkpoint still names the old timeline until its first checkpoint: ask the WAL.
                 ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline,
            now() AS at,
            pg_last_xact_replay_timestamp() AS replayed_at,
            (SELECT system_identifier::text FROM pg_control_system()) AS system_id`,
  );
  const row = r.rows[0];
  return {
    inRecovery: row.in_recovery,
    lsn: row.lsn ?? '0/0',
    timeline: Number(row.timeline),
    at: row.at.toISOString(),
    lastReplayedCommitAt: row.replayed_at ? row.replayed_at.toISOString() : null,
    systemIdentifier: String(row.system_id),
  };
}
