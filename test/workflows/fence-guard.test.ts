// fence-guard against real parts: it never fences a cluster that has become the legitimate primary again (after a
// switchover and a switchback), even when nothing but the fencing epoch can tell; refuses bad input before touching
// anything; and past its maximum time it pages a human and keeps guarding (continue-as-new, epoch and all).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { SiteDriver } from '../../activities/sites/site-driver';
import { ClusterNotFoundError } from '../../workflows/contracts/errors';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { RUNBOOK_NAMES, runbookWorkflowId, type PromoteResult } from '../../workflows/contracts/runbooks';
import { sandboxIdToken } from '../helpers/identity';
import type { FenceGuardInput } from '../../workflows/fence-guard';
import { approveWhenAsked } from '../helpers/approvals';
import { roleOf, sql } from '../helpers/clusters';
import { failureOf } from '../helpers/failures';
import { saveHistory } from '../helpers/histories';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { testLayout } from '../helpers/test-env';

const NOTIFY_FILE = join(testLayout().dir, 'fence-guard-notifications.jsonl');
process.env.DR_NOTIFY_FILE = NOTIFY_FILE;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A guard started by hand, as alice, who may approve the promotion it stands for (nonce start:<workflowId>). */
const startGuard = async (h: RunbookHarness, input: object, cluster: string) => startRunbook(h.client, {
  workflowType: 'fenceGuard', runbook: RUNBOOK_NAMES.fenceGuard, cluster, taskQueue: h.taskQueue,
  input: { ...input, requesterIdToken: await sandboxIdToken('alice', `start:${runbookWorkflowId(RUNBOOK_NAMES.fenceGuard, cluster)}`) },
});

async function switchOver(h: RunbookHarness, to: string): Promise<PromoteResult> {
  const handle = await startRunbook(h.client, {
    workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: to, taskQueue: h.taskQueue,
    input: { cluster: to, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false },
  });
  await approveWhenAsked(handle, 'alice', 'CHG-31');
  return (await handle.result()) as PromoteResult;
}

function pages(workflowId: string): Array<{ runbook: string; workflowId: string; reason: string }> {
  if (!existsSync(NOTIFY_FILE)) return [];
  return readFileSync(NOTIFY_FILE, 'utf8').trim().split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { runbook: string; workflowId: string; reason: string })
    .filter((e) => e.workflowId === workflowId);
}

/** Waits until the guard has paged, or its first run has closed; returns the first run's status. */
async function firstRunAfterPage(h: RunbookHarness, handle: WorkflowHandle, firstRunId: string): Promise<string> {
  const firstRun = h.client.workflow.getHandle(handle.workflowId, firstRunId);
  for (;;) {
    const { status } = await firstRun.describe();
    if (status.name !== 'RUNNING' && (status.name !== 'CONTINUED_AS_NEW' || pages(handle.workflowId).length > 0)) return status.name;
    await sleep(250);
  }
}

/** The input a run of a workflow started with (a continued run's is what the previous run passed on). */
async function startInput(handle: WorkflowHandle): Promise<Record<string, unknown>> {
  const history = await handle.fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload(payload) : {};
}

/** A site driver that cannot find `ref`'s cluster: the guard then has no facts to stand down on but the epoch. */
function cannotFind(ref: string): (driver: SiteDriver) => SiteDriver {
  const [site, cluster] = ref.split('/');
  return (driver) => (driver.site !== site ? driver : Object.assign(Object.create(driver) as SiteDriver, {
    describeCluster: async (name: string) => {
      if (name === cluster) throw new ClusterNotFoundError(`${ref} is gone (test: its driver cannot find it)`, { cluster: name });
      return driver.describeCluster(name);
    },
  }));
}

describe('fence-guard', () => {
  const pairs: StandbyPair[] = [];
  let firstPromotion: PromoteResult | null = null;
  afterAll(async () => {
    for (const p of pairs) await deleteStandbyPair(p);
  });

  it('stands down when the cluster it guards is the legitimate primary again (switchover, then switchback)', async () => {
    const pair = await createStandbyPair('fgs', { members: 1 });
    pairs.push(pair);
    await withRunbookWorkers(async (h) => {
      const over = await switchOver(h, pair.standby);
      firstPromotion = over;
      expect(await roleOf(pair.source)).toBe('standby_leader');
      const back = await switchOver(h, pair.source);
      expect(back.timelineAfter).toBeGreaterThan(over.timelineAfter);
      expect(await roleOf(pair.source)).toBe('primary');

      // A guard from the first promotion shows up late (e.g. its site was slow to answer): eu is the primary again.
      const input: FenceGuardInput = { cluster: pair.source, promoted: pair.standby, promotedTimeline: over.timelineAfter };
      const guard = await startGuard(h, input, pair.source);
      const outcome = (await guard.result()) as { fenced: boolean; detail: string };
      expect(outcome.fenced).toBe(false);
      expect(outcome.detail).toMatch(/primary again/);
      expect(await roleOf(pair.source)).toBe('primary');
      await sql(pair.source, 'INSERT INTO public.writes (id) VALUES (-31)');
      await saveHistory(guard, 'fence-guard.stood-down');
    });
  });

  it('stands down on the fencing epoch when nothing else shows the guarded cluster was promoted again', async () => {
    // The pair of the test above: eu switched over to us (the first promotion's epoch), then back (a newer one).
    const [pair, over] = [pairs[0], firstPromotion];
    expect(over?.fencingEpoch).toEqual(expect.any(Number));
    expect(await roleOf(pair.source)).toBe('primary');
    // us cannot be read, so "us follows eu again" is unknown: only eu's stored epoch can stop the fence.
    await withRunbookWorkers(async (h) => {
      const input: FenceGuardInput = { cluster: pair.source, promoted: pair.standby, promotedTimeline: over!.timelineAfter, epoch: over!.fencingEpoch! };
      const guard = await startGuard(h, input, pair.source);
      const outcome = (await guard.result()) as { fenced: boolean; detail: string };
      expect(outcome.fenced).toBe(false);
      expect(outcome.detail).toMatch(new RegExp(`newer fencing epoch than this guard's ${over!.fencingEpoch}`));
      expect(await roleOf(pair.source)).toBe('primary');
      await sql(pair.source, 'INSERT INTO public.writes (id) VALUES (-32)');
    }, { wrapDriver: cannotFind(pair.standby) });
  });

  it('refuses bad input before it touches anything', async () => {
    await withRunbookWorkers(async (h) => {
      const cases: Array<[object, RegExp]> = [
        [{ cluster: 'us/acid-none', promoted: 'eu/acid-none', maxHour: 1 }, /unknown field "maxHour"/],
        [{ cluster: 'acid-none', promoted: 'eu/acid-none' }, /cluster/],
        [{ cluster: 'us/acid-none', promoted: 'eu acid-none' }, /promoted/],
        [{ cluster: 'us/acid-none', promoted: 'eu/acid-none', maxHours: 0 }, /maxHours must be a number > 0/],
        [{ cluster: 'us/acid-none', promoted: 'eu/acid-none', promotedTimeline: 'two' }, /promotedTimeline/],
        [{ cluster: 'us/acid-none', promoted: 'eu/acid-none', epoch: 0 }, /epoch must be a whole number >= 1/],
      ];
      for (const [input, why] of cases) {
        const f = await failureOf(await startGuard(h, input, 'us/acid-none'));
        expect(f).toMatchObject({ type: 'BadInputError', nonRetryable: true });
        expect(f.message).toMatch(why);
      }
    }, { sites: ['us'] });
  });

  it('past its maximum time it pages and keeps guarding (continue-as-new) instead of ending', async () => {
    rmSync(NOTIFY_FILE, { force: true });
    // eu has no worker in this harness: its site never answers.
    await withRunbookWorkers(async (h) => {
      const cluster = 'eu/acid-fgp';
      const input: FenceGuardInput = { cluster, promoted: 'us/acid-fgp', maxHours: 0.001, promotedTimeline: 3, epoch: 7 };
      const handle = await startGuard(h, input, cluster);
      try {
        expect(await firstRunAfterPage(h, handle, handle.firstExecutionRunId)).toBe('CONTINUED_AS_NEW');
        expect(pages(runbookWorkflowId(RUNBOOK_NAMES.fenceGuard, cluster))[0]).toMatchObject({ runbook: 'fence-guard', reason: expect.stringMatching(/still guarding/) });
        const latest = await h.client.workflow.getHandle(handle.workflowId).describe();
        expect(latest.runId).not.toBe(handle.firstExecutionRunId);
        expect(latest.status.name).toBe('RUNNING');
        // The continued run guards with the same plan: its fence still carries the promotion's epoch.
        expect(await startInput(h.client.workflow.getHandle(handle.workflowId, latest.runId))).toEqual(input);
        await saveHistory(h.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId), 'fence-guard.kept-guarding');
      } finally {
        await h.client.workflow.getHandle(handle.workflowId).terminate('test over').catch(() => undefined);
      }
    }, { sites: ['us'] });
  });
});
