// Helpers of failback.test.ts: a private two-region layout on ports 30500-30799 in its own temp folder, SQL on a
// leader or a given member, and a region-loss stand-in (kill -9 of every Patroni and postmaster of a cluster).
import { readFileSync } from 'node:fs';
import { Client } from 'pg';
import type { LocalSiteDriver } from '../../activities/sites/local-driver';
import { copySecrets, privateRegions, sleep, sql, standbyOf, waitFor } from '../helpers/private-regions';
import { postmasterPid, probePort } from '../../activities/sites/local/pg-control';

const regions = privateRegions('failback', 30500);
export const { tmp, credsFile, S3_PORT, s3Of, writeCredentials, driverFor, log } = regions;
export const startRegions = regions.start;
export const stopRegions = regions.stop;
export { copySecrets, sleep, sql, standbyOf, waitFor };

export async function patroniNode(d: LocalSiteDriver, cluster: string): Promise<{ role: string; state: string; timeline?: number; name: string }> {
  const l = await d.region.leaderMember(cluster);
  if (!l) throw new Error(`${cluster} has no leader`);
  const node = (await (await fetch(`${l.restUrl}/patroni`)).json()) as { role: string; state: string; timeline?: number };
  return { ...node, name: l.name };
}

/** A region loss: SIGKILL to every Patroni and every postmaster of the cluster (no shutdown checkpoint, nothing flushed to a standby). */
export async function killCluster(d: LocalSiteDriver, cluster: string): Promise<void> {
  const info = d.region.getCluster(cluster)!;
  for (const m of info.members) {
    const pidFile = d.region.memberPaths(cluster, m.name).pidFile;
    try {
      process.kill((JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number }).pid, 'SIGKILL');
    } catch {
      // already gone
    }
    const pm = postmasterPid(m.dataDir);
    if (pm) process.kill(pm, 'SIGKILL');
  }
  await waitFor(`${cluster} down`, 30_000, async () => {
    for (const m of info.members) if (postmasterPid(m.dataDir) !== null || (await probePort(m.pgPort)) !== 'refused') return null;
    return true;
  });
}

/** SQL on one member (not the leader), as postgres. */
export async function sqlOn<T extends Record<string, unknown>>(d: LocalSiteDriver, cluster: string, member: string, text: string): Promise<T[]> {
  const c = new Client({ ...(await d.region.pgConfig(cluster, { member })), connectionTimeoutMillis: 5_000 });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

/** Per member: Patroni's role, state and timeline, and what its Postgres holds of the divergent and a marker row. */
export async function memberRows(d: LocalSiteDriver, cluster: string, marker: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (const m of d.region.getCluster(cluster)!.members) {
    const node = (await (await fetch(`${d.region.patroniUrl(cluster, m.name)}/patroni`)).json()) as { role: string; state: string; timeline?: number };
    const rows = await sqlOn<{ divergent: number; marker: number }>(d, cluster, m.name,
      `select count(*) filter (where note like 'divergent-%')::int as divergent, count(*) filter (where note = '${marker}')::int as marker from rows`)
      .catch((e: Error) => [{ divergent: -1, marker: -1, error: e.message }]);
    out.push({ member: m.name, role: node.role, state: node.state, timeline: node.timeline, ...rows[0] });
  }
  return out;
}
