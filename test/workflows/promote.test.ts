// promote against real parts: Patroni clusters in two regions, a writer that never stops, humans who approve,
// reject or do not answer.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { startRunbook, RunbookAlreadyRunningError } from '../../scripts/lib/runbook-client';
import { approvalNonce, approveUpdate } from '../../workflows/contracts/approvals';
import { approveAs, pendingGate, signalDecision, updateRefusal } from '../helpers/approvals';
import { sandboxIdToken } from '../helpers/identity';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type PromoteInput, type PromoteResult } from '../../workflows/contracts/runbooks';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { driverOf, roleOf, sql } from '../helpers/clusters';
import { expectedDemotePath, expectedPromotePath, patroniNativeDemote } from '../helpers/patroni-version';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { startWriter } from '../helpers/writer';
import { saveHistory } from '../helpers/histories';
import { failureOf } from '../helpers/failures';
import { testLayout } from '../helpers/test-env';

const NOTIFY_FILE = join(testLayout().dir, 'notifications.jsonl');
process.env.DR_NOTIFY_FILE = NOTIFY_FILE;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}
const startPromote = (h: RunbookHarness, input: PromoteInput) =>
  startRunbook(h.client, { workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: input.cluster, input, taskQueue: h.taskQueue });

async function failureType(handle: WorkflowHandle): Promise<string | undefined> {
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return ((err as WorkflowFailedError).cause as { type?: string }).type;
}


describe('promote', () => {
  const pairs: StandbyPair[] = [];
  afterAll(async () => {
    for (const p of pairs) await deleteStandbyPair(p);
  });

  it('planned: asks first, then fences the source, loses no acknowledged write, promotes, rejoins the old primary and proves a first backup', async () => {
    const pair = await createStandbyPair('pl');
    pairs.push(pair);
    // A client that follows the primary, as an application behind the switchover would.
    const writer = await startWriter([pair.source, pair.standby]);
    await withRunbookWorkers(async (h) => {
      const handle = await startPromote(h, { cluster: pair.standby, mode: 'planned', approvalTimeoutSeconds: 600 });
      const gate = await pendingGate(handle);
      expect(gate).toMatchObject({ gate: 'promote', fence: 'PENDING', requires: { acknowledgeDataLoss: false, acknowledgeUnconfirmedFence: false } });
      expect(gate.plan).toMatch(/after this approval eu\/acid-pl stops taking writes/);
      // While a human reads the plan, the source still takes writes.
      await sql(pair.source, 'INSERT INTO public.writes (id) VALUES (-7)');
      expect(await roleOf(pair.source)).toBe('primary');
      const record = await approveAs(handle, 'alice', { ticket: 'CHG-1', comment: 'planned test' }, gate);
      expect(record).toMatchObject({ decision: 'approved', approver: 'alice', ticket: 'CHG-1', via: 'update', approvers: [{ subject: 'alice', authenticated: true }] });
      const result = (await handle.result()) as PromoteResult;
      await writer.stop();
      expect(result).toMatchObject({ alreadyPromoted: false, fence: 'CONFIRMED', measuredRpoBytes: 0 });
      expect(result.promotePath).toMatch(expectedPromotePath());
      // Patroni 4.1: the old primary was demoted by its own Patroni while running; 3.0.2: fenced.
      expect(result.demotePath).toMatch(expectedDemotePath());
      expect(result.timelineAfter).toBeGreaterThan(result.timelineBefore!);
      expect(result.rtoMs).toBeGreaterThanOrEqual(0);
      expect(result.writeDowntimeMs).toBeGreaterThan(0);

      // Every write acknowledged on either side, before, during and after the switch, is on the promoted cluster.
      expect(writer.acknowledged.length).toBeGreaterThan(10);
      const rows = await sql<{ id: string }>(pair.standby, 'SELECT id FROM public.writes');
      const present = new Set(rows.map((r) => Number(r.id)));
      expect(writer.acknowledged.filter((id) => !present.has(id))).toEqual([]);
      expect(present.has(-7)).toBe(true);
      process.stdout.write(`[promote planned] acknowledged ${writer.acknowledged.length}, lost 0, RTO ${result.rtoMs} ms, ` +
        `writes stopped ${result.writeDowntimeMs} ms (runbook), longest gap a client saw ${writer.longestGapMs()} ms, phases ${JSON.stringify(result.phaseDurationsMs)}\n`);

      // The old primary follows the new one; the first backup of the new timeline is in S3.
      expect(await roleOf(pair.source)).toBe('standby_leader');
      expect(await roleOf(pair.standby)).toBe('primary');
      const { driver, cluster } = driverOf(pair.standby);
      const facts = (await driver.describeCluster(cluster))!;
      const backups = await listCompleteBackups(facts.archive.s3, facts.archive.walPrefix);
      expect(backups.map((b) => b.name)).toContain(result.backup!.backupName);
      expect(result.backup!.timeline).toBe(result.timelineAfter);
      // WAL-G's wal-verify: the first backup and the WAL after it, in the promoted cluster's own prefix, reach now.
      expect(result.archiveCheck).toMatchObject({ status: 'OK', fromBackup: result.backup!.backupName, walPrefix: facts.archive.walPrefix, timeline: result.timelineAfter, gaps: [] });

      const steps = (await handle.query(getJournalQuery)).map((e) => e.step);
      expect(steps).toEqual(['validate-request', 'requester', 'estimate-loss', 'check-lineage', 'approval', 'fencing-epoch', 'check-streaming', 'fence-old-primary', 'catch-up', 'check-replay',
        'remove-standby-config', 'verify-writable', 'release-standby-slot', 'keep-standby-slot', 'rejoin-old-primary', 'first-backup', 'check-archive', 'report']);
      const journal = await handle.query(getJournalQuery);
      const fenced = journal.find((e) => e.step === 'fence-old-primary')!;
      const rejoined = journal.find((e) => e.step === 'rejoin-old-primary')!;
      expect(fenced.facts).toMatchObject({ fence: 'CONFIRMED', native: patroniNativeDemote(), demotePath: result.demotePath });
      if (patroniNativeDemote()) {
        // Demoted before the promotion: the rejoin finds it following already, and no pg_rewind ran.
        expect(rejoined).toMatchObject({ outcome: 'already', facts: { follow: 'stream', rewound: false } });
        await saveHistory(handle, 'promote.planned-native-demote');
      } else {
        // promote.planned.json is a run from before the approval moved ahead of the fence: it replays the old order.
        await saveHistory(handle, 'promote.planned-asks-first');
        await saveHistory(handle, 'promote.planned-archive-check');
      }

      // Promoting it again is success without change.
      const again = await startPromote(h, { cluster: pair.standby, mode: 'planned' });
      expect(await again.result()).toMatchObject({ alreadyPromoted: true, approval: null });
      await saveHistory(again, 'promote.already');
    });
  });

  it('unplanned: with the source region gone, estimates the loss from the archive, reports the fence UNCONFIRMED and needs both acknowledged', async () => {
    const pair = await createStandbyPair('un');
    pairs.push(pair);
    const writer = await startWriter(pair.source);
    await sleep(3000);
    // The source region dies: its cluster stops and no worker serves its site.
    const src = driverOf(pair.source);
    await src.driver.region.stopCluster(src.cluster);
    await writer.stop();
    await withRunbookWorkers(async (h) => {
      const handle = await startPromote(h, {
        cluster: pair.standby, mode: 'unplanned', approvalTimeoutSeconds: 600, limits: { regionTimeoutSeconds: 3 },
      });
      const gate = await pendingGate(handle);
      expect(gate.fence).toBe('UNCONFIRMED');
      expect(gate.estimate).toMatchObject({ sourceReachable: false, basis: 'archive' });
      expect(gate.requires.acknowledgeUnconfirmedFence).toBe(true);

      // Each refused decision carries bob's valid token for this gate: the gate's own checks refuse it.
      const bob = async () => sandboxIdToken('bob', approvalNonce(gate.challenge!, 'approve'));
      expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ idToken: await bob(), ticket: 'INC-9', acknowledgeDataLoss: true }] })))
        .toMatch(/NOT confirmed fenced/);
      expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ idToken: await bob(), ticket: '' }] })))
        .toMatch(/ticket is missing/);
      expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ idToken: ' ', approver: ' ', ticket: 'INC-9' }] })))
        .toMatch(/^idToken is missing: prove who decides with the ID token of `drctl login`/);
      expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ gate: 'failback', idToken: await bob(), ticket: 'INC-9' }] })))
        .toMatch(/gate "failback" is not open/);
      // Trusting an unconfirmed fence takes two people: bob, then alice on the same terms.
      const approval = await approveAs(handle, 'bob', { ticket: 'INC-9', acknowledgeDataLoss: true, acknowledgeUnconfirmedFence: true }, gate);
      expect(approval).toMatchObject({ approver: 'alice', approvers: [{ subject: 'bob' }, { subject: 'alice' }] });
      const carol = await sandboxIdToken('carol', approvalNonce(gate.challenge!, 'approve'));
      expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ idToken: carol, ticket: 'INC-9', acknowledgeDataLoss: true, acknowledgeUnconfirmedFence: true }] })))
        .toMatch(/already decided|no approval gate is open/);
      const result = (await handle.result()) as PromoteResult;
      expect(result.fence).toBe('UNCONFIRMED');
      expect(await roleOf(pair.standby)).toBe('primary');

      const rows = await sql<{ id: string }>(pair.standby, 'SELECT id FROM public.writes');
      const present = new Set(rows.map((r) => Number(r.id)));
      const lost = writer.acknowledged.filter((id) => !present.has(id));
      process.stdout.write(`[promote unplanned] acknowledged ${writer.acknowledged.length}, lost ${lost.length}; estimate ${JSON.stringify(result.estimate)}\n`);
      // The estimate is an upper bound from the archive: when it says nothing is missing, nothing may be missing.
      if (result.estimate!.bytes === 0) expect(lost).toEqual([]);
      await saveHistory(handle, 'promote.unplanned');
    }, { sites: ['us'] });
  });

  it('rejection, timeout and a second trigger leave both clusters as they were', async () => {
    const pair = await createStandbyPair('rj');
    pairs.push(pair);
    rmSync(NOTIFY_FILE, { force: true });
    await withRunbookWorkers(async (h) => {
      // Rejected by signal: a planned switchover asks before it fences, so the source never stopped taking writes.
      const rejected = await startPromote(h, { cluster: pair.standby, mode: 'planned', approvalTimeoutSeconds: 600 });
      await pendingGate(rejected);
      await expect(startPromote(h, { cluster: pair.standby, mode: 'planned' })).rejects.toThrow(RunbookAlreadyRunningError);
      await signalDecision(rejected, false, ['dana'], { ticket: 'CHG-2', comment: 'not today' });
      expect(await failureType(rejected)).toBe('ApprovalRejectedError');
      expect(await roleOf(pair.source)).toBe('primary');
      expect(await roleOf(pair.standby)).toBe('standby_leader');
      await sql(pair.source, 'INSERT INTO public.writes (id) VALUES (-1)');
      expect((await rejected.query(getJournalQuery)).map((e) => e.step)).not.toContain('fence-old-primary');
      await saveHistory(rejected, 'promote.rejected-asks-first');

      // Unplanned with the source still reachable: it is fenced before the gate, so the human sees a confirmed
      // fence. Nobody answers: escalation, the fence is lifted, nothing changed.
      const ignored = await startPromote(h, { cluster: pair.standby, mode: 'unplanned', approvalTimeoutSeconds: 3 });
      expect(await failureType(ignored)).toBe('ApprovalTimedOutError');
      expect(existsSync(NOTIFY_FILE)).toBe(true);
      const events = readFileSync(NOTIFY_FILE, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { workflowId: string; cluster: string });
      expect(events).toEqual([expect.objectContaining({ workflowId: ignored.workflowId, cluster: pair.standby })]);
      expect(await roleOf(pair.source)).toBe('primary');
      expect(await roleOf(pair.standby)).toBe('standby_leader');
      const journal = await ignored.query(getJournalQuery);
      expect(journal.map((e) => `${e.step}:${e.outcome}`)).toEqual(expect.arrayContaining(['fence-old-primary:done', 'approval:failed', 'lift-fence:done']));
      await saveHistory(ignored, 'promote.unplanned-timed-out');

      // Planned, and the standby does not catch up (its replay paused; its Patroni paused too, or it would resume
      // replay): the old primary takes writes again, by the undo of its Patroni's demotion on 4.1 (standby_cluster
      // removed), by lifting the fence on 3.0.2.
      const standbyPatroni = (() => { const { driver, cluster } = driverOf(pair.standby); return driver.region.patroniUrl(cluster); })();
      const setPause = async (pause: boolean | null) => {
        const r = await fetch(`${standbyPatroni}/config`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pause }) });
        expect(r.status).toBe(200);
      };
      await setPause(true);
      try {
        await waitUntil('the standby\'s Patroni paused', async () => ((await (await fetch(`${standbyPatroni}/patroni`)).json()) as { pause?: boolean }).pause === true);
        await sql(pair.standby, 'SELECT pg_wal_replay_pause()');
        const stuck = await startPromote(h, { cluster: pair.standby, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false, limits: { catchUpTimeoutSeconds: 5 } });
        await approveAs(stuck, 'bob', { ticket: 'CHG-3', comment: 'catch-up test' });
        const failed = (await failureOf(stuck)).type;
        const steps = (await stuck.query(getJournalQuery));
        process.stdout.write(`[promote catch-up timeout] ${failed}: ${steps.map((e) => `${e.step}:${e.outcome} ${e.message}`).join('\n')}\n`);
        expect(failed).toBe('WaitTimedOutError');
        expect(steps.map((e) => `${e.step}:${e.outcome}`)).toEqual(expect.arrayContaining(['fence-old-primary:done', 'catch-up:failed', 'lift-fence:done']));
        expect(steps.find((e) => e.step === 'lift-fence')!.message).toMatch(patroniNativeDemote() ? /Undid the demotion/ : /Lifted the fence/);
      } finally {
        await sql(pair.standby, 'SELECT pg_wal_replay_resume()').catch((e: Error) => process.stdout.write(`[promote catch-up timeout] resume: ${e.message}\n`));
        await setPause(null);
      }
      expect(await roleOf(pair.source)).toBe('primary');
      await sql(pair.source, 'INSERT INTO public.writes (id) VALUES (-3)');
      expect(await roleOf(pair.standby)).toBe('standby_leader');
    });
  });
});
