// Direct looks at the sandbox's clusters, independent of the runbooks under test.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSites, localSite } from '../../activities/sites/sites-file';
import { LocalSiteDriver } from '../../activities/sites/local-driver';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { testLayout } from './test-env';

export function driverOf(ref: string): { driver: LocalSiteDriver; cluster: string } {
  const { site, cluster } = parseClusterRef(ref);
  const sites = loadSites(process.env.DR_SITES_FILE ?? testLayout().sitesFile);
  return { driver: new LocalSiteDriver(localSite(sites, site)), cluster };
}

export async function sql<T extends Record<string, unknown>>(ref: string, text: string, params: unknown[] = []): Promise<T[]> {
  const { driver, cluster } = driverOf(ref);
  return driver.withLeaderSql(cluster, async (c) => (await c.query<T>(text, params)).rows);
}

/** Everything a refused runbook must not have touched at the target: cluster files and secrets. */
export function footprint(ref: string): { clusterDir: boolean; secretsDir: boolean } {
  const { driver, cluster } = driverOf(ref);
  return {
    clusterDir: existsSync(join(driver.cfg.dataDir, 'clusters', cluster)),
    secretsDir: existsSync(join(driver.cfg.secretStore.dir, cluster)),
  };
}

export async function deleteCluster(ref: string): Promise<void> {
  const { driver, cluster } = driverOf(ref);
  await driver.region.deleteCluster(cluster, { deleteSecrets: true });
}

/** The leader's role as the driver reports it ('primary', 'standby_leader', 'unknown', ...). */
export async function roleOf(ref: string) {
  const { driver, cluster } = driverOf(ref);
  return (await driver.describeCluster(cluster))?.leaderRole;
}

/** Switches the leader to a new WAL file and waits until the one it left is archived (pg_stat_archiver). */
export async function switchWalAndWaitArchived(ref: string): Promise<void> {
  const seg = (await sql<{ f: string }>(ref, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS f'))[0].f;
  await sql(ref, 'SELECT pg_switch_wal()');
  for (;;) {
    const a = (await sql<{ w: string | null }>(ref, 'SELECT last_archived_wal AS w FROM pg_stat_archiver'))[0].w;
    if (a && a >= seg) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}
