// Chaos: split brain. The source region is lost (its cluster down, no worker), the standby is promoted unplanned
// with the fence UNCONFIRMED, then the old region comes back whole: Patroni and Postgres start again and its
// worker returns at the same moment. A client hammers the old primary with INSERTs from the instant the region
// is back; fence-guard (left by promote) must fence it, say so in its journal, and from then on every INSERT fails.
import { startRunbook } from '../../scripts/lib/runbook-client';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type PromoteResult } from '../../workflows/contracts/runbooks';
import { approveWhenAsked } from '../helpers/approvals';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { driverOf, roleOf, sql } from '../helpers/clusters';
import { withRunbookWorkers } from '../helpers/runbook-workers';
import { recordFault } from './results';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('chaos: split brain', () => {
  let pair: StandbyPair | null = null;
  afterAll(async () => {
    if (pair) await deleteStandbyPair(pair);
  });

  it('the old primary comes back after an unplanned promotion: fence-guard fences it and it accepts no INSERT', async () => {
    pair = await createStandbyPair('sb', { members: 1 });
    const p = pair;
    const src = driverOf(p.source);
    await recordFault('split brain: the old primary\'s region returns after an unplanned promotion', `region eu (${p.source}: Patroni, Postgres and its worker) down during the promotion, then all back at once`, async (observe) => {
      await src.driver.region.stopCluster(src.cluster);
      await withRunbookWorkers(async (h) => {
        const promote = await startRunbook(h.client, {
          workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: p.standby, taskQueue: h.taskQueue,
          input: { cluster: p.standby, mode: 'unplanned', takeBackup: false, limits: { regionTimeoutSeconds: 3 } },
        });
        await approveWhenAsked(promote, 'alice');
        const promoted = (await promote.result()) as PromoteResult;
        expect(promoted.fence).toBe('UNCONFIRMED');
        expect(promoted.fenceGuard).toBe(`fence-guard/${p.source}`);
        expect(await roleOf(p.standby)).toBe('primary');

        // The region comes back whole; from that instant a client tries to write to the old primary.
        const accepted: number[] = [];
        let attempts = 0;
        let probing = true;
        const backAt = Date.now();
        let lastAcceptedMs: number | null = null;
        const prober = (async () => {
          for (let id = -500_000; probing; id--) {
            attempts++;
            try {
              await sql(p.source, 'INSERT INTO public.writes (id) VALUES ($1)', [id]);
              accepted.push(id);
              lastAcceptedMs = Date.now() - backAt;
            } catch {
              // Refused or not up (yet): exactly what a fenced old primary must answer.
            }
            await sleep(100);
          }
        })();
        await Promise.all([src.driver.region.startCluster(src.cluster).catch(() => undefined), h.addSiteWorker('eu')]);
        const guard = h.client.workflow.getHandle(promoted.fenceGuard!);
        const fenced = (await guard.result()) as { fenced: boolean; detail: string };
        const fencedAfterMs = Date.now() - backAt;
        // Patroni's own loop (loop_wait 10 s) could still start Postgres after the guard: keep probing past a cycle.
        await sleep(12_000);
        probing = false;
        await prober;

        expect(fenced.fenced).toBe(true);
        const journal = await guard.query(getJournalQuery);
        // Started by the promotion (the server names the parent): it has that run's authority, then it fences.
        expect(journal.map((e) => `${e.step}:${e.outcome}`)).toEqual(['authority:done', 'fence-old-primary:done']);
        expect(journal[0].message).toBe(`Started by the run promote/${p.standby}, which had the authority.`);
        expect(journal[1].message).toMatch(new RegExp(`${p.source} is back`));
        // The test's own INSERT, after the guard is done: refused.
        await expect(sql(p.source, 'INSERT INTO public.writes (id) VALUES (-1)')).rejects.toThrow();
        // Writes the old primary took after the guard finished would be a split brain the guard let through.
        const afterFence = lastAcceptedMs !== null && lastAcceptedMs > fencedAfterMs;
        observe(`fence-guard fenced ${p.source} ${fencedAfterMs} ms after its region came back ("${fenced.detail.slice(0, 120)}"); ` +
          `${attempts} INSERT attempts on the old primary, ${accepted.length} accepted${accepted.length ? ` (last ${lastAcceptedMs} ms after the return, ${afterFence ? 'AFTER' : 'before'} the fence)` : ''}; a final INSERT was refused`);
        expect(afterFence).toBe(false);
        expect(accepted).toEqual([]);
      }, { sites: ['us'] });
    });
  });
});
