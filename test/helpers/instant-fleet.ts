// A fleet of in-memory standbys at us whose sources at eu are lost: region-failover's orchestration without Postgres.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { loadSites, localSite } from '../../activities/sites/sites-file';
import { s3ClientFor, splitS3Url } from '../../activities/s3/backup-catalogue';
import { ensureBucket } from '../../activities/sites/local/s3-server';
import { withRunbookWorkers, type RunbookHarness } from './runbook-workers';
import { InstantSiteDriver } from './instant-site-driver';
import { testLayout } from './test-env';

/** An InstantSiteDriver for us with `n` standbys of eu clusters (tiers by i % tiers), the eu archive holding one segment. */
export async function instantFleet(label: string, n: number, tiers: number): Promise<{ instant: InstantSiteDriver; names: string[] }> {
  const sites = loadSites(testLayout().sitesFile);
  // The lost site's archive: one WAL segment, so every standby's loss is measured (0 bytes) rather than unknown.
  const eu = localSite(sites, 'eu');
  const walPrefix = `s3://${eu.s3.bucket}/instant-${label}/wal/15`;
  await ensureBucket(eu.s3);
  const { bucket, key } = splitS3Url(walPrefix);
  await s3ClientFor(eu.s3).send(new PutObjectCommand({ Bucket: bucket, Key: `${key}/wal_005/000000010000000000000002.lz4`, Body: 'x' }));
  const instant = new InstantSiteDriver('us', localSite(sites, 'us').s3, walPrefix);
  const names = Array.from({ length: n }, (_, i) => `acid-${label}${String(i).padStart(3, '0')}`);
  names.forEach((name, i) => instant.addStandby(name, `eu/${name}`, { 'dr-tier': String(i % tiers) }));
  return { instant, names };
}

/** Runs `fn` with workers whose us site is `instant` and eu has no worker (lost); ends the fence guards left behind. */
export async function withLostEu(
  instant: InstantSiteDriver, fn: (h: RunbookHarness) => Promise<void>, opts: { sitesFile?: string } = {},
): Promise<void> {
  await withRunbookWorkers(async (h) => {
    try {
      await fn(h);
    } finally {
      // The UNCONFIRMED fences left a fence guard per old primary, waiting for eu; these tests' eu never returns.
      for await (const w of h.client.workflow.list({ query: `WorkflowType = 'fenceGuard' AND ExecutionStatus = 'Running' AND TaskQueue = '${h.taskQueue}'` })) {
        await h.client.workflow.getHandle(w.workflowId).terminate('test over').catch(() => undefined);
      }
    }
  }, { sites: ['us'], wrapDriver: (d) => (d.site === 'us' ? instant : d), sitesFile: opts.sitesFile });
}
