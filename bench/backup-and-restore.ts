// A database of about 1 GB: force-backup (to a proven sentinel) next to a raw `wal-g backup-push`, and
// provision-standby (archive: restore, replay, marker seen) next to a raw `wal-g backup-fetch` of the same backup.
// Each pair runs in turn, the order swapped every round, so load from anything else on the machine hits both sides
// alike; the ratio is taken round by round. Run against a running sandbox:
// `./scripts/sandbox up && npx tsx bench/backup-and-restore.ts [rounds] [GB]`.
// The first run builds eu/acid-bench1g (a minute or more); later runs reuse it. Prints tables; asserts nothing.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { startRunbook } from '../scripts/lib/runbook-client';
import { RUNBOOK_NAMES, type ForceBackupResult, type ProvisionStandbyResult } from '../workflows/contracts/runbooks';
import { listCompleteBackups } from '../activities/s3/backup-catalogue';
import { runCommand, walgEnv } from '../activities/sites/local/walg-env';
import { walgBin } from '../activities/sites/local/tools';
import { createSource } from '../test/helpers/standby-pair';
import { deleteCluster, driverOf, sql } from '../test/helpers/clusters';
import { printRatio, printTable, rounds as roundsArg, sandboxClient } from './lib';

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
  // Autovacuum's first pass over freshly loaded rows writes about as much WAL as the load (hint bits, with
  // wal_log_hints on): done here, once, it cannot land in a measured round and slow one side.
  await sql(SOURCE, 'VACUUM (FREEZE, ANALYZE) public.big');
  await sql(SOURCE, 'CHECKPOINT');
  return size();
}

/** Dirty pages of the previous step (a gigabyte just fetched) are written out before the next timed step starts. */
const settle = () => execFileSync('sync');

async function forceBackup(client: Client): Promise<{ ms: number; result: ForceBackupResult }> {
  // A write first, so the runbook's required LSN is past every existing backup and it cannot reuse one.
  await sql(SOURCE, 'INSERT INTO public.writes (id) VALUES ($1)', [-Date.now()]);
  settle();
  const t0 = Date.now();
  const handle = await startRunbook(client, { workflowType: 'forceBackup', runbook: RUNBOOK_NAMES.forceBackup, cluster: SOURCE, input: { cluster: SOURCE } });
  const result = (await handle.result()) as ForceBackupResult;
  if (result.reused) throw new Error('force-backup reused a backup: the measurement would be meaningless');
  return { ms: Date.now() - t0, result };
}

async function rawBackupPush(): Promise<number> {
  const { driver, cluster } = driverOf(SOURCE);
  settle();
  const t0 = Date.now();
  const r = await driver.region.backupPush(cluster);
  if (r.exitCode !== 0) throw new Error(`backup-push failed: ${r.stderr.slice(-300)}`);
  return Date.now() - t0;
}

async function provision(client: Client): Promise<{ ms: number; result: ProvisionStandbyResult }> {
  await deleteCluster(TARGET);
  settle();
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
    settle();
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
  console.log(`${SOURCE}: database ${(bytes / 1024 ** 3).toFixed(2)} GB (${bytes} bytes, pg_database_size); load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const client = await sandboxClient();
  const m = { rb: [] as number[], raw: [] as number[], prov: [] as number[], restorePhase: [] as number[], fetch: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    const runbookFirst = i % 2 === 0;
    let fb: Awaited<ReturnType<typeof forceBackup>>;
    let raw: number;
    if (runbookFirst) {
      fb = await forceBackup(client);
      raw = await rawBackupPush();
    } else {
      raw = await rawBackupPush();
      fb = await forceBackup(client);
    }
    m.rb.push(fb.ms);
    m.raw.push(raw);
    // The backup provision-standby will pick (the newest complete one): both sides restore the same backup.
    const facts = (await driverOf(SOURCE).driver.describeCluster('acid-bench1g'))!;
    const newest = (await listCompleteBackups(facts.archive.s3, facts.archive.walPrefix)).pop()!;
    let p: Awaited<ReturnType<typeof provision>>;
    let fetched: number;
    if (runbookFirst) {
      p = await provision(client);
      fetched = await rawBackupFetch(newest.name);
    } else {
      fetched = await rawBackupFetch(newest.name);
      p = await provision(client);
    }
    if (p.result.baseBackup !== newest.name) throw new Error(`provision-standby restored ${p.result.baseBackup}, the raw fetch ${newest.name}: not the same backup`);
    m.prov.push(p.ms);
    m.restorePhase.push(p.result.phaseDurationsMs['create-standby'] ?? 0);
    m.fetch.push(fetched);
    console.log(`round ${i + 1} (${runbookFirst ? 'runbooks first' : 'raw first'}): force-backup ${fb.ms} ms (${fb.result.backupName}, ${fb.result.compressedSize ?? '?'} bytes compressed); ` +
      `raw backup-push ${raw} ms (${(fb.ms / raw).toFixed(2)}x); provision-standby ${p.ms} ms (phases ${JSON.stringify(p.result.phaseDurationsMs)}); ` +
      `raw backup-fetch of ${newest.name} ${fetched} ms (${(p.ms / fetched).toFixed(2)}x)`);
  }
  await deleteCluster(TARGET);
  await client.connection.close();
  console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  printTable(`Backup and restore of ${(bytes / 1024 ** 3).toFixed(2)} GB on the sandbox, ${rounds} rounds`, 'ms', [
    ['raw `wal-g backup-push` (exit)', m.raw],
    ['force-backup runbook: start -> sentinel proven in S3', m.rb],
    ['raw `wal-g backup-fetch` of the newest backup into an empty directory', m.fetch],
    ['provision-standby runbook (archive): start -> standby replays the marker', m.prov],
    ['  of which create-standby (restore + start + standby leader)', m.restorePhase],
  ]);
  printRatio('force-backup vs raw backup-push', ['force-backup', m.rb], ['backup-push', m.raw], 1.1);
  printRatio('provision-standby vs raw backup-fetch', ['provision-standby', m.prov], ['backup-fetch', m.fetch], 1.3);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
