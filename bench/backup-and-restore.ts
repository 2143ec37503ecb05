// A database of about 1 GB: force-backup (to a proven sentinel) next to a raw `wal-g backup-push`, and
// provision-standby (archive: restore, replay, marker seen) next to a raw `wal-g backup-fetch` of the same backup.
// Run against a running sandbox: `./scripts/sandbox up && npx tsx bench/backup-and-restore.ts [rounds] [GB]`.
// The first run builds eu/acid-bench1g (several minutes); later runs reuse it. Prints tables; asserts nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { startRunbook } from '../scripts/lib/runbook-client';
import { RUNBOOK_NAMES, type ForceBackupResult, type ProvisionStandbyResult } from '../workflows/contracts/runbooks';
import { listCompleteBackups } from '../activities/s3/backup-catalogue';
import { runCommand, walgEnv } from '../activities/sites/local/walg-env';
import { walgBin } from '../activities/sites/local/tools';
import { createSource } from '../test/helpers/standby-pair';
import { deleteCluster, driverOf, sql } from '../test/helpers/clusters';
import { printTable, rounds as roundsArg, sandboxClient } from './lib';

const SOURCE = 'eu/acid-bench1g';
const TARGET = 'us/acid-bench1g';
const rounds = roundsArg(2);
const gigabytes = Number(process.argv[3] ?? 1);

async function ensureBigSource(): Promise<number> {
  await createSource(SOURCE, { members: 1 });
  const size = async () => Number((await sql<{ b: string }>(SOURCE, 'SELECT pg_database_size(current_database()) AS b'))[0].b);
  const want = gigabytes * 1024 ** 3;
  if ((await size()) < want * 0.9) {
    console.log(`building ${gigabytes} GB of rows in ${SOURCE} (once)...`);
    await sql(SOURCE, 'CREATE TABLE IF NOT EXISTS public.big (id bigint PRIMARY KEY, pad text NOT NULL)');
    // ~290 bytes a row on disk with the index: batches keep each transaction and its WAL moderate.
    for (let from = 1; (await size()) < want; from += 500_000) {
      await sql(SOURCE, `INSERT INTO public.big SELECT g, md5(g::text) || repeat('x', 200) FROM generate_series($1::bigint, $1::bigint + 499999) g ON CONFLICT DO NOTHING`, [from]);
    }
  }
  return size();
}

async function forceBackup(client: Client): Promise<{ ms: number; result: ForceBackupResult }> {
  // A write first, so the runbook's required LSN is past every existing backup and it cannot reuse one.
  await sql(SOURCE, 'INSERT INTO public.writes (id) VALUES ($1)', [-Date.now()]);
  const t0 = Date.now();
  const handle = await startRunbook(client, { workflowType: 'forceBackup', runbook: RUNBOOK_NAMES.forceBackup, cluster: SOURCE, input: { cluster: SOURCE } });
  const result = (await handle.result()) as ForceBackupResult;
  if (result.reused) throw new Error('force-backup reused a backup: the measurement would be meaningless');
  return { ms: Date.now() - t0, result };
}

async function rawBackupPush(): Promise<number> {
  const { driver, cluster } = driverOf(SOURCE);
  const t0 = Date.now();
  const r = await driver.region.backupPush(cluster);
  if (r.exitCode !== 0) throw new Error(`backup-push failed: ${r.stderr.slice(-300)}`);
  return Date.now() - t0;
}

async function provision(client: Client): Promise<{ ms: number; result: ProvisionStandbyResult }> {
  await deleteCluster(TARGET);
  const t0 = Date.now();
  const handle = await startRunbook(client, {
    workflowType: 'provisionStandby', runbook: RUNBOOK_NAMES.provisionStandby, cluster: TARGET,
    input: { source: SOURCE, target: TARGET, method: 'archive' },
  });
  const result = (await handle.result()) as ProvisionStandbyResult;
  return { ms: Date.now() - t0, result };
}

/** `wal-g backup-fetch <dir> <backup>` as an operator would run it by hand, into an empty directory at us. */
async function rawBackupFetch(backupName: string): Promise<number> {
  const { driver, cluster } = driverOf(SOURCE);
  const facts = (await driver.describeCluster(cluster))!;
  const env = await walgEnv(facts.archive.s3, facts.archive.walPrefix);
  const dir = mkdtempSync(join(tmpdir(), 'bench-fetch-'));
  try {
    const t0 = Date.now();
    const r = await runCommand(walgBin(), ['backup-fetch', join(dir, 'pgdata'), backupName], env, { timeoutMs: 3_600_000 });
    if (r.exitCode !== 0) throw new Error(`backup-fetch failed: ${r.stderr.slice(-300)}`);
    return Date.now() - t0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const bytes = await ensureBigSource();
  console.log(`${SOURCE}: database ${(bytes / 1024 ** 3).toFixed(2)} GB`);
  const client = await sandboxClient();
  const m = { rb: [] as number[], raw: [] as number[], prov: [] as number[], restorePhase: [] as number[], fetch: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    const fb = await forceBackup(client);
    m.rb.push(fb.ms);
    m.raw.push(await rawBackupPush());
    const p = await provision(client);
    m.prov.push(p.ms);
    m.restorePhase.push(p.result.phaseDurationsMs['create-standby'] ?? 0);
    const newest = (await listCompleteBackups(driverOf(SOURCE).driver.cfg.s3, (await driverOf(SOURCE).driver.describeCluster('acid-bench1g'))!.archive.walPrefix)).pop()!;
    m.fetch.push(await rawBackupFetch(newest.name));
    console.log(`round ${i + 1}: force-backup ${fb.ms} ms (${fb.result.backupName}, ${fb.result.compressedSize ?? '?'} bytes compressed); raw backup-push ${m.raw[i]} ms; ` +
      `provision-standby ${p.ms} ms (phases ${JSON.stringify(p.result.phaseDurationsMs)}); raw backup-fetch ${m.fetch[i]} ms`);
  }
  await deleteCluster(TARGET);
  await client.connection.close();
  printTable(`Backup and restore of ${(bytes / 1024 ** 3).toFixed(2)} GB on the sandbox, ${rounds} rounds`, 'ms', [
    ['raw `wal-g backup-push` (exit)', m.raw],
    ['force-backup runbook: start -> sentinel proven in S3', m.rb],
    ['raw `wal-g backup-fetch` of the newest backup into an empty directory', m.fetch],
    ['provision-standby runbook (archive): start -> standby replays the marker', m.prov],
    ['  of which create-standby (restore + start + standby leader)', m.restorePhase],
  ]);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
