// `scripts/sandbox dr-cycle`: the whole disaster on the sandbox's demo cluster, with the real runbooks and
// workers: a writer on eu, region eu lost, unplanned promote of us, writes on us, eu back and found fenced,
// failback by rewind (or, with --rewind-impossible, a reseed), switchback to the original topology. The demo plays
// the sandbox's people and says so: carol starts the runs, alice approves (and bob, where a gate takes two), each
// with an ID token of the sandbox issuer; in production they are humans (drctl login, then drctl approve).
import type { Client, WorkflowHandle } from '@temporalio/client';
import { getPendingApprovalQuery, type PendingApproval } from '../../../workflows/contracts/approvals';
import { RUNBOOK_NAMES, runbookWorkflowId, type FailbackResult, type PromoteResult } from '../../../workflows/contracts/runbooks';
import { parseClusterRef } from '../../../workflows/contracts/clusters';
import { startRunbook } from '../runbook-client';
import { acknowledgementsOf, approveAsPeople, openGate, type TokenSource } from '../identity/gate-decision';
import { startWriter } from '../writer';
import type { SandboxLayout } from './layout';
import { DEMO_APPROVERS, DEMO_REQUESTER, demoTokens } from './demo-people';
import type { SandboxRegions } from './regions';
import { lastForkOf, partitionStandby, removeArchivedWalSegments, removeWalSegmentHolding, writeDivergentRows } from './faults';
import { startWorker, stopWorker } from './workers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function approveAsDemo(handle: WorkflowHandle, tokens: TokenSource, say: (l: string) => void): Promise<PendingApproval> {
  const gate = await openGate(handle, 24 * 3600_000);
  say(`  gate "${gate.gate}" of ${handle.workflowId}: ${gate.plan}`);
  const two = (gate.requires.approvers ?? 1) > 1;
  say(`  approving as ${two ? DEMO_APPROVERS.join(' and ') : DEMO_APPROVERS[0]} of the sandbox issuer${two ? ' (the gate takes two people)' : ''} (in production: humans, drctl approve)`);
  const record = await approveAsPeople(handle, gate, DEMO_APPROVERS, tokens, { ticket: 'DEMO-1', ...acknowledgementsOf(gate) });
  say(`  approved by ${(record.approvers ?? []).map((a) => a.subject).join(' and ') || record.approver}`);
  return gate;
}

/** True when the run opened its gate again (promote re-asks with a measured loss), false when it ended without. */
async function askedAgain(handle: WorkflowHandle): Promise<boolean> {
  for (;;) {
    if (await handle.query(getPendingApprovalQuery).catch(() => null)) return true;
    if ((await handle.describe()).status.name !== 'RUNNING') return false;
    await sleep(250);
  }
}

export interface DrCycleOptions {
  /**
   * The second run the issue asks for: us is cut off before eu is lost (so eu diverges), and the WAL a pg_rewind of
   * eu would need is removed before it comes back, so failback (auto) must fall back to a reseed.
   */
  rewindImpossible: boolean;
}

export async function drCycle(
  layout: SandboxLayout, regions: SandboxRegions, client: Client, bundle: string, say: (l: string) => void, opts: DrCycleOptions,
): Promise<void> {
  const { source, target } = layout.demo;
  const tokens = demoTokens(layout);
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
  let writer = await startWriter([{ driver: eu, cluster: euCluster }], 20, first);
  await sleep(3000);
  let divergent: number[] = [];
  if (opts.rewindImpossible) {
    say(`   a partition cuts ${target} off ${source}, which goes on writing (it diverges)`);
    await partitionStandby(us, usCluster, a.streamingEndpoint.port, layout.portBase + 4999);
    divergent = await writeDivergentRows(eu, euCluster);
    await sleep(1000);
  }
  say('2. region eu is lost: worker-eu, its clusters and its etcd stop');
  await stopWorker(layout, 'eu');
  await eu.region.stopCluster(euCluster);
  await eu.region.stopEtcd();
  await writer.stop();
  const onEu = writer.acknowledged;
  say(`   the writer was told ${onEu.length} rows committed on ${source}`);

  say(`3. unplanned promote of ${target}, started by ${DEMO_REQUESTER}`);
  const promoteId = runbookWorkflowId(RUNBOOK_NAMES.promote, target);
  const promote = await startRunbook(client, {
    workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: target,
    input: {
      cluster: target, mode: 'unplanned', limits: { regionTimeoutSeconds: 5, ...(opts.rewindImpossible ? { catchUpTimeoutSeconds: 10 } : {}) },
      requesterIdToken: await tokens(DEMO_REQUESTER, `start:${promoteId}`),
    },
  });
  const gate = await approveAsDemo(promote, tokens, say);
  if (opts.rewindImpossible && (await askedAgain(promote))) {
    say(`   cut off, ${target} could not replay all ${source} archived after the partition: promote asks again with that loss`);
    await approveAsDemo(promote, tokens, say);
  }
  const promoted = (await promote.result()) as PromoteResult;
  say(`   ${target} is primary: RTO ${promoted.rtoMs} ms, fence ${promoted.fence}, first backup ${promoted.backup?.backupName}`);

  say(`4. writes go on in ${target}`);
  writer = await startWriter([{ driver: us, cluster: usCluster }], 20, first + 10_000_000);
  await sleep(3000);
  await writer.stop();
  const onUs = writer.acknowledged;

  say('5. region eu comes back: etcd, worker-eu (the fence guard fences the old primary), then its cluster');
  await eu.region.startEtcd();
  await startWorker(layout, 'eu', bundle);
  if (promoted.fenceGuard) await client.workflow.getHandle(promoted.fenceGuard).result();
  if (opts.rewindImpossible) {
    const fork = await lastForkOf(us, usCluster, promoted.timelineAfter);
    const removed = removeWalSegmentHolding(eu, euCluster, fork.timeline, fork.lsn);
    const archived = await removeArchivedWalSegments(eu, euCluster, removed);
    say(`   the WAL a rewind of ${source} needs is gone (as if recycled, and from its own archive): removed ${[...removed, ...archived].join(', ')}`);
  }
  await eu.region.startCluster(euCluster);
  await sleep(5000);
  const fenced = await eu.withLeaderSql(euCluster, (c) => c.query('INSERT INTO public.writes (id) VALUES (-1)')).then(() => false, () => true);
  say(`   an INSERT into ${source} ${fenced ? 'was refused: it is fenced' : 'SUCCEEDED: split brain!'}`);

  say(`6. failback-reseed (auto) of ${source}, started by ${DEMO_REQUESTER}, then switchback under a writer that follows the primary`);
  const failbackId = runbookWorkflowId(RUNBOOK_NAMES.failbackReseed, source);
  const failback = await startRunbook(client, {
    workflowType: 'failbackReseed', runbook: RUNBOOK_NAMES.failbackReseed, cluster: source,
    input: { primary: target, formerPrimary: source, strategy: 'auto', switchBack: true, requesterIdToken: await tokens(DEMO_REQUESTER, `start:${failbackId}`) },
  });
  await approveAsDemo(failback, tokens, say);
  writer = await startWriter([{ driver: us, cluster: usCluster }, { driver: eu, cluster: euCluster }], 20, first + 20_000_000);
  await approveAsDemo(client.workflow.getHandle(`promote/${source}`), tokens, say);
  const result = (await failback.result()) as FailbackResult;
  await sleep(1000);
  await writer.stop();
  const acrossSwitchback = writer.acknowledged;

  const final = new Set((await eu.withLeaderSql(euCluster, (c) => c.query<{ id: string }>('SELECT id FROM public.writes'))).rows.map((r) => Number(r.id)));
  const missing = (ids: number[]) => ids.filter((id) => !final.has(id)).length;
  say('');
  say(`Cycle done: ${source} is primary again, ${target} follows it.`);
  say(`  rows committed on eu ${onEu.length}, missing at the end ${missing(onEu)} (loss estimate at promotion: ${gate.estimate?.bytes ?? '?'} bytes, basis ${gate.estimate?.basis})`);
  say(`  rows committed on us ${onUs.length}, missing at the end ${missing(onUs)}`);
  say(`  rows committed across the switchback ${acrossSwitchback.length}, missing at the end ${missing(acrossSwitchback)}; longest write gap a client saw ${writer.longestGapMs()} ms`);
  if (divergent.length) say(`  divergent rows eu wrote during the partition: ${divergent.length}, on the final primary ${divergent.length - missing(divergent)}, kept in ${result.quarantine?.manifest ?? 'no quarantine'}`);
  say(`  unplanned RTO ${promoted.rtoMs} ms; failback by ${result.strategy}${result.rewound ? ' (pg_rewind ran)' : ''} (${result.choiceReason}); ` +
    `switchback RTO ${result.switchBack?.rtoMs} ms, writes stopped ${result.switchBack?.writeDowntimeMs} ms, loss ${result.switchBack?.measuredRpoBytes} bytes`);
  say(`  backups: ${target} ${promoted.backup?.backupName}, ${source} ${result.switchBack?.backup?.backupName}`);
}
