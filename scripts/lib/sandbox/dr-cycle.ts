// `scripts/sandbox dr-cycle`: the whole disaster on the sandbox's demo cluster, with the real runbooks and
// workers: a writer on eu, region eu lost, unplanned promote of us, writes on us, eu back and found fenced,
// failback by rewind (or reseed), switchback to the original topology. The demo gives the approvals itself and
// says so; in production a human gives them (UI, temporal CLI, or an incident tool).
import type { Client, WorkflowHandle } from '@temporalio/client';
import { approveUpdate, getPendingApprovalQuery, type PendingApproval } from '../../../workflows/contracts/approvals';
import { RUNBOOK_NAMES, type FailbackResult, type PromoteResult } from '../../../workflows/contracts/runbooks';
import { parseClusterRef } from '../../../workflows/contracts/clusters';
import { startRunbook } from '../runbook-client';
import { startWriter } from '../writer';
import type { SandboxLayout } from './layout';
import type { SandboxRegions } from './regions';
import { startWorker, stopWorker } from './workers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function approveAsDemo(handle: WorkflowHandle, say: (l: string) => void): Promise<PendingApproval> {
  let gate: PendingApproval | null = null;
  while (!gate) {
    gate = await handle.query(getPendingApprovalQuery).catch(() => null);
    if (!gate) await sleep(250);
  }
  say(`  gate "${gate.gate}" of ${handle.workflowId}: ${gate.plan}`);
  say('  approving as "sandbox-demo" (in production: a human, with the update "approve")');
  await handle.executeUpdate(approveUpdate, {
    args: [{ approver: 'sandbox-demo', ticket: 'DEMO-1', acknowledgeDataLoss: gate.requires.acknowledgeDataLoss, acknowledgeUnconfirmedFence: gate.requires.acknowledgeUnconfirmedFence }],
  });
  return gate;
}

export async function drCycle(layout: SandboxLayout, regions: SandboxRegions, client: Client, bundle: string, say: (l: string) => void): Promise<void> {
  const { source, target } = layout.demo;
  const eu = regions.drivers[parseClusterRef(source).site];
  const us = regions.drivers[parseClusterRef(target).site];
  const euCluster = parseClusterRef(source).cluster;
  const usCluster = parseClusterRef(target).cluster;
  const [a, b] = await Promise.all([eu.describeCluster(euCluster), us.describeCluster(usCluster)]);
  if (a?.leaderRole !== 'primary' || b?.standbySource?.sourceRef !== source || !b.standbySource.host) {
    throw new Error(`dr-cycle needs the original topology: ${source} primary, ${target} its streaming standby (run "sandbox reset" then "sandbox up")`);
  }
  await eu.withLeaderSql(euCluster, (c) => c.query('CREATE TABLE IF NOT EXISTS public.writes (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())'));
  const first = Date.now();
  say(`1. a writer inserts into ${source} every 20 ms`);
  let writer = await startWriter(eu, euCluster, 20, first);
  await sleep(3000);
  say('2. region eu is lost: worker-eu, its clusters and its etcd stop');
  await stopWorker(layout, 'eu');
  await eu.region.stopCluster(euCluster);
  await eu.region.stopEtcd();
  await writer.stop();
  const onEu = writer.acknowledged;
  say(`   the writer was told ${onEu.length} rows committed on ${source}`);

  say(`3. unplanned promote of ${target}`);
  const promote = await startRunbook(client, {
    workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: target,
    input: { cluster: target, mode: 'unplanned', limits: { regionTimeoutSeconds: 5 } },
  });
  const gate = await approveAsDemo(promote, say);
  const promoted = (await promote.result()) as PromoteResult;
  say(`   ${target} is primary: RTO ${promoted.rtoMs} ms, fence ${promoted.fence}, first backup ${promoted.backup?.backupName}`);

  say(`4. writes go on in ${target}`);
  writer = await startWriter(us, usCluster, 20, first + 10_000_000);
  await sleep(3000);
  await writer.stop();
  const onUs = writer.acknowledged;

  say('5. region eu comes back: etcd, worker-eu (the fence guard fences the old primary), then its cluster');
  await eu.region.startEtcd();
  await startWorker(layout, 'eu', bundle);
  if (promoted.fenceGuard) await client.workflow.getHandle(promoted.fenceGuard).result();
  await eu.region.startCluster(euCluster);
  await sleep(5000);
  const fenced = await eu.withLeaderSql(euCluster, (c) => c.query('INSERT INTO public.writes (id) VALUES (-1)')).then(() => false, () => true);
  say(`   an INSERT into ${source} ${fenced ? 'was refused: it is fenced' : 'SUCCEEDED: split brain!'}`);

  say(`6. failback-reseed (auto) of ${source}, then switchback`);
  const failback = await startRunbook(client, {
    workflowType: 'failbackReseed', runbook: RUNBOOK_NAMES.failbackReseed, cluster: source,
    input: { primary: target, formerPrimary: source, strategy: 'auto', switchBack: true },
  });
  await approveAsDemo(failback, say);
  await approveAsDemo(client.workflow.getHandle(`promote/${source}`), say);
  const result = (await failback.result()) as FailbackResult;

  const final = new Set((await eu.withLeaderSql(euCluster, (c) => c.query<{ id: string }>('SELECT id FROM public.writes WHERE id >= $1', [first]))).rows.map((r) => Number(r.id)));
  const lostEu = onEu.filter((id) => !final.has(id));
  const lostUs = onUs.filter((id) => !final.has(id));
  say('');
  say(`Cycle done: ${source} is primary again, ${target} follows it.`);
  say(`  rows committed on eu ${onEu.length}, missing at the end ${lostEu.length} (loss estimate at promotion: ${gate.estimate?.bytes ?? '?'} bytes, basis ${gate.estimate?.basis})`);
  say(`  rows committed on us ${onUs.length}, missing at the end ${lostUs.length}`);
  say(`  unplanned RTO ${promoted.rtoMs} ms; failback by ${result.strategy}${result.rewound ? ' (pg_rewind ran)' : ''}; switchback RTO ${result.switchBack?.rtoMs} ms, loss ${result.switchBack?.measuredRpoBytes} bytes`);
  say(`  backups: ${target} ${promoted.backup?.backupName}, ${source} ${result.switchBack?.backup?.backupName}`);
}
