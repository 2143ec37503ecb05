// `scripts/sandbox region-failover [--clusters N]`: a fleet of N real clusters in eu, each protected by a standby in
// us built by the provision-standby runbook, then region eu is lost (its worker and the fleet's Postgres stop) and
// the region-failover runbook evacuates the fleet. The demo plays the sandbox's people and says so: carol starts the
// evacuation, alice and bob give its one decision (trusting an unconfirmed fence takes two), with ID tokens.
import type { Client } from '@temporalio/client';
import {
  getRegionProgressQuery, regionFailoverWorkflowId, type RegionFailoverInput, type RegionFailoverResult,
} from '../../../workflows/contracts/region-failover';
import { RUNBOOK_NAMES, type ProvisionStandbyInput } from '../../../workflows/contracts/runbooks';
import { startRunbook, RunbookAlreadyRunningError } from '../runbook-client';
import { approveAsPeople, openGate } from '../identity/gate-decision';
import { DEMO_APPROVERS, DEMO_REQUESTER, demoTokens } from './demo-people';
import type { SandboxLayout } from './layout';
import { ensureSourceCluster, type SandboxRegions, type Say } from './regions';
import { startWorker, stopWorker } from './workers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const FLEET_LABEL = { fleet: 'sandbox' };

export function fleetNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `acid-fleet${i + 1}`);
}

export async function regionFailoverDemo(
  layout: SandboxLayout, regions: SandboxRegions, client: Client, bundle: string, say: Say, opts: { clusters: number },
): Promise<void> {
  const eu = regions.drivers.eu;
  const names = fleetNames(opts.clusters);
  say(`1. a fleet of ${names.length} clusters in eu (tiers 0 and 1 by the label dr-tier), each with a standby in us`);
  for (const [i, name] of names.entries()) {
    await ensureSourceCluster(eu, name, { members: 1, labels: { ...FLEET_LABEL, 'dr-tier': String(i % 2) } }, say);
  }
  await Promise.all(names.map(async (name) => {
    const input: ProvisionStandbyInput = { source: `eu/${name}`, target: `us/${name}`, method: 'both' };
    let handle;
    try {
      handle = await startRunbook(client, { workflowType: 'provisionStandby', runbook: RUNBOOK_NAMES.provisionStandby, cluster: input.target, input });
    } catch (err) {
      if (!(err instanceof RunbookAlreadyRunningError)) throw err;
      handle = client.workflow.getHandle(err.workflowId);
    }
    await handle.result();
    say(`   provision-standby ${input.source} -> ${input.target}: done`);
  }));

  say('2. region eu is lost: worker-eu and the fleet\'s Postgres stop (acid-demo is not in this evacuation)');
  await stopWorker(layout, 'eu');
  for (const name of names) await eu.region.stopCluster(name);

  const input: RegionFailoverInput = {
    lostSite: 'eu', survivingSite: 'us', selector: { labels: FLEET_LABEL }, concurrency: 2,
    failureBudget: { maxFailures: 1, onExceeded: 'pause' }, limits: { regionTimeoutSeconds: 5 },
  };
  say(`3. region-failover eu -> us, started by ${DEMO_REQUESTER}: ${JSON.stringify(input)}`);
  const t0 = Date.now();
  const tokens = demoTokens(layout);
  const workflowId = regionFailoverWorkflowId('eu');
  const handle = await client.workflow.start('regionFailover', {
    workflowId, taskQueue: 'dr-control', args: [{ ...input, requesterIdToken: await tokens(DEMO_REQUESTER, `start:${workflowId}`) }],
  });
  const gate = await openGate(handle, 24 * 3600_000);
  say(`   gate "${gate.gate}": ${gate.plan}`);
  for (const r of gate.clusters ?? []) {
    say(`     ${r.cluster.padEnd(16)} -> ${String(r.standby).padEnd(16)} tier ${r.tier}  est. loss ${r.estimate?.bytes ?? '?'} bytes (${r.estimate?.basis ?? '-'})  fence ${r.fence}  ${r.outcome}`);
  }
  const over = (gate.clusters ?? []).filter((r) => r.outcome === 'excluded-over-policy').map((r) => r.cluster);
  say(`   approving as ${DEMO_APPROVERS.join(' and ')} of the sandbox issuer${over.length ? `, including ${over.join(', ')} (loss acknowledged)` : ''} ` +
    '(accepting loss or an unconfirmed fence takes two people; in production: humans, drctl approve)');
  const record = await approveAsPeople(handle, gate, DEMO_APPROVERS, tokens, {
    ticket: 'DEMO-2', include: over, acknowledgeDataLoss: over.length > 0, acknowledgeUnconfirmedFence: gate.requires.acknowledgeUnconfirmedFence,
  });
  say(`   approved by ${(record.approvers ?? []).map((a) => a.subject).join(' and ') || record.approver}`);
  const approvedAt = Date.now();
  let result: RegionFailoverResult | null = null;
  const done = handle.result().then((r) => { result = r as RegionFailoverResult; });
  while (!result) {
    await Promise.race([done, sleep(2000)]);
    const p = await handle.query(getRegionProgressQuery).catch(() => null);
    if (p && !result) say(`   tier ${p.tier ?? '-'}: ${p.done} promoted, ${p.running} running, ${p.failed} failed, ${p.pending} pending${p.slowest ? `; slowest ${p.slowest.cluster} ${Math.round(p.slowest.runningMs / 1000)} s` : ''}`);
  }
  const r = result as RegionFailoverResult;
  const { historyLength } = await handle.describe();
  say('');
  say(`Evacuation ${r.outcome}: ${Date.now() - t0} ms from start (${Date.now() - approvedAt} ms after the approval), ${r.runs} workflow run(s), last history ${historyLength} events.`);
  for (const c of r.clusters) {
    say(`  ${c.cluster.padEnd(16)} tier ${c.tier}  ${c.outcome.padEnd(17)} RTO ${c.rtoMs ?? '-'} ms  loss ${c.lossBytes ?? '?'} bytes  backup ${c.backup ?? '-'}${c.reason ? `  (${c.reason})` : ''}`);
  }
  say('4. region eu comes back: worker-eu starts and the fence guards fence the old primaries before they take a write');
  await startWorker(layout, 'eu', bundle);
  say('   the fleet now runs in us; ./scripts/sandbox reset removes it (a second run reports every cluster already promoted)');
}
