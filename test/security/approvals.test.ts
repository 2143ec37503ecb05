// Approvals nobody can forge (issue 16, items 2-3), against the real parts: the sandbox's OpenID Connect issuer
// (oidc-provider), the Temporal dev server, workers running the approvals policy of a strict sites file, and a real
// standby pair. Every forged or unauthorised decision is refused with one sentence and the world stays as it was.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { approveSignal, approvalNonce, approveUpdate, getPendingApprovalQuery, rejectUpdate, type ApprovalDecision } from '../../workflows/contracts/approvals';
import { getJournalQuery, type JournalEntry } from '../../workflows/contracts/journal';
import { regionFailoverWorkflowId, type RegionFailoverResult } from '../../workflows/contracts/region-failover';
import type { ApprovalRecord } from '../../workflows/contracts/runbooks';
import { pendingGate } from '../helpers/approvals';
import { saveHistory } from '../helpers/histories';
import { sandboxIdToken } from '../helpers/identity';
import { instantFleet, withLostEu } from '../helpers/instant-fleet';
import { withRunbookWorkers } from '../helpers/runbook-workers';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { testLayout } from '../helpers/test-env';
import { snapshotWorld } from '../bad-input/world-snapshot';
import { forgedIdToken } from './forged-token';

/** The test sandbox's sites file with a strict policy: tokens only, dr-approvers decide, dba-leads may only reject. */
function strictSitesFile(): string {
  const file = JSON.parse(readFileSync(testLayout().sitesFile, 'utf8'));
  file.approvals = {
    rules: [
      { name: 'dr-approvers decide', groups: ['dr-approvers'] },
      { name: 'dba-leads stop', decisions: ['reject'], groups: ['dba-leads'] },
    ],
  };
  const path = join(testLayout().dir, 'sites-strict.json');
  writeFileSync(path, JSON.stringify(file, null, 2));
  return path;
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => { throw new Error('the decision was accepted but should have been refused'); }, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  expect((err as WorkflowUpdateFailedError).cause).toBeInstanceOf(ApplicationFailure);
  return (err as WorkflowUpdateFailedError).cause!.message;
}

const journalText = (entries: JournalEntry[]) => entries.map((e) => e.message).join('\n');

async function waitForJournal(handle: WorkflowHandle, line: RegExp): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (line.test(journalText(await handle.query(getJournalQuery)))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the journal never said ${line}`);
}

let pair: StandbyPair;
let sitesFile: string;

beforeAll(async () => {
  sitesFile = strictSitesFile();
  pair = await createStandbyPair('sec', { members: 1 });
}, 300_000);

afterAll(async () => {
  if (pair) await deleteStandbyPair(pair);
});

describe('approvals nobody can forge', () => {
  it('a typed name, a stranger, the requester, a token for another decision or issuer, a reject-only group: refused, nothing changed; a DBA lead\'s rejection ends it', async () => {
    await withRunbookWorkers(async (h) => {
      const workflowId = `promote/${pair.standby}`;
      const handle = await h.client.workflow.start('promote', {
        workflowId, taskQueue: h.taskQueue,
        args: [{ cluster: pair.standby, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false, requesterIdToken: await sandboxIdToken('carol', `start:${workflowId}`) }],
      });
      // Planned asks before it fences: at the gate nothing has changed yet.
      const gate = await pendingGate(handle);
      const before = await snapshotWorld();
      const approve = (d: Partial<ApprovalDecision>) => refusal(handle.executeUpdate(approveUpdate, { args: [{ ticket: 'CHG-16', ...d } as ApprovalDecision] }));
      const token = (user: string, decision: 'approve' | 'reject' = 'approve') => sandboxIdToken(user, approvalNonce(gate.challenge!, decision));

      // The promotion of issue 16: a name typed by whoever may send an update.
      expect(await approve({ approver: 'alice' })).toMatch(/^a decision needs an ID token from http:\/\/127\.0\.0\.1:\d+\S* whose nonce is "approve:[0-9a-f-]+" .*a typed name \("alice"\) proves nothing$/);
      expect(await approve({ idToken: await token('mallory') })).toMatch(
        new RegExp(`^mallory \\(groups: none\\) may not approve gate "promote" of promote for ${pair.standby}: the rules that cover it allow only "dr-approvers decide" \\(group dr-approvers\\)`));
      expect(await approve({ idToken: await token('carol') })).toBe('four-eyes: carol started this run and cannot approve it; someone else must');
      // alice's token for rejecting this gate, used to approve it.
      expect(await approve({ idToken: await token('alice', 'reject') })).toMatch(/^the ID token was refused: .*nonce/i);
      // A token that says it comes from the sandbox issuer, signed with a key the issuer never published.
      expect(await approve({ idToken: await forgedIdToken({ sub: 'alice', groups: ['dr-approvers'], nonce: approvalNonce(gate.challenge!, 'approve') }) }))
        .toMatch(/^the ID token was refused: /);
      expect(gate).toMatchObject({ gate: 'promote', requires: { approvers: 1 }, challenge: expect.stringMatching(/^[0-9a-f-]{36}$/) });
      expect(await approve({ idToken: await token('dana') })).toMatch(/^dana \(groups: dba-leads\) may not approve gate "promote"/);
      // A signal has nobody to answer: the refusal is journaled and the gate stays open.
      await handle.signal(approveSignal, { approver: 'alice', ticket: 'CHG-16' });
      await waitForJournal(handle, /Refused an approval \(via signal\): a decision needs an ID token/);
      const gateNow = await handle.query(getPendingApprovalQuery);
      expect(gateNow).toMatchObject({ gate: 'promote', challenge: gate.challenge, signedBy: [] });
      expect(await snapshotWorld()).toEqual(before);

      const rejected = await handle.executeUpdate(rejectUpdate, { args: [{ idToken: await token('dana', 'reject'), ticket: 'CHG-16', comment: 'not tonight' }] });
      expect(rejected).toMatchObject({
        decision: 'rejected', approver: 'dana', rule: 'dba-leads stop', policyVersion: expect.stringMatching(/^[0-9a-f]{16}$/),
        approvers: [{ subject: 'dana', groups: ['dba-leads'], authenticated: true, issuer: expect.stringMatching(/^http:\/\/127\.0\.0\.1:/) }],
      });
      const failure = await handle.result().then(() => null, (e: unknown) => e);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect((failure as WorkflowFailedError).cause?.message).toMatch(/rejected by dana/);
      const journal = journalText(await handle.query(getJournalQuery));
      expect(journal).toMatch(/Requested by carol \(Carol Lead\) of http:\/\/127\.0\.0\.1:\d+\S* \[dr-approvers, dba-leads\]\./);
      expect(journal).toMatch(/Refused an approval \(via update\): four-eyes: carol started this run/);
      expect(journal).toMatch(/Rejected by dana \(Dana Lead\) of \S+ \[dba-leads\] \(rule "dba-leads stop"\) \(ticket CHG-16, via update\): "not tonight"/);
      expect(journal).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
      expect(await snapshotWorld()).toEqual(before);
      await saveHistory(handle, 'promote.verified-refusals-then-rejected');
    }, { sitesFile });
  }, 600_000);

  it('trusting an unconfirmed fence takes two different verified approvers who agree; the promotions take over their approval', async () => {
    const { instant, names } = await instantFleet('sec', 2, 1);
    await withLostEu(instant, async (h) => {
      const workflowId = regionFailoverWorkflowId('eu');
      const handle = await h.client.workflow.start('regionFailover', {
        workflowId, taskQueue: h.taskQueue,
        args: [{ lostSite: 'eu', survivingSite: 'us', concurrency: 2, takeBackup: false, approvalTimeoutSeconds: 600,
          limits: { regionTimeoutSeconds: 1 }, requesterIdToken: await sandboxIdToken('carol', `start:${workflowId}`) }],
      });
      const gate = await pendingGate(handle);
      expect(gate.requires).toMatchObject({ acknowledgeUnconfirmedFence: true, approvers: 2 });
      const decide = async (user: string, d: Partial<ApprovalDecision> = {}) => handle.executeUpdate(approveUpdate, {
        args: [{ idToken: await sandboxIdToken(user, approvalNonce(gate.challenge!, 'approve')), ticket: 'INC-16', acknowledgeUnconfirmedFence: true, ...d } as ApprovalDecision],
      });

      expect(await refusal(decide('alice', { acknowledgeUnconfirmedFence: false }))).toMatch(/NOT confirmed fenced/);
      const first = await decide('alice');
      expect(first).toMatchObject({ decision: 'approved', approver: 'alice', awaitingApprovers: 1 });
      expect(await handle.query(getPendingApprovalQuery)).toMatchObject({ gate: gate.gate, signedBy: [{ subject: 'alice', authenticated: true }] });
      expect(await refusal(decide('alice'))).toBe('alice has already approved this gate: the next approval must come from someone else');
      expect(await refusal(decide('carol'))).toBe('four-eyes: carol started this run and cannot approve it; someone else must');
      expect(await refusal(decide('bob', { acknowledgeDataLoss: true })))
        .toMatch(/^the first approval \(by alice\) was for .*; a second approval must make the same decision/);
      expect(instant.promotions.size).toBe(0);

      const second: ApprovalRecord = await decide('bob');
      expect(second).toMatchObject({ decision: 'approved', approver: 'bob', approvers: [{ subject: 'alice' }, { subject: 'bob' }] });
      expect(second.awaitingApprovers).toBeUndefined();
      const result = (await handle.result()) as RegionFailoverResult;
      expect(result.outcome).toBe('completed');
      expect([...instant.promotions.entries()].sort()).toEqual(names.map((n) => [n, 1]));
      await saveHistory(handle, 'region-failover.two-verified-approvers');
      expect(journalText(await handle.query(getJournalQuery))).toMatch(/Approval 1 of 2 by alice \(\w+ \w+\) of \S+ \[dr-approvers\] \(rule "dr-approvers decide", ticket INC-16\): trusting an unconfirmed fence takes 2 different people/);
    }, { sitesFile });
  }, 600_000);

  it('fence-guard and a disruptive drill started by hand need the authority of the promotion they stand for', async () => {
    await withRunbookWorkers(async (h) => {
      const before = await snapshotWorld();
      const start = async (type: 'fenceGuard' | 'drill', workflowId: string, input: Record<string, unknown>, user?: string) => {
        const handle = await h.client.workflow.start(type, {
          workflowId, taskQueue: h.taskQueue,
          args: [{ ...input, ...(user ? { requesterIdToken: await sandboxIdToken(user, `start:${workflowId}`) } : {}) }],
        });
        return handle.result().then((r) => ({ ok: r as unknown }), (e: unknown) => ({ failed: (e as WorkflowFailedError).cause as ApplicationFailure }));
      };
      const guard = { cluster: pair.source, promoted: pair.standby };
      const anonymous = await start('fenceGuard', `fence-guard/${pair.source}`, guard);
      expect(anonymous).toMatchObject({ failed: { type: 'BadInputError' } });
      expect((anonymous as { failed: ApplicationFailure }).failed.message).toBe(
        `starting fence-guard of ${pair.source} takes the authority to approve promote of ${pair.standby}: start it with requesterIdToken, ` +
        `the ID token of \`drctl login\` with the nonce "start:fence-guard/${pair.source}"; nothing was changed`);
      const stranger = await start('fenceGuard', `fence-guard/${pair.source}`, guard, 'mallory');
      expect((stranger as { failed: ApplicationFailure }).failed.message).toMatch(/^starting fence-guard of \S+ takes the authority to approve promote of \S+: mallory \(groups: none\) may not approve/);
      const drill = await start('drill', `drill/${pair.source}`, { cluster: pair.source, drSite: 'us', mode: 'disruptive', standby: pair.standby }, 'dana');
      expect((drill as { failed: ApplicationFailure }).failed.message).toMatch(/^a disruptive drill of \S+ takes the authority to approve promote of \S+: dana \(groups: dba-leads\) may not approve/);
      expect(await snapshotWorld()).toEqual(before);

      // alice may approve that promotion, so she may start its guard; it stands down (the standby follows its primary).
      const allowed = await start('fenceGuard', `fence-guard/${pair.source}`, guard, 'alice');
      expect(allowed).toMatchObject({ ok: { fenced: false } });
      const journal = journalText(await h.client.workflow.getHandle(`fence-guard/${pair.source}`).query(getJournalQuery));
      expect(journal).toMatch(/Started by alice \(\w+ \w+\) of \S+ \[dr-approvers\] \(rule "dr-approvers decide"\)\./);
      await saveHistory(h.client.workflow.getHandle(`fence-guard/${pair.source}`), 'fence-guard.started-with-authority');
      expect(await snapshotWorld()).toEqual(before);
    }, { sitesFile });
  }, 600_000);
});
