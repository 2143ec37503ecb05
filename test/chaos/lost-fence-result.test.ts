// Chaos: the worker dies after fencing the old primary but before reporting it, then nobody approves. The retried
// fence finds the source already stopped ("changed": false); the runbook must still know the fence is its own and
// lift it when it aborts, or the source it promised to leave untouched stays down with nobody told.
import { WorkflowFailedError } from '@temporalio/client';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES } from '../../workflows/contracts/runbooks';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { roleOf, sql } from '../helpers/clusters';
import { withChaosWorkers } from './chaos-harness';
import { recordFault } from './results';

describe('chaos: a lost fence result', () => {
  let pair: StandbyPair | null = null;
  afterAll(async () => {
    if (pair) await deleteStandbyPair(pair);
  });

  it('an aborted unplanned promotion lifts the fence even when the fence result was lost and retried', async () => {
    pair = await createStandbyPair('lf', { members: 1 });
    const p = pair;
    await recordFault('worker killed after fencing, before reporting it; then the approval times out', 'chaos worker: siteFenceCluster\'s first result lost, every boundary killed', async (observe) => {
      await withChaosWorkers({ kill: 'every', lose: ['siteFenceCluster'], label: 'lost-fence' }, async (w) => {
        const handle = await startRunbook(w.client, {
          workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: p.standby, taskQueue: w.taskQueue,
          input: { cluster: p.standby, mode: 'unplanned', approvalTimeoutSeconds: 5, takeBackup: false, limits: { regionTimeoutSeconds: 30 } },
        });
        const err = await handle.result().then(() => null, (e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        expect(((err as WorkflowFailedError).cause as { type?: string }).type).toBe('ApprovalTimedOutError');
        const entries = w.entries();
        expect(entries.filter((e) => e.activity === 'siteFenceCluster').map((e) => e.outcome)).toEqual(['lost-then-killed', 'completed-then-killed']);
        const steps = (await handle.query(getJournalQuery)).map((e) => `${e.step}:${e.outcome}`);
        expect(steps).toEqual(expect.arrayContaining(['fence-old-primary:done', 'approval:failed', 'lift-fence:done']));
        // Independently: the old primary runs and takes writes again; nothing was promoted.
        expect(await roleOf(p.source)).toBe('primary');
        await sql(p.source, 'INSERT INTO public.writes (id) VALUES (-3)');
        expect(await roleOf(p.standby)).toBe('standby_leader');
        observe(`the retried fence found ${p.source} already stopped; on the approval timeout the run escalated, lifted the fence (journal ${steps.filter((s) => /fence|approval/.test(s)).join(', ')}) and ${p.source} took an INSERT again`);
      });
    });
  });
});
