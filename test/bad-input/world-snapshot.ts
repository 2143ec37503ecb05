// Everything a refused runbook or command could have changed, read directly (not through the runbooks): Patroni's
// dynamic config and role of every member, the data a runbook writes before it changes anything (marker rows),
// the cluster files, every secret file with its mtime, and the S3 objects of both buckets.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { s3ClientFor } from '../../activities/s3/backup-catalogue';
import { LocalSiteDriver } from '../../activities/sites/local-driver';
import { restUrl } from '../../activities/sites/local/members';
import { loadSites, localSite } from '../../activities/sites/sites-file';
import { testLayout } from '../helpers/test-env';

export interface World {
  /** `<site>/<cluster>` -> its cluster file as the region keeps it (uid, members, standby spec, drill owner). */
  clusters: Record<string, unknown>;
  /** `<site>/<cluster>/<member>` -> GET /config and the role from GET /patroni. */
  patroni: Record<string, { config: unknown; role: string }>;
  /** `<site>/<cluster>` -> in recovery, marker rows, rows of public.writes (what a runbook writes first). */
  data: Record<string, unknown>;
  /** `<site>:<path in its secret store>` -> mtime and a hash of the content (never the content). */
  secrets: Record<string, string>;
  /** `s3://<bucket>/<key>` -> size and ETag. WAL segments are left out: Postgres archives them on its own. */
  s3: Record<string, string>;
}

const sites = () => loadSites(process.env.DR_SITES_FILE ?? testLayout().sitesFile);

async function getJson(url: string): Promise<any> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return r.json();
}

function walk(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** What a runbook writes before it changes anything else: marker rows (and the test table of the source). */
async function dataOf(client: { query: (q: string) => Promise<{ rows: any[] }> }): Promise<Record<string, unknown>> {
  const [t] = (await client.query(`SELECT pg_is_in_recovery() AS "inRecovery",
    to_regclass('standby_runbooks.markers') IS NOT NULL AS markers, to_regclass('public.writes') IS NOT NULL AS writes`)).rows;
  const count = async (table: string) => (await client.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
  return {
    inRecovery: t.inRecovery,
    markers: t.markers ? await count('standby_runbooks.markers') : null,
    writes: t.writes ? await count('public.writes') : null,
  };
}

async function siteWorld(site: string, w: World): Promise<void> {
  const cfg = localSite(sites(), site);
  const driver = new LocalSiteDriver(cfg);
  for (const c of driver.region.listClusters()) {
    const ref = `${site}/${c.name}`;
    w.clusters[ref] = c;
    for (const m of c.members) {
      const [config, patroni] = await Promise.all([getJson(`${restUrl(m)}/config`), getJson(`${restUrl(m)}/patroni`)]);
      w.patroni[`${ref}/${m.name}`] = { config, role: patroni.role };
    }
    w.data[ref] = await driver.withLeaderSql(c.name, dataOf);
  }
  const store = cfg.secretStore.dir;
  for (const f of walk(store)) {
    w.secrets[`${site}:${relative(store, f)}`] = `${statSync(f).mtimeMs} ${createHash('sha256').update(readFileSync(f)).digest('hex')}`;
  }
}

async function bucketWorld(s3: Parameters<typeof s3ClientFor>[0], w: World): Promise<void> {
  const client = s3ClientFor(s3);
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        if (o.Key!.includes('/wal_005/')) continue;
        w.s3[`s3://${s3.bucket}/${o.Key}`] = `${o.Size} ${o.ETag}`;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    client.destroy();
  }
}

/** Reads the world as it is now. */
export async function snapshotWorld(): Promise<World> {
  const w: World = { clusters: {}, patroni: {}, data: {}, secrets: {}, s3: {} };
  const all = sites();
  const local = Object.keys(all.sites).filter((s) => all.sites[s].kind === 'local');
  for (const site of local) await siteWorld(site, w);
  const buckets = new Map(local.map((s) => [localSite(all, s).s3.bucket, localSite(all, s).s3]));
  for (const s3 of buckets.values()) await bucketWorld(s3, w);
  return w;
}

/**
 * Snapshots the world, runs `refusal` (which asserts how it was refused), snapshots again and asserts that
 * nothing differs. Returns what `refusal` returned.
 */
export async function expectNothingChanged<T>(refusal: () => Promise<T>): Promise<T> {
  const before = await snapshotWorld();
  const result = await refusal();
  const after = await snapshotWorld();
  expect(after).toEqual(before);
  return result;
}
