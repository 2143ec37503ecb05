// A planned switchover whose approval was given for "planned, zero loss" must not promote on that approval when
// the fence then fails: the old primary's site stops answering between the approval and the fence (its worker
// gone, its Postgres still a writable primary), or when the fence confirms a stopped old primary but cannot name its
// last WAL (it crashed right before the fence). And a catch-up timeout must leave exactly one writable cluster.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { alivePid } from '../../activities/sites/local/processes';
import type { SiteDriver } from '../../activities/sites/site-driver';
import { approvalNonce, approveUpdate, getPendingApprovalQuery, type PendingApproval } from '../../workflows/contracts/approvals';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type PromoteInput, type PromoteResult } from '../../workflows/contracts/runbooks';
import { approveAs, pendingGate, rejectAsUser, updateRefusal } from '../helpers/approvals';
import { sandboxIdToken } from '../helpers/identity';
import { driverOf, roleOf, sql } from '../helpers/clusters';
import { failureOf } from '../helpers/failures';
import { saveHistory } from '../helpers/histories';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const startPromote = (h: RunbookHarness, input: PromoteInput) =>
  startRunbook(h.client, { workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: input.cluster, input, taskQueue: h.taskQueue });

/** The next gate that shows the fence as something other than PENDING, or null once the run has closed. */
async function gateAfterFence(handle: WorkflowHandle): Promise<PendingApproval | null> {
  for (;;) {
    const gate = await handle.query(getPendingApprovalQuery).catch(() => null);
    if (gate && gate.fence !== 'PENDING') return gate;
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') return null;
    await sleep(250);
  }
}

/** Whether a real INSERT is accepted by the cluster's leader: the only proof that it is a writer. */
async function takesWrites(ref: string, id: number): Promise<boolean> {
  return sql(ref, 'INSERT INTO public.writes (id) VALUES ($1)', [id]).then(() => true, () => false);
}

/** Kills a single-member cluster's Patroni and postmaster with SIGKILL: a crash, no shutdown checkpoint written. */
function crash(ref: string): void {
  const { driver, cluster } = driverOf(ref);
  const [member] = driver.region.getCluster(cluster)!.members;
  const patroniPid = alivePid(driver.region.memberPaths(cluster, member.name).pidFile);
  const postmasterPid = Number(readFileSync(join(member.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  if (!patroniPid || !postmasterPid) throw new Error(`${ref}: no running Patroni (${patroniPid}) or postmaster (${postmasterPid}) to crash`);
  process.kill(patroniPid, 'SIGKILL');
  process.kill(postmasterPid, 'SIGKILL');
}

describe('promote: planned switchover with an unconfirmed fence', () => {
  const pairs: StandbyPair[] = [];
  afterAll(async () => {
    for (const p of pairs) await deleteStandbyPair(p);
  });

  it('the old primary\'s site stops answering after the approval: nothing is promoted until a second decision acknowledges the unconfirmed fence', async () => {
    const pair = await createStandbyPair('uf', { members: 1 });
    pairs.push(pair);
    await withRunbookWorkers(async (h) => {
      const input: PromoteInput = { cluster: pair.standby, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false, limits: { regionTimeoutSeconds: 3 } };

      // First run: the human is shown the real facts and says no. Nothing is promoted; the old primary runs on.
      const first = await startPromote(h, input);
      expect((await pendingGate(first)).fence).toBe('PENDING');
      await h.stopSiteWorker('eu');
      await approveAs(first, 'alice', { ticket: 'CHG-11' });
      const reopened = await gateAfterFence(first);
      expect(await roleOf(pair.standby)).toBe('standby_leader');
      expect(reopened).toMatchObject({ gate: 'promote', fence: 'UNCONFIRMED', requires: { acknowledgeUnconfirmedFence: true, acknowledgeDataLoss: true } });
      expect(reopened!.plan).toMatch(/NOT confirmed fenced/);
      const aliceToken = await sandboxIdToken('alice', approvalNonce(reopened!.challenge!, 'approve'));
      expect(await updateRefusal(first.executeUpdate(approveUpdate, { args: [{ idToken: aliceToken, ticket: 'CHG-11', acknowledgeDataLoss: true }] })))
        .toMatch(/NOT confirmed fenced/);
      await rejectAsUser(first, 'alice', { ticket: 'CHG-11', comment: 'not with a live old primary' }, reopened!);
      const rejected = await failureOf(first);
      expect(rejected.type).toBe('ApprovalRejectedError');
      expect(rejected.message).toMatch(/nothing was promoted/);
      const steps = (await first.query(getJournalQuery)).map((e) => `${e.step}:${e.outcome}`);
      expect(steps).toEqual(expect.arrayContaining(['fence-old-primary:failed', 're-measure-loss:done', 'approval:refused']));
      expect(steps).not.toContain('remove-standby-config:done');
      expect(await roleOf(pair.standby)).toBe('standby_leader');
      expect(await takesWrites(pair.standby, -11)).toBe(false);
      expect(await takesWrites(pair.source, -12)).toBe(true);
      await saveHistory(first, 'promote.planned-unconfirmed-fence-rejected');

      // Second run: same loss of the site after the first approval; this time the on-call acknowledges both.
      await h.addSiteWorker('eu');
      const second = await startPromote(h, input);
      expect((await pendingGate(second)).fence).toBe('PENDING');
      await h.stopSiteWorker('eu');
      await approveAs(second, 'bob', { ticket: 'CHG-12' });
      const again = await gateAfterFence(second);
      expect(await roleOf(pair.standby)).toBe('standby_leader');
      expect(again).toMatchObject({ fence: 'UNCONFIRMED', requires: { acknowledgeUnconfirmedFence: true, acknowledgeDataLoss: true } });
      // Trusting the unconfirmed fence takes two people: alice, then bob on the same terms.
      await approveAs(second, 'alice', { ticket: 'CHG-12', acknowledgeUnconfirmedFence: true, acknowledgeDataLoss: true }, again!);
      const result = (await second.result()) as PromoteResult;
      expect(result).toMatchObject({ fence: 'UNCONFIRMED', fenceGuard: `fence-guard/${pair.source}`, measuredRpoBytes: null });
      expect(result.approval).toMatchObject({ approver: 'bob', acknowledgedUnconfirmedFence: true, approvers: [{ subject: 'alice' }, { subject: 'bob' }] });
      expect(await roleOf(pair.standby)).toBe('primary');
      const journal = (await second.query(getJournalQuery)).map((e) => e.step);
      // The guard is waiting before anything is promoted, so the old primary is fenced the moment its site answers.
      expect(journal.indexOf('guard-old-primary')).toBeGreaterThan(-1);
      expect(journal.indexOf('guard-old-primary')).toBeLessThan(journal.indexOf('remove-standby-config'));
      expect((await h.client.workflow.getHandle(result.fenceGuard!).describe()).status.name).toBe('RUNNING');
      await saveHistory(second, 'promote.planned-unconfirmed-fence-acknowledged');

      // eu answers again: the guard fences the old primary, and only the promoted cluster takes writes.
      await h.addSiteWorker('eu');
      const guarded = (await h.client.workflow.getHandle(result.fenceGuard!).result()) as { fenced: boolean };
      expect(guarded.fenced).toBe(true);
      await saveHistory(h.client.workflow.getHandle(result.fenceGuard!), 'fence-guard.fenced-when-back');
      expect(await takesWrites(pair.source, -13)).toBe(false);
      expect(await takesWrites(pair.standby, -14)).toBe(true);
    });
  });

  it('the old primary crashes right before the fence: a confirmed fence with no final LSN re-asks with the measured loss', async () => {
    const pair = await createStandbyPair('cf', { members: 1 });
    pairs.push(pair);
    // The crash lands between the runbook's last look at the source (its standby still streaming) and the step that
    // stops its writes: the fence, or on Patroni 4 the native demotion, which then finds no Patroni and fences.
    let crashed = false;
    const crashOnce = (cluster: string) => {
      if (cluster === driverOf(pair.source).cluster && !crashed) {
        crashed = true;
        crash(pair.source);
      }
    };
    const crashBeforeFence = (driver: SiteDriver): SiteDriver => (driver.site !== 'eu' ? driver : Object.assign(Object.create(driver) as SiteDriver, {
      fenceCluster: async (cluster: string) => {
        crashOnce(cluster);
        return driver.fenceCluster(cluster);
      },
      ...(driver.demoteRunningPrimary ? {
        demoteRunningPrimary: async (cluster: string, req: Parameters<NonNullable<SiteDriver['demoteRunningPrimary']>>[1]) => {
          crashOnce(cluster);
          return driver.demoteRunningPrimary!(cluster, req);
        },
      } : {}),
    }));
    await withRunbookWorkers(async (h) => {
      const handle = await startPromote(h, { cluster: pair.standby, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false });
      expect((await pendingGate(handle)).fence).toBe('PENDING');
      await approveAs(handle, 'bob', { ticket: 'CHG-15' });
      // Stopped for sure (every port refuses), but crashed: no shutdown checkpoint, so "zero loss" is not proven.
      const reopened = await gateAfterFence(handle);
      expect(reopened).toMatchObject({ gate: 'promote', fence: 'CONFIRMED', requires: { acknowledgeDataLoss: true, acknowledgeUnconfirmedFence: false } });
      expect(reopened!.plan).toMatch(/reported no final LSN/);
      expect(reopened!.plan).not.toMatch(/until it is fenced/);
      expect(await roleOf(pair.standby)).toBe('standby_leader');
      const bobToken = await sandboxIdToken('bob', approvalNonce(reopened!.challenge!, 'approve'));
      expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ idToken: bobToken, ticket: 'CHG-15' }] })))
        .toMatch(/acknowledgeDataLoss/);
      expect(await roleOf(pair.standby)).toBe('standby_leader');
      // Accepting the loss takes two people: alice, then bob on the same terms.
      await approveAs(handle, 'alice', { ticket: 'CHG-15', acknowledgeDataLoss: true }, reopened!);
      const result = (await handle.result()) as PromoteResult;
      // "Writes stopped for N ms" would be a claim about a clean switch: the writer stopped at a crash nobody timed.
      expect(result).toMatchObject({ fence: 'CONFIRMED', writeDowntimeMs: null });
      expect(result.approval).toMatchObject({ approver: 'bob', acknowledgedDataLoss: true, approvers: [{ subject: 'alice' }, { subject: 'bob' }] });
      const steps = (await handle.query(getJournalQuery)).map((e) => `${e.step}:${e.outcome}`);
      expect(steps).toEqual(expect.arrayContaining(['fence-old-primary:done', 're-ask:waiting', 're-measure-loss:done', 'remove-standby-config:done']));
      expect(await takesWrites(pair.standby, -15)).toBe(true);
      expect(await takesWrites(pair.source, -16)).toBe(false);
    }, { wrapDriver: crashBeforeFence });
  });

  it('a catch-up timeout lifts the fence: exactly one writable cluster, the old primary', async () => {
    const pair = await createStandbyPair('ct', { members: 1 });
    pairs.push(pair);
    await withRunbookWorkers(async (h) => {
      const handle = await startPromote(h, {
        cluster: pair.standby, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false, limits: { catchUpTimeoutSeconds: 5 },
      });
      expect((await pendingGate(handle)).fence).toBe('PENDING');
      // The standby receives the old primary's last WAL but does not replay it: it cannot catch up. Its Patroni is
      // paused too, or it resumes replay during Patroni 4's slower native demotion and the standby catches up.
      const standbyPatroni = (() => { const { driver, cluster } = driverOf(pair.standby); return driver.region.patroniUrl(cluster); })();
      const setPause = async (pause: boolean | null) => {
        const r = await fetch(`${standbyPatroni}/config`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pause }) });
        expect(r.status).toBe(200);
      };
      await setPause(true);
      for (let i = 0; ((await (await fetch(`${standbyPatroni}/patroni`)).json()) as { pause?: boolean }).pause !== true; i++) {
        if (i > 300) throw new Error('the standby\'s Patroni did not report pause within 60 s');
        await new Promise((r) => setTimeout(r, 200));
      }
      await sql(pair.standby, 'SELECT pg_wal_replay_pause()');
      try {
        await approveAs(handle, 'carol', { ticket: 'CHG-13' });
        const failure = await failureOf(handle);
        expect(failure.type).toBe('WaitTimedOutError');
        const steps = (await handle.query(getJournalQuery)).map((e) => `${e.step}:${e.outcome}`);
        expect(steps).toEqual(expect.arrayContaining(['fence-old-primary:done', 'catch-up:failed', 'lift-fence:done']));
        expect(steps).not.toContain('remove-standby-config:done');
        expect(await roleOf(pair.source)).toBe('primary');
        expect(await roleOf(pair.standby)).toBe('standby_leader');
        expect(await takesWrites(pair.source, -21)).toBe(true);
        expect(await takesWrites(pair.standby, -22)).toBe(false);
      } finally {
        await sql(pair.standby, 'SELECT pg_wal_replay_resume()').catch(() => undefined);
        await setPause(null);
      }
    });
  });
});
