// drctl as an operator runs it: a child process (scripts/drctl ... --json) against the suite's real Temporal
// server and real workers (this process serves the harness's queues), on real clusters.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { failureOf } from '../helpers/failures';
import { withRunbookWorkers } from '../helpers/runbook-workers';
import { roleOf } from '../helpers/clusters';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { drctl, drctlChild, eventually, loggedInAs } from './drctl-process';

const PRIMARY = 'eu/acid-demo';

describe('drctl', () => {
  let pair: StandbyPair | undefined;
  afterAll(async () => {
    if (pair) await deleteStandbyPair(pair);
  });

  it('force-backup: started, followed to its proven result; then status, report and list find the run', async () => {
    await withRunbookWorkers(async (h) => {
      const run = await drctl(h, ['force-backup', PRIMARY, '--json']);
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
      const doc = run.json;
      expect(doc).toMatchObject({
        ok: true, command: 'force-backup', workflowId: `force-backup/${PRIMARY}`, runbook: 'force-backup', cluster: PRIMARY,
        taskQueue: h.taskQueue, started: true, status: 'COMPLETED', outcome: 'succeeded', failure: null,
        input: { cluster: PRIMARY },
        result: { cluster: PRIMARY, reused: false },
      });
      expect(doc.result.backupName).toMatch(/^base_/);
      expect(doc.result.sentinelKey).toContain(doc.result.backupName);
      expect(doc.journal.map((e: { step: string }) => e.step)).toEqual(['validate-request', 'check-existing', 'check-archiving', 'run-backup', 'prove-backup', 'wal-archived', 'report']);
      // The run drctl reported is the run Temporal has.
      const d = await h.client.workflow.getHandle(doc.workflowId).describe();
      expect(d.runId).toBe(doc.runId);

      const status = await drctl(h, ['status', 'force-backup', PRIMARY, '--json']);
      expect(status.code).toBe(0);
      expect(status.json).toMatchObject({
        ok: true, workflowId: doc.workflowId, runId: doc.runId, executionStatus: 'COMPLETED', state: 'succeeded',
        outcome: 'succeeded', runbook: 'force-backup', cluster: PRIMARY, site: 'eu', phase: 'done', pendingApproval: null,
        journalError: null, result: doc.result, failure: null,
      });
      expect(status.json.journal).toEqual(doc.journal);

      const human = await drctl(h, ['status', doc.workflowId]);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain('execution: COMPLETED');
      expect(human.stdout).toContain(doc.result.backupName);

      const report = await drctl(h, ['report', doc.workflowId]);
      expect(report.code).toBe(0);
      const md = report.stdout;
      expect(md).toContain(`# force-backup of ${PRIMARY}`);
      expect(md).toContain('## Phases');
      for (const phase of ['validate', 'check-existing', 'backup', 'prove', 'report']) expect(md).toMatch(new RegExp(`^\\| ${phase} \\| [0-9.]+ (ms|s) \\|`, 'm'));
      expect(md).toContain('## Steps');
      expect(md).toMatch(/\| 5 \| .* \| prove \| prove-backup \| done \|/);
      expect(md).toContain('## Approvals');
      expect(md).toContain(`"backupName": "${doc.result.backupName}"`);
      const reportJson = await drctl(h, ['report', doc.workflowId, '--json']);
      expect(reportJson.code).toBe(0);
      expect(reportJson.json.phases.map((p: { phase: string }) => p.phase)).toEqual(['validate', 'check-existing', 'backup', 'prove', 'archive', 'report']);
      expect(reportJson.json.result).toEqual(doc.result);

      // Visibility is eventually consistent: the closed run shows up in list shortly.
      const listed = await eventually('list to show the run', async () => {
        const l = await drctl(h, ['list', '--runbook', 'force-backup', '--json']);
        expect(l.code).toBe(0);
        return l.json.runs.find((r: { runId: string; outcome: string | null }) => r.runId === doc.runId && r.outcome) ?? undefined;
      }, 30_000);
      expect(listed).toMatchObject({ workflowId: doc.workflowId, runbook: 'force-backup', cluster: PRIMARY, site: 'eu', executionStatus: 'COMPLETED', outcome: 'succeeded' });
      const otherSite = await drctl(h, ['list', '--runbook', 'force-backup', '--site', 'us', '--json']);
      expect(otherSite.json.runs.find((r: { runId: string }) => r.runId === doc.runId)).toBeUndefined();
    });
  });

  it('promote: started by the logged-in user; a second start is reported, not duplicated; the gate is announced while following; a typed name or no login decides nothing; a logged-in rejection ends the run with nothing changed', async () => {
    pair = await createStandbyPair('cli');
    const workflowId = `promote/${pair.standby}`;
    const [carol, bob, nobody] = [await loggedInAs('carol'), await loggedInAs('bob'), { XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), 'drctl-nobody-')) }];
    await withRunbookWorkers(async (h) => {
      const started = await drctl(h, ['promote', pair!.standby, '--mode', 'planned', '--no-wait', '--json'], carol);
      expect(started.code).toBe(0);
      expect(started.json).toMatchObject({ ok: true, workflowId, status: 'RUNNING', started: true, input: { cluster: pair!.standby, mode: 'planned' },
        requester: expect.stringMatching(/^carol of http:\/\/127\.0\.0\.1:\d+/) });
      expect(started.stdout).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);

      const again = await drctl(h, ['promote', pair!.standby, '--mode', 'planned', '--json']);
      expect(again.code).toBe(1);
      expect(again.json).toMatchObject({ ok: false, started: false, workflowId, runId: started.json.runId, error: { kind: 'already-running' } });
      expect(again.json.error.message).toContain('already running');

      const noTicket = await drctl(h, ['approve', workflowId, '--json'], bob);
      expect(noTicket.code).toBe(2);
      expect(noTicket.stderr).toContain("required option '--ticket <id>' not specified");
      expect(noTicket.json).toMatchObject({ ok: false, error: { kind: 'usage' } });
      const typed = await drctl(h, ['approve', workflowId, '--approver', 'alice', '--ticket', 'CHG-9', '--json'], bob);
      expect(typed.code).toBe(2);
      expect(typed.json.error).toMatchObject({ kind: 'usage', message: expect.stringMatching(/^--approver is gone: a typed name proves nothing\. Log in \(drctl login --user <you>\)/) });
      const anonymous = await drctl(h, ['approve', workflowId, '--ticket', 'CHG-9', '--json'], nobody);
      expect(anonymous.code).toBe(2);
      expect(anonymous.json.error).toMatchObject({ kind: 'usage', message: expect.stringMatching(/^nobody is logged in: drctl login --user <you>/) });

      // A human follows the run in one terminal: it announces the gate and how to decide it, and keeps following.
      const follower = drctlChild(['status', 'promote', pair!.standby, '--follow'], { DR_TASK_QUEUE_PREFIX: h.prefix });
      await eventually('the follower to announce the gate', async () => (follower.stderrSoFar().includes('waits for approval') ? true : undefined));
      expect(follower.stderrSoFar()).toContain(`drctl approve ${workflowId} --ticket <ticket>`);
      expect(follower.stderrSoFar()).toContain('fence:    PENDING');

      const waiting = await drctl(h, ['status', workflowId, '--json']);
      expect(waiting.json).toMatchObject({ executionStatus: 'RUNNING', state: 'waiting', phase: 'approve', approvalPending: true, pendingApproval: { fence: 'PENDING', cluster: pair!.standby } });
      const pending = await eventually('list --pending-approval to show the run', async () => {
        const l = await drctl(h, ['list', '--pending-approval', '--running', '--json']);
        return l.json.runs.find((r: { workflowId: string }) => r.workflowId === workflowId);
      }, 30_000);
      expect(pending).toMatchObject({ approvalPending: true, executionStatus: 'RUNNING' });

      // ... and decides in another.
      const rejected = await drctl(h, ['reject', 'promote', pair!.standby, '--ticket', 'CHG-9', '--comment', 'not today', '--json'], bob);
      expect(rejected.code).toBe(0);
      expect(rejected.json).toMatchObject({
        ok: true, workflowId, gate: { fence: 'PENDING' },
        decision: { decision: 'rejected', approver: 'bob', ticket: 'CHG-9', comment: 'not today', via: 'update', approvers: [{ subject: 'bob', authenticated: true }] },
      });
      expect(rejected.stdout).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);

      const followed = await follower.done;
      expect(followed.code).toBe(1);
      expect(followed.stdout).toContain('ApprovalRejectedError');
      expect(followed.stderr).toMatch(/approval: refused — Rejected by bob\b.* \[dr-approvers\] \(rule "[^"]+"\) \(ticket CHG-9/);

      const handle = h.client.workflow.getHandle(workflowId);
      expect((await failureOf(handle)).type).toBe('ApprovalRejectedError');
      expect((await handle.query(getJournalQuery)).map((e) => e.step)).not.toContain('fence-old-primary');
      expect((await handle.query(getJournalQuery)).map((e) => e.message).join('\n')).toMatch(/Requested by carol\b.* \[dr-approvers, dba-leads\]\./);
      const ended = await drctl(h, ['status', workflowId, '--json']);
      expect(ended.json).toMatchObject({ executionStatus: 'FAILED', outcome: 'rejected', failure: { type: 'ApprovalRejectedError' } });

      // A decision on a run that has ended is refused, with the reason.
      const late = await drctl(h, ['approve', workflowId, '--ticket', 'INC-1', '--json'], bob);
      expect(late.code).toBe(1);
      expect(late.json).toMatchObject({ ok: false, error: { kind: 'refused' } });
      expect(late.json.error.message).toContain('is not running');
    });
    // Rejected before the fence: the source is still the primary, the standby still a standby.
    expect(await roleOf(pair.source)).toBe('primary');
    expect(await roleOf(pair.standby)).toBe('standby_leader');
  });

  it('bad input fails before anything is started, saying what to fix (exit 2)', async () => {
    await withRunbookWorkers(async (h) => {
      const noSite = await drctl(h, ['promote', 'acid-demo', '--mode', 'planned', '--json']);
      expect(noSite.code).toBe(2);
      expect(noSite.json).toMatchObject({ ok: false, error: { kind: 'usage' } });
      expect(noSite.json.error.message).toContain('must be "<site>/<cluster>"');
      await expect(h.client.workflow.getHandle('promote/acid-demo').describe()).rejects.toThrow(WorkflowNotFoundError);

      const badMode = await drctl(h, ['promote', 'us/acid-demo', '--mode', 'sideways']);
      expect(badMode.code).toBe(2);
      expect(badMode.stderr).toContain('Allowed choices are planned, unplanned');

      const sameSite = await drctl(h, ['provision-standby', '--source', 'eu/acid-demo', '--target', 'eu/acid-demo2', '--json']);
      expect(sameSite.code).toBe(2);
      expect(sameSite.json.error.message).toContain('a standby belongs in another region');
      await expect(h.client.workflow.getHandle('provision-standby/eu/acid-demo2').describe()).rejects.toThrow(WorkflowNotFoundError);

      const badLsn = await drctl(h, ['force-backup', PRIMARY, '--not-before-lsn', 'yesterday', '--json']);
      expect(badLsn.code).toBe(2);
      expect(badLsn.json.error.message).toContain('is not a Postgres LSN');

      const badRun = await drctl(h, ['status', 'promote', '--json']);
      expect(badRun.code).toBe(2);
      expect(badRun.json.error.message).toContain('<runbook>/<site>/<cluster>');
    });
  });

  it('cannot connect: exit 3 with where it tried', async () => {
    const run = await drctl(null, ['force-backup', PRIMARY, '--json'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(run.code).toBe(3);
    expect(run.json).toMatchObject({ ok: false, error: { kind: 'connect' }, temporal: { address: '127.0.0.1:1' } });
    expect(run.json.error.message).toContain('cannot connect to Temporal at 127.0.0.1:1');
  });
});
