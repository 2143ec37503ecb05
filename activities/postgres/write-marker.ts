import type { ActivityDeps } from '../deps';
import { ensureMarkerTable, MARKER_TABLE } from './markers';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { PreconditionFailedError } from '../../workflows/contracts/errors';

/**
 * Writes a marker row on the cluster's primary and returns the LSN that a replica must reach to see it.
 * A retry writes nothing new (same id). With `switchWal` the segment is closed so an archive-only standby
 * gets it without waiting for archive_timeout.
 */
export function createWriteMarker(deps: ActivityDeps) {
  return async function postgresWriteMarker(input: {
    ref: string;
    markerId: string;
    runbook: string;
    switchWal: boolean;
  }): Promise<{ lsn: string; inserted: boolean; systemIdentifier: string; timeline: number }> {
    const { site, cluster } = parseClusterRef(input.ref);
    return deps.driverFor(site).withLeaderSql(cluster, async (client) => {
      const role = await client.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery');
      if (role.rows[0].in_recovery) {
        throw new PreconditionFailedError(`${input.ref} is in recovery (a standby): a marker can only be written on a primary`);
      }
      await ensureMarkerTable(client);
      const ins = await client.query(
        `INSERT INTO ${MARKER_TABLE} (id, runbook) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
        [input.markerId, input.runbook],
      );
      // Taken after the commit: a replica that has replayed this far has the row.
      // The primary's lineage, read with the marker: provision-standby records it on the standby it builds.
      const pos = await client.query<{ lsn: string; system_id: string; timeline: number }>(
        `SELECT pg_current_wal_lsn()::text AS lsn, (SELECT system_identifier::text FROM pg_control_system()) AS system_id,
                ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS timeline`,
      );
      if (input.switchWal) await client.query('SELECT pg_switch_wal()');
      const row = pos.rows[0];
      return { lsn: row.lsn, inserted: (ins.rowCount ?? 0) > 0, systemIdentifier: String(row.system_id), timeline: Number(row.timeline) };
    });
  };
}
