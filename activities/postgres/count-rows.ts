// Row counts of chosen tables, taken with the drill's marker on the source and read back on the DR copy, so the
// copy's data can be compared with what the source had at the marker.
import type { Client as PgClient } from 'pg';
import type { ActivityDeps } from '../deps';
import { ensureMarkerTable, MARKER_TABLE, readMarker } from './markers';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { BadInputError, PreconditionFailedError } from '../../workflows/contracts/errors';

const TABLE = /^([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_$]*)$/;

/** `"schema"."table"` of a `schema.table` the workflow already checked; throws on anything else. */
export function quotedTable(name: string): string {
  const m = TABLE.exec(name);
  if (!m) throw new BadInputError(`table "${name}" must be "<schema>.<table>" in lower case, e.g. "public.orders"`);
  return `"${m[1]}"."${m[2]}"`;
}

async function tableExists(client: PgClient, name: string): Promise<boolean> {
  const r = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::text AS oid', [quotedTable(name)]);
  return r.rows[0].oid !== null;
}

async function count(client: PgClient, name: string): Promise<number> {
  const r = await client.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM ${quotedTable(name)}`);
  return Number(r.rows[0].n);
}

/**
 * On the source's primary, in one transaction: the row counts, then the marker row, so the counts are what a copy
 * that replayed up to the marker's commit holds (rows other sessions commit meanwhile can still slip in between).
 * A table the source does not have is bad input: refused and rolled back, nothing written. With `switchWal` the
 * segment is closed, so an archive-only copy gets the marker without waiting for archive_timeout. A retry writes
 * no second marker.
 */
export function createMarkAndCount(deps: ActivityDeps) {
  return async function postgresMarkAndCount(input: {
    ref: string; markerId: string; runbook: string; tables: string[]; switchWal: boolean;
  }): Promise<{ lsn: string; inserted: boolean; at: string; counts: Record<string, number> }> {
    const { site, cluster } = parseClusterRef(input.ref);
    return deps.driverFor(site).withLeaderSql(cluster, async (client) => {
      const role = await client.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery');
      if (role.rows[0].in_recovery) {
        throw new PreconditionFailedError(`${input.ref} is in recovery (a standby): a drill marker can only be written on a primary`);
      }
      await ensureMarkerTable(client);
      const missing: string[] = [];
      for (const t of input.tables) if (!(await tableExists(client, t))) missing.push(t);
      if (missing.length) {
        throw new BadInputError(`verifyTables names ${missing.join(', ')}, which ${input.ref} does not have: name existing tables as "<schema>.<table>"`, { missing });
      }
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      try {
        const counts: Record<string, number> = {};
        for (const t of input.tables) counts[t] = await count(client, t);
        const ins = await client.query(`INSERT INTO ${MARKER_TABLE} (id, runbook) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [input.markerId, input.runbook]);
        await client.query('COMMIT');
        const pos = await client.query<{ lsn: string; at: Date }>('SELECT pg_current_wal_lsn()::text AS lsn, now() AS at');
        if (input.switchWal) await client.query('SELECT pg_switch_wal()');
        return { lsn: pos.rows[0].lsn, inserted: (ins.rowCount ?? 0) > 0, at: pos.rows[0].at.toISOString(), counts };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  };
}

/** On the DR copy: is the marker there, and how many rows each table has (null: the copy has no such table). Reads only. */
export function createCountRows(deps: ActivityDeps) {
  return async function postgresCountRows(input: { ref: string; markerId: string; tables: string[] }): Promise<{
    markerFound: boolean; counts: Record<string, number | null>;
  }> {
    const { site, cluster } = parseClusterRef(input.ref);
    return deps.driverFor(site).withLeaderSql(cluster, async (client) => {
      const markerFound = (await readMarker(client, input.markerId)) !== null;
      const counts: Record<string, number | null> = {};
      for (const t of input.tables) counts[t] = (await tableExists(client, t)) ? await count(client, t) : null;
      return { markerFound, counts };
    });
  };
}
