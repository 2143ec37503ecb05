// Brings up the sandbox's two regions on loopback: one S3 server both regions reach (it stands in for S3 with
// cross-region bucket access), an etcd per region, every cluster already created there, and the demo source.
import { join } from 'node:path';
import { loadSites, localSite, type LoadedSites } from '../../../activities/sites/sites-file';
import { LocalSiteDriver } from '../../../activities/sites/local-driver';
import { ensureBucket, s3ServerRunning, startS3ServerFor, stopS3Server } from '../../../activities/sites/local/s3-server';
import { listCompleteBackups } from '../../../activities/s3/backup-catalogue';
import { parseClusterRef } from '../../../workflows/contracts/clusters';
import { ensureS3Credentials, REGIONS, writeSitesFile, type SandboxLayout } from './layout';

export type Say = (line: string) => void;

export interface SandboxRegions {
  sites: LoadedSites;
  drivers: Record<string, LocalSiteDriver>;
}

const s3Dir = (layout: SandboxLayout) => join(layout.dir, 's3');

export function openRegions(layout: SandboxLayout): SandboxRegions {
  const sites = loadSites(layout.sitesFile);
  const drivers = Object.fromEntries(Object.keys(sites.sites).map((name) => [name, new LocalSiteDriver(localSite(sites, name))]));
  return { sites, drivers };
}

export async function upRegions(layout: SandboxLayout, say: Say): Promise<SandboxRegions> {
  ensureS3Credentials(layout);
  writeSitesFile(layout);
  const regions = openRegions(layout);
  const anyS3 = Object.values(regions.sites.sites)[0].s3;
  const s3 = await startS3ServerFor(anyS3, s3Dir(layout));
  say(`S3 (versitygw, posix backend) ${s3.changed ? 'started' : 'running'} at ${s3.endpoint}, data in ${s3Dir(layout)}/objects`);
  for (const region of REGIONS) {
    const driver = regions.drivers[region];
    await ensureBucket(driver.cfg.s3);
    const etcd = await driver.region.startEtcd();
    say(`region ${region}: etcd ${etcd.changed ? 'started' : 'running'} on 127.0.0.1:${driver.cfg.etcd.clientPort}`);
    for (const c of driver.region.listClusters()) {
      const r = await driver.region.startCluster(c.name);
      say(`region ${region}: cluster ${c.name} ${r.changed ? 'started' : 'running'}`);
    }
  }
  return regions;
}

/** The demo source: eu/acid-demo archiving to S3 in the Spilo layout, with data and a complete base backup. */
export async function ensureDemoSource(layout: SandboxLayout, regions: SandboxRegions, say: Say): Promise<void> {
  const { site, cluster } = parseClusterRef(layout.demo.source);
  await ensureSourceCluster(regions.drivers[site], cluster, { members: 2, labels: {} }, say);
}

/**
 * A source cluster archiving to S3 in the Spilo layout, with public.orders seeded and a complete base backup.
 * After a dr-cycle or an evacuation a source may be another incarnation (rewound, reseeded with a new uid):
 * an existing one is kept as it is, not compared with the spec it was first created from.
 */
export async function ensureSourceCluster(
  driver: LocalSiteDriver, cluster: string, spec: { members: number; labels: Record<string, string> }, say: Say,
): Promise<void> {
  const ref = `${driver.site}/${cluster}`;
  const existing = driver.region.getCluster(cluster);
  const created = existing
    ? { changed: (await driver.region.startCluster(cluster)).changed, cluster: existing }
    : await driver.region.createCluster(
      { name: cluster, pgVersion: 15, archive: true, users: ['app'], members: spec.members, labels: spec.labels },
      { onProgress: (p) => say(`  ${cluster}: ${p.phase} ${p.detail}`) },
    );
  say(`source ${ref} ${created.changed ? 'created' : 'running'}; archive ${created.cluster.archivePrefix}`);
  await driver.withLeaderSql(cluster, async (sql) => {
    await sql.query(`CREATE TABLE IF NOT EXISTS public.orders (
      id bigserial PRIMARY KEY, customer text NOT NULL, amount_cents integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await sql.query<{ n: string }>('SELECT count(*) AS n FROM public.orders');
    if (Number(rows[0].n) === 0) {
      await sql.query(`INSERT INTO public.orders (customer, amount_cents)
        SELECT 'customer-' || (g % 97), (g * 37) % 10000 FROM generate_series(1, 10000) AS g`);
      say(`  seeded public.orders with 10000 rows`);
    }
  });
  const archive = created.cluster.archivePrefix!;
  const backups = await listCompleteBackups(driver.cfg.s3, archive);
  if (backups.length === 0) {
    say(`  taking the first base backup of ${ref} (wal-g backup-push)`);
    const r = await driver.region.backupPush(cluster);
    if (r.exitCode !== 0) throw new Error(`backup-push of ${ref} failed (exit ${r.exitCode}): ${r.stderr.slice(-500)}`);
    const after = await listCompleteBackups(driver.cfg.s3, archive);
    if (after.length === 0) throw new Error(`backup-push of ${ref} exited 0 but no sentinel landed under ${archive}`);
    say(`  base backup ${after[after.length - 1].name} landed (sentinel present)`);
  } else {
    say(`  ${backups.length} complete base backup(s) in the archive, newest ${backups[backups.length - 1].name}`);
  }
}

export async function downRegions(layout: SandboxLayout, say: Say): Promise<void> {
  const regions = openRegions(layout);
  for (const region of REGIONS) {
    const r = await regions.drivers[region].region.stopAll();
    say(`region ${region}: ${r.changed ? 'stopped' : 'was not running'}`);
  }
  const s3 = await stopS3Server(join(s3Dir(layout), 'versitygw.pid'));
  say(`S3: ${s3.changed ? 'stopped' : 'was not running'}`);
}

export function s3Running(layout: SandboxLayout): boolean {
  return s3ServerRunning(join(s3Dir(layout), 'versitygw.pid'));
}
