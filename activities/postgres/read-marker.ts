import type { ActivityDeps } from '../deps';
import { readMarker, readPosition } from './markers';
import { parseClusterRef } from '../../workflows/contracts/clusters';

/** Reads a marker row and the server's position on the cluster's leader; reads only. */
export function createReadMarker(deps: ActivityDeps) {
  return async function postgresReadMarker(input: { ref: string; markerId: string }): Promise<{
    found: boolean;
    writtenAt?: string;
    inRecovery: boolean;
    lsn: string;
    timeline: number;
  }> {
    const { site, cluster } = parseClusterRef(input.ref);
    return deps.driverFor(site).withLeaderSql(cluster, async (client) => {
      const marker = await readMarker(client, input.markerId);
      const pos = await readPosition(client);
      return { found: marker !== null, writtenAt: marker?.writtenAt, ...pos };
    });
  };
}

/**
 * The leader's current (primary) or replayed (standby) LSN, timeline and system identifier; changes no data (an
 * archive-only standby takes a restartpoint first, so its timeline is the one it replays).
 */
export function createCurrentPosition(deps: ActivityDeps) {
  return async function postgresCurrentPosition(input: { ref: string }) {
    const { site, cluster } = parseClusterRef(input.ref);
    return deps.driverFor(site).withLeaderSql(cluster, (client) => readPosition(client, { settleTimeline: true }));
  };
}
