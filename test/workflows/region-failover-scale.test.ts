// region-failover with hundreds of clusters, on the InstantSiteDriver (in memory, no Postgres): the real
// Temporal server, workers, workflows and activities, with sites that promote instantly. It proves the
// orchestration, not Postgres: every child promotes exactly once, the parent continues as new to keep its
// history small, and one human decision covers them all.
import { getJournalQuery } from '../../workflows/contracts/journal';
import {
  regionFailoverWorkflowId, type RegionFailoverInput, type RegionFailoverResult,
} from '../../workflows/contracts/region-failover';
import { approveAs, pendingGate } from '../helpers/approvals';
import type { RunbookHarness } from '../helpers/runbook-workers';
import { instantFleet, withLostEu } from '../helpers/instant-fleet';

const CLUSTERS = 200;
const PER_RUN = 80;
const CONCURRENCY = 40;

describe('region-failover on the InstantSiteDriver (in-memory sites, real Temporal)', () => {
  it('per-tier approvals; a failure with the budget set to "stop" leaves the next tiers unstarted', async () => {
    const { instant, names } = await instantFleet('tiers', 6, 2);
    instant.refusePromotion.add(names[2]);
    await withLostEu(instant, async (h) => {
      const handle = await h.client.workflow.start('regionFailover', {
        workflowId: regionFailoverWorkflowId('eu'), taskQueue: h.taskQueue,
        args: [{ lostSite: 'eu', survivingSite: 'us', approvalMode: 'per-tier', concurrency: 1, takeBackup: false,
          failureBudget: { maxFailures: 1, onExceeded: 'stop' }, limits: { regionTimeoutSeconds: 1 } } satisfies RegionFailoverInput],
      });
      const gate0 = await pendingGate(handle);
      expect(gate0.gate).toBe('region-failover-tier-0');
      expect(gate0.clusters!.map((r) => r.tier)).toEqual([0, 0, 0]);
      await approveAs(handle, 'carol', { ticket: 'INC-7', acknowledgeUnconfirmedFence: true }, gate0);
      const result = (await handle.result()) as RegionFailoverResult;
      const outcome = Object.fromEntries(result.clusters.map((r) => [r.cluster.split('/')[1], r.outcome]));
      // Tier 0 is names 0, 2, 4 (i % 2): 0 promoted, 2 refused, so 4 and all of tier 1 were never started.
      expect(outcome).toEqual({
        [names[0]]: 'promoted', [names[2]]: 'failed', [names[4]]: 'stopped',
        [names[1]]: 'stopped', [names[3]]: 'stopped', [names[5]]: 'stopped',
      });
      expect(result.outcome).toBe('stopped');
      expect(result.approvals).toHaveLength(1);
      expect([...instant.promotions.keys()].sort()).toEqual([names[0], names[2]]);
    });
  }, 300_000);

  it(`promotes ${CLUSTERS} standbys in 3 tiers, each exactly once, continuing as new after ${PER_RUN} promotions`, async () => {
    const { instant, names } = await instantFleet('scale', CLUSTERS, 3);
    await withLostEu(instant, evacuate);

    async function evacuate(h: RunbookHarness): Promise<void> {
      const input: RegionFailoverInput = {
        lostSite: 'eu', survivingSite: 'us', concurrency: CONCURRENCY, assessConcurrency: 50, takeBackup: false,
        approvalTimeoutSeconds: 600, limits: { regionTimeoutSeconds: 1, promotionsPerRun: PER_RUN },
      };
      const t0 = Date.now();
      const handle = await h.client.workflow.start('regionFailover', { workflowId: regionFailoverWorkflowId('eu'), taskQueue: h.taskQueue, args: [input] });
      const gate = await pendingGate(handle);
      const assessedMs = Date.now() - t0;
      expect(gate.clusters).toHaveLength(CLUSTERS);
      expect(gate.clusters!.every((r) => r.outcome === 'pending' && r.estimate?.bytes === 0)).toBe(true);
      await approveAs(handle, 'bob', { ticket: 'INC-1000', acknowledgeUnconfirmedFence: true }, gate);
      const t1 = Date.now();
      const result = (await handle.result()) as RegionFailoverResult;
      const promoteMs = Date.now() - t1;

      expect(result.outcome).toBe('completed');
      expect(result.clusters.filter((r) => r.outcome === 'promoted')).toHaveLength(CLUSTERS);
      // A run stops starting promotions at PER_RUN and lets the ones in flight finish before it continues as new.
      expect(result.runs).toBeGreaterThanOrEqual(Math.ceil(CLUSTERS / (PER_RUN + CONCURRENCY)));
      expect(result.runs).toBeLessThanOrEqual(Math.ceil(CLUSTERS / PER_RUN));
      // Tiers in order: every tier-0 promotion started before any tier-1 one.
      const started = (tier: number) => result.clusters.filter((r) => r.tier === tier).map((r) => Date.parse(r.startedAt!));
      expect(Math.max(...started(0))).toBeLessThanOrEqual(Math.min(...started(1)));
      expect(Math.max(...started(1))).toBeLessThanOrEqual(Math.min(...started(2)));
      // Exactly one promotion per cluster, none repeated across runs.
      expect([...instant.promotions.values()].every((n) => n === 1)).toBe(true);
      expect(instant.promotions.size).toBe(CLUSTERS);
      expect([...instant.clusters.values()].every((c) => !c.standby)).toBe(true);

      // History of every run of the parent, and of one child.
      const runs: Array<{ runId: string; events: number }> = [];
      for await (const w of h.client.workflow.list({ query: `WorkflowId = '${handle.workflowId}' AND TaskQueue = '${h.taskQueue}'` })) {
        runs.push({ runId: w.runId, events: (await h.client.workflow.getHandle(w.workflowId, w.runId).describe()).historyLength });
      }
      const child = await h.client.workflow.getHandle(`promote/us/${names[0]}`).describe();
      const journal = await handle.query(getJournalQuery);
      expect(journal.filter((e) => e.step === 'promote-cluster')).toHaveLength(CLUSTERS);
      expect(runs).toHaveLength(result.runs);
      const maxEvents = Math.max(...runs.map((r) => r.events));
      expect(maxEvents).toBeLessThan(10_000);
      process.stdout.write(`[region-failover scale] ${CLUSTERS} clusters (InstantSiteDriver): discover+assess ${assessedMs} ms, ` +
        `promotions ${promoteMs} ms after approval, ${result.runs} runs with ${runs.map((r) => r.events).join('/')} history events ` +
        `(${(runs.reduce((n, r) => n + r.events, 0) / CLUSTERS).toFixed(1)} parent events per cluster, assessment included), a child promote ${child.historyLength} events\n`);
    }
  }, 900_000);
});
