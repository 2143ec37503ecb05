import type { ActivityDeps } from '../deps';
import { ensureMarkerTable, MARKER_TABLE, readPosition } from './markers';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { NotReadyError } from '../../workflows/contracts/errors';

/**
 * Proves a cluster takes writes: writes a marker row on its leader and reads it back. A leader still in
 * recovery is "not yet" (retried), never success. The same marker id makes a retry write nothing new.
 */
export function createVerifyWritable(deps: ActivityDeps) {
  return async function postgresVerifyWritable(input: { ref: string; markerId: string; runbook: string }): Promise<{
    writtenAt: string;
    lsn: string;
    timeline: number;
  }> {
    const { site, cluster } = parseClusterRef(input.ref);
    return deps.driverFor(site).withLeaderSql(cluster, async (client) => {
      const before = await readPosition(client);
      if (before.inRecovery) {
        throw new NotReadyError(`${input.ref} is still in recovery: not writable yet`, { lsn: before.lsn });
      }
      await ensureMarkerTable(client);
      await client.query(`INSERT INTO ${MARKER_TABLE} (id, runbook) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [
        input.markerId,
        input.runbook,
      ]);
      const r = await client.query<{ written_at: Date }>(`SELECT written_at FROM ${MARKER_TABLE} WHERE id = $1`, [input.markerId]);
      const after = await readPosition(client);
      return { writtenAt: r.rows[0].written_at.toISOString(), lsn: after.lsn, timeline: after.timeline };
    });
  };
}
