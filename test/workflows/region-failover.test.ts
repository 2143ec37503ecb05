// region-failover against real parts: five clusters in eu, four standbys in us (one streaming only, so its loss is
// unknown, one built from another cluster's backup), eu's worker gone. One approval with the table, a promotion
// refused by its lineage check that spends the failure budget, a promotion a human had already started (joined,
// not duplicated), continue-as-new between tiers.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { approvalNonce, approveUpdate } from '../../workflows/contracts/approvals';
import { getJournalQuery } from '../../workflows/contracts/journal';
import {
  getRegionProgressQuery, getRegionTableQuery, regionFailoverWorkflowId, resolveFailureBudgetUpdate,
  type RegionFailoverInput, type RegionFailoverProgress, type RegionFailoverResult,
} from '../../workflows/contracts/region-failover';
import { RUNBOOK_NAMES, type PromoteInput } from '../../workflows/contracts/runbooks';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { approveAs, pendingGate, updateRefusal } from '../helpers/approvals';
import { acknowledgementsOf } from '../../scripts/lib/identity/gate-decision';
import { sandboxIdToken } from '../helpers/identity';
import { deleteCluster, driverOf, roleOf, sql } from '../helpers/clusters';
import { historyJson, HISTORIES_DIR, saveHistory } from '../helpers/histories';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createSource } from '../helpers/standby-pair';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const TIERS: Record<string, string> = { 'acid-rfa': '0', 'acid-rfb': '0', 'acid-rfc': '1', 'acid-rfd': '1' };
const STREAMING_ONLY = 'acid-rfc';
const FAILING = 'acid-rfb';
const FOREIGN_DATA_FROM = 'acid-rfa';
const NO_STANDBY = 'acid-rfe';

const systemId = async (ref: string) => (await sql<{ id: string }>(ref, 'SELECT system_identifier::text AS id FROM pg_control_system()'))[0].id;

/**
 * A one-member source in eu and its standby in us, labelled with its tier. FOREIGN_DATA's standby is what a wrong
 * backup name at provisioning makes: recorded as a standby of its own source, but restored from (and replaying)
 * acid-rfa's archive, so its data is another database system.
 */
async function createProtectedCluster(name: string): Promise<void> {
  await createSource(`eu/${name}`, { members: 1 });
  const dataOf = name === FAILING ? FOREIGN_DATA_FROM : name;
  const data = driverOf(`eu/${dataOf}`);
  const dst = driverOf(`us/${name}`);
  for (const user of await data.driver.listSecretUsers(dataOf)) await dst.driver.writeSecret(name, user, (await data.driver.readSecret(dataOf, user))!);
  const facts = (await data.driver.describeCluster(dataOf))!;
  const backups = await listCompleteBackups(data.driver.cfg.s3, facts.archive.walPrefix);
  await dst.driver.createStandbyCluster({
    cluster: name, sourceRef: `eu/${name}`, like: { pgVersion: 15, instances: 1 }, labels: { 'dr-tier': TIERS[name], team: 'acid' },
    sourceLineage: { systemIdentifier: await systemId(`eu/${name}`), timeline: 1 },
    ...(name === FAILING ? {} : { fromHost: facts.streamingEndpoint }),
    ...(name === STREAMING_ONLY ? {} : { fromArchive: { archive: facts.archive, backupName: backups[backups.length - 1].name } }),
  });
}

async function waitForProgress(handle: WorkflowHandleWithFirstExecutionRunId, what: string, ok: (p: RegionFailoverProgress) => boolean): Promise<RegionFailoverProgress> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    const p = await handle.query(getRegionProgressQuery).catch(() => null);
    if (p && ok(p)) return p;
    if (Date.now() > deadline) throw new Error(`region-failover never reached: ${what} (last progress ${JSON.stringify(p)})`);
    await sleep(300);
  }
}

describe('region-failover', () => {
  const names = [...Object.keys(TIERS), NO_STANDBY];
  // eu is unreachable in this test, so NO_STANDBY is known only from the selector: it needs no cluster of its own.
  beforeAll(async () => {
    for (const name of Object.keys(TIERS)) await createProtectedCluster(name);
  }, 900_000);
  afterAll(async () => {
    for (const name of names) {
      await deleteCluster(`us/${name}`).catch(() => undefined);
      await deleteCluster(`eu/${name}`).catch(() => undefined);
    }
  }, 300_000);

  it('evacuates eu to us: one approval with the loss table, tiers in order, a failed promotion pauses on the budget, a running promotion is joined, continue-as-new', async () => {
    await withRunbookWorkers(async (h: RunbookHarness) => {
      // A human had already started promoting acid-rfd when the region was declared lost.
      const manual = await startRunbook(h.client, {
        workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: 'us/acid-rfd', taskQueue: h.taskQueue,
        input: { cluster: 'us/acid-rfd', mode: 'unplanned', approvalTimeoutSeconds: 600, limits: { regionTimeoutSeconds: 2 } } satisfies PromoteInput,
      });
      await pendingGate(manual);

      const input: RegionFailoverInput = {
        lostSite: 'eu', survivingSite: 'us', selector: { clusters: names },
        concurrency: 2, failureBudget: { maxFailures: 1, onExceeded: 'pause' }, approvalTimeoutSeconds: 600,
        limits: { regionTimeoutSeconds: 2, promotionsPerRun: 2 },
      };
      const handle = await h.client.workflow.start('regionFailover', {
        workflowId: regionFailoverWorkflowId('eu'), taskQueue: h.taskQueue, args: [input],
      });
      const gate = await pendingGate(handle);
      expect(gate).toMatchObject({ gate: 'region-failover', fence: 'UNCONFIRMED', requires: { acknowledgeUnconfirmedFence: true } });
      const table = new Map(gate.clusters!.map((r) => [r.cluster, r]));
      expect([...table.keys()].sort()).toEqual(names.map((n) => `eu/${n}`).sort());
      expect(table.get(`eu/${NO_STANDBY}`)).toMatchObject({ standby: null, outcome: 'no-standby' });
      // Streaming only: with eu gone nothing says how far it got, so the loss is unknown and over any policy.
      expect(table.get(`eu/${STREAMING_ONLY}`)).toMatchObject({ outcome: 'excluded-over-policy', estimate: { basis: 'none', bytes: null } });
      for (const n of ['acid-rfa', 'acid-rfb', 'acid-rfd']) {
        expect(table.get(`eu/${n}`)).toMatchObject({ standby: `us/${n}`, outcome: 'pending', tier: Number(TIERS[n]), estimate: { basis: 'archive', withinPolicy: true } });
      }
      expect(gate.plan).toMatch(/Promote 3 standbys at us/);

      // Including an over-policy cluster needs the loss acknowledged; naming one that is not over policy is refused.
      const ack = { ticket: 'INC-900', acknowledgeUnconfirmedFence: true };
      const alice = async () => sandboxIdToken('alice', approvalNonce(gate.challenge!, 'approve'));
      expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ ...ack, idToken: await alice(), include: [STREAMING_ONLY] }] }))).toMatch(/acknowledgeDataLoss/);
      expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ ...ack, idToken: await alice(), include: ['acid-rfa'], acknowledgeDataLoss: true }] }))).toMatch(/not over the loss policy/);
      // Accepting loss and an unconfirmed fence: alice, then bob on the same terms.
      const approval = await approveAs(handle, 'alice', { ...ack, include: [STREAMING_ONLY], acknowledgeDataLoss: true }, gate);
      expect(approval).toMatchObject({ decision: 'approved', included: [STREAMING_ONLY], approver: 'bob', approvers: [{ subject: 'alice' }, { subject: 'bob' }] });

      // Tier 0: acid-rfb's promotion refuses its foreign data, the budget (1) is spent: the evacuation pauses.
      const paused = await waitForProgress(handle, 'paused on the failure budget', (p) => p.phase === 'paused');
      expect(paused).toMatchObject({ failed: 1, tier: 0, run: 1 });
      const tier1 = (await handle.query(getRegionTableQuery)).filter((r) => r.tier === 1);
      expect(tier1.map((r) => r.outcome)).toEqual(['pending', 'pending']);
      expect(await updateRefusal(handle.executeUpdate(resolveFailureBudgetUpdate, { args: [{ decision: 'continue', approver: '', ticket: 'INC-900' }] }))).toMatch(/approver/);
      await handle.executeUpdate(resolveFailureBudgetUpdate, { args: [{ decision: 'continue', approver: 'ic-alice', ticket: 'INC-900', comment: 'rfb by hand' }] });

      // The joined run's gate takes no typed name: the evacuation's decision, handed to it as one (temporalJoinPromotion),
      // is refused there and the run waits for its own approvers, who decide with their tokens.
      const rfdHandle = h.client.workflow.getHandle('promote/us/acid-rfd');
      const rfdDecided = (async () => {
        // A deadline, so a decision that never reaches the gate fails here instead of waiting for jest's timeout.
        const deadline = Date.now() + 180_000;
        for (;;) {
          const j = await rfdHandle.query(getJournalQuery);
          if (j.some((e) => e.step === 'approval-refused' && /a decision needs an ID token .*a typed name \("[\w-]+"\) proves nothing/.test(e.message))) break;
          if (Date.now() > deadline) throw new Error(`promote/us/acid-rfd never journaled the refusal of the evacuation's typed decision: ${JSON.stringify(j.map((e) => `${e.step}:${e.outcome}`))}`);
          await sleep(500);
        }
        const rfdGate = await pendingGate(rfdHandle);
        return approveAs(rfdHandle, 'alice', { ticket: 'INC-901', ...acknowledgementsOf(rfdGate) }, rfdGate);
      })();
      const [result] = (await Promise.all([handle.result(), rfdDecided])) as [RegionFailoverResult, unknown];
      const rows = new Map(result.clusters.map((r) => [r.cluster, r]));
      process.stdout.write(`[region-failover] ${result.outcome} in ${result.totalMs} ms over ${result.runs} runs:\n` +
        result.clusters.map((r) => `  ${r.cluster} tier ${r.tier} ${r.outcome} rto ${r.rtoMs} loss ${r.lossBytes} backup ${r.backup} ${r.reason ?? ''}`).join('\n') + '\n');
      for (const r of result.clusters.filter((c) => c.outcome === 'failed' && c.workflowId)) {
        const j = await h.client.workflow.getHandle(r.workflowId!).query(getJournalQuery).catch(() => []);
        process.stdout.write(`[region-failover] journal of ${r.workflowId}:\n${j.map((e) => `  ${e.step}:${e.outcome} ${e.message.slice(0, 300)}`).join('\n')}\n`);
      }
      expect(result).toMatchObject({ outcome: 'completed-with-failures', runs: 2 });
      expect(result.budgetDecisions).toMatchObject([{ decision: 'continue', approver: 'ic-alice', failuresSoFar: 1, tier: 0 }]);
      // Its lineage check had eu's recorded identity and eu/acid-rfa's archive (which its data came from) as witnesses.
      expect(rows.get(`eu/${FAILING}`)).toMatchObject({ outcome: 'failed', reason: expect.stringMatching(/lineage mismatch: us\/acid-rfb is database system \d+, but/) });
      expect(rows.get(`eu/${NO_STANDBY}`)!.outcome).toBe('no-standby');
      for (const n of ['acid-rfa', STREAMING_ONLY, 'acid-rfd']) {
        expect(rows.get(`eu/${n}`)).toMatchObject({ outcome: 'promoted', workflowId: `promote/us/${n}`, fence: 'UNCONFIRMED' });
        expect(rows.get(`eu/${n}`)!.backup).toMatch(/^base_/);
        expect(await roleOf(`us/${n}`)).toBe('primary');
      }
      expect(await roleOf(`us/${FAILING}`)).toBe('standby_leader');
      expect(await systemId(`us/${FAILING}`)).toBe(await systemId(`eu/${FOREIGN_DATA_FROM}`));

      // acid-rfd: the human's run was joined (same run), not started again; its own approvers decided it.
      expect(rows.get('eu/acid-rfd')!.joined).toBe(true);
      const rfd = h.client.workflow.getHandle('promote/us/acid-rfd');
      expect((await rfd.describe()).runId).toBe(manual.firstExecutionRunId);
      const rfdApproval = (await rfd.query(getJournalQuery)).find((e) => e.step === 'approval' && e.outcome === 'done')!;
      expect(rfdApproval.message).toMatch(/^Approved by alice .* and bob .* \(rule "[^"]+"\) \(ticket INC-901, via update\)/);
      // The streaming-only cluster was promoted only because the approver included it, acknowledging the loss.
      const rfcApproval = (await h.client.workflow.getHandle(`promote/us/${STREAMING_ONLY}`).query(getJournalQuery)).find((e) => e.step === 'approval')!;
      expect(rfcApproval.facts).toMatchObject({ via: 'delegated', acknowledgedDataLoss: true, delegatedBy: 'region-failover/eu' });

      const journal = await handle.query(getJournalQuery);
      const steps = journal.map((e) => e.step);
      expect(steps.slice(0, 7)).toEqual(['validate-request', 'requester', 'probe-lost-site', 'discover-standbys', 'assess-loss', 'approval-signature', 'approval']);
      expect(steps).toContain('continue-as-new');
      expect(steps.filter((s) => s === 'promote-cluster')).toHaveLength(4);
      expect(steps[steps.length - 1]).toBe('report');

      // The old primaries' fence guards wait for eu to answer again; this test's eu never comes back.
      for (const n of ['acid-rfa', STREAMING_ONLY, 'acid-rfd']) await h.client.workflow.getHandle(`fence-guard/eu/${n}`).terminate('test over').catch(() => undefined);
      const desc = await handle.describe();
      process.stdout.write(`[region-failover] history: run 1 ${(await h.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).describe()).historyLength} events, final run ${desc.historyLength} events\n`);
      // The evacuation handing its approval down through its delegatedApproval query (patch no-public-delegation),
      // and a promotion taking it from its server-recorded parent: replayed by test/audit/replay.test.ts.
      const handsDown = join(HISTORIES_DIR, 'region-failover.hands-down.json');
      if (!existsSync(handsDown) || process.env.DR_SAVE_HISTORIES === '1') writeFileSync(handsDown, historyJson(handle.workflowId, handle.firstExecutionRunId));
      await saveHistory(h.client.workflow.getHandle(`promote/us/${STREAMING_ONLY}`), 'promote.delegated-by-parent');
      if (process.env.DR_SAVE_HISTORIES === '1') {
        mkdirSync(HISTORIES_DIR, { recursive: true });
        writeFileSync(join(HISTORIES_DIR, 'region-failover.first-run.json'), historyJson(handle.workflowId, handle.firstExecutionRunId));
        writeFileSync(join(HISTORIES_DIR, 'region-failover.continued.json'), historyJson(handle.workflowId, desc.runId));
      }
    }, { sites: ['us'] });
  }, 1_200_000);
});
