// region-failover orchestration with hundreds of clusters on the InstantSiteDriver (in memory: no Postgres, every
// standby promotes the moment it is asked), against the sandbox's real Temporal server: total time, history
// events per run and per child, server and worker memory. What it measures is Temporal plus the runbooks'
// orchestration; real promotions add their own seconds (see the promote benchmark).
// Run against a running sandbox: `./scripts/sandbox up && npx tsx bench/region-failover-scale.ts [rounds] [clusters] [concurrency]`.
import { randomBytes } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { getPendingApprovalQuery, type PendingApproval } from '../workflows/contracts/approvals';
import { regionFailoverWorkflowId, type RegionFailoverInput, type RegionFailoverResult } from '../workflows/contracts/region-failover';
import { controlTaskQueue } from '../workflows/contracts/task-queues';
import { loadSites, localSite } from '../activities/sites/sites-file';
import { createDriverFactory } from '../activities/sites';
import { s3ClientFor, splitS3Url } from '../activities/s3/backup-catalogue';
import { createRunbookWorkers } from '../worker/workers';
import { buildWorkflowBundle } from '../scripts/lib/sandbox/workers';
import { InstantSiteDriver } from '../test/helpers/instant-site-driver';
import { approveAsSandboxPeople, layout, printTable, rounds as roundsArg, sandboxClient, sleep, temporalServerRssMb } from './lib';

const rounds = roundsArg(1);
const clusters = Number(process.argv[3] ?? 500);
const concurrency = Number(process.argv[4] ?? 50);

async function oneRound(client: Client, bundle: string, round: number) {
  const sites = loadSites(layout.sitesFile);
  const eu = localSite(sites, 'eu');
  const walPrefix = `s3://${eu.s3.bucket}/bench-instant/wal/15`;
  const { bucket, key } = splitS3Url(walPrefix);
  await s3ClientFor(eu.s3).send(new PutObjectCommand({ Bucket: bucket, Key: `${key}/wal_005/000000010000000000000002.lz4`, Body: 'x' }));
  const instant = new InstantSiteDriver('us', localSite(sites, 'us').s3, walPrefix);
  for (let i = 0; i < clusters; i++) instant.addStandby(`acid-b${String(i).padStart(4, '0')}`, `eu/acid-b${String(i).padStart(4, '0')}`, { 'dr-tier': String(i % 3) });

  // Private queues: the sandbox's own workers never see these tasks, and eu has no worker here (it is "lost").
  const prefix = `bench${randomBytes(3).toString('hex')}-`;
  const realDriverFor = createDriverFactory(sites);
  const connection = await NativeConnection.connect({ address: `127.0.0.1:${layout.temporalPort}` });
  const workers: Worker[] = await createRunbookWorkers({
    connection, namespace: 'default', servedSites: ['us'], serveControl: true, workflowBundle: { codePath: bundle }, taskQueuePrefix: prefix,
    deps: { sites, driverFor: (site) => (site === 'us' ? instant : realDriverFor(site)) },
  });
  const running = workers.map((w) => w.run());
  let peakWorkerRss = process.memoryUsage().rss;
  let peakServerRss = temporalServerRssMb() ?? 0;
  const sampler = setInterval(() => {
    peakWorkerRss = Math.max(peakWorkerRss, process.memoryUsage().rss);
    peakServerRss = Math.max(peakServerRss, temporalServerRssMb() ?? 0);
  }, 1000);
  try {
    const input: RegionFailoverInput = {
      lostSite: 'eu', survivingSite: 'us', concurrency, assessConcurrency: 50, takeBackup: false,
      approvalTimeoutSeconds: 600, limits: { regionTimeoutSeconds: 1 },
    };
    const workflowId = `${regionFailoverWorkflowId('eu')}-bench${round}-${prefix}`;
    const t0 = Date.now();
    const handle = await client.workflow.start('regionFailover', { workflowId, taskQueue: controlTaskQueue(prefix), args: [input] });
    let gate: PendingApproval | null = null;
    while (!(gate = await handle.query(getPendingApprovalQuery).catch(() => null))) await sleep(200);
    const assessMs = Date.now() - t0;
    // Trusting the unconfirmed fence takes two people: alice, then bob.
    await approveAsSandboxPeople(handle, 'BENCH', { acknowledgeUnconfirmedFence: true }, gate);
    const t1 = Date.now();
    const result = (await handle.result()) as RegionFailoverResult;
    const promoteMs = Date.now() - t1;
    if (result.clusters.filter((r) => r.outcome === 'promoted').length !== clusters) throw new Error(`not every cluster was promoted: ${result.outcome}`);
    const parentEvents: number[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) parentEvents.push((await client.workflow.getHandle(w.workflowId, w.runId).describe()).historyLength);
    const child = await client.workflow.getHandle(result.clusters[0].workflowId!).describe();
    const durations = result.clusters.map((r) => r.durationMs!).sort((a, b) => a - b);
    for await (const w of client.workflow.list({ query: `WorkflowType = 'fenceGuard' AND ExecutionStatus = 'Running' AND TaskQueue = '${controlTaskQueue(prefix)}'` })) {
      await client.workflow.getHandle(w.workflowId).terminate('benchmark over').catch(() => undefined);
    }
    return {
      assessMs, promoteMs, totalMs: assessMs + promoteMs, runs: result.runs, parentEvents, childEvents: child.historyLength,
      childMedianMs: durations[Math.floor(durations.length / 2)], peakWorkerRssMb: Math.round(peakWorkerRss / 1024 / 1024), peakServerRssMb: peakServerRss,
    };
  } finally {
    clearInterval(sampler);
    for (const w of workers) w.shutdown();
    await Promise.allSettled(running);
    await connection.close();
  }
}

async function main(): Promise<void> {
  const client = await sandboxClient();
  const bundle = await buildWorkflowBundle(layout);
  const serverBefore = temporalServerRssMb();
  const r = [];
  for (let i = 0; i < rounds; i++) {
    const x = await oneRound(client, bundle, i);
    r.push(x);
    console.log(`round ${i + 1}: ${clusters} clusters, concurrency ${concurrency}: discover+assess ${x.assessMs} ms, promotions ${x.promoteMs} ms, ` +
      `${x.runs} runs (${x.parentEvents.join('/')} events), child promote ${x.childEvents} events, median child ${x.childMedianMs} ms, ` +
      `peak worker RSS ${x.peakWorkerRssMb} MB, peak server RSS ${x.peakServerRssMb} MB (before ${serverBefore} MB)`);
  }
  await client.connection.close();
  printTable(`region-failover of ${clusters} clusters on the InstantSiteDriver, concurrency ${concurrency}, ${rounds} round(s)`, 'as named', [
    ['discover + assess, start -> approval gate open (ms)', r.map((x) => x.assessMs)],
    ['approval -> every cluster promoted (ms)', r.map((x) => x.promoteMs)],
    ['one child promote, start -> done, median over clusters (ms)', r.map((x) => x.childMedianMs)],
    ['parent workflow runs (continue-as-new)', r.map((x) => x.runs)],
    ['largest parent run history (events)', r.map((x) => Math.max(...x.parentEvents))],
    ['parent events per cluster, all runs', r.map((x) => Math.round((x.parentEvents.reduce((a, b) => a + b, 0) / clusters) * 10) / 10)],
    ['child promote history (events)', r.map((x) => x.childEvents)],
    ['peak worker RSS, one process with control + us workers (MB)', r.map((x) => x.peakWorkerRssMb)],
    ['peak Temporal dev server RSS (MB)', r.map((x) => x.peakServerRssMb)],
  ]);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
