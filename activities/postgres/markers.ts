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

/** Where this server is: its write LSN on a primary, its replayed LSN in recovery. */
export async function readPosition(client: PgClient): Promise<{ inRecovery: boolean; lsn: string; timeline: number }> {
  const r = await client.query<{ in_recovery: boolean; lsn: string | null; timeline: number }>(
    `SELECT pg_is_in_recovery() AS in_recovery,
            CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END AS lsn,
            (SELECT timeline_id FROM pg_control_checkpoint()) AS timeline`,
  );
  const row = r.rows[0];
  return { inRecovery: row.in_recovery, lsn: row.lsn ?? '0/0', timeline: Number(row.timeline) };
}
