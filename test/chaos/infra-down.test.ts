// Chaos: the infrastructure under a runbook goes away mid-run and comes back: S3 during force-backup's
// backup-push, the standby's Patroni (REST API and all) during promote, the target region's etcd during promote.
// Each time: the failing step is retried with a failure that names the cause, the run never claims success while
// the fault lasts, and it completes once the part is back. Shared S3 and etcd are always restarted in `finally`.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { RUNBOOK_NAMES, type ForceBackupResult, type PromoteResult } from '../../workflows/contracts/runbooks';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { startS3ServerFor, stopS3Server } from '../../activities/sites/local/s3-server';
import { alivePid } from '../../activities/sites/local/processes';
import { approveWhenAsked, pendingGate } from '../helpers/approvals';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { driverOf, roleOf, sql } from '../helpers/clusters';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import type { SiteDriver } from '../../activities/sites/site-driver';
import { testLayout } from '../helpers/test-env';
import { recordFault } from './results';

// The in-process workers' escalations (notifyEscalation reads DR_NOTIFY_FILE when it is called).
const NOTIFY_FILE = join(testLayout().dir, 'chaos-notifications.jsonl');
process.env.DR_NOTIFY_FILE = NOTIFY_FILE;
// Page at the first failed attempt (production default: the 3rd), so each fault's escalation is seen without
// waiting out the retry backoff; read by the workers' interceptor when this file's workers are built.
const escalateBefore = process.env.DR_ESCALATE_AFTER_ATTEMPTS;
process.env.DR_ESCALATE_AFTER_ATTEMPTS = '1';
const escalationsFor = (workflowId: string) => (existsSync(NOTIFY_FILE) ? readFileSync(NOTIFY_FILE, 'utf8') : '')
  .split('\n').filter(Boolean).map((l) => JSON.parse(l) as { workflowId: string; reason: string }).filter((e) => e.workflowId === workflowId);

/** The escalation a retrying step sent for this run (written as the failed attempt ends, so it may lag a moment). */
async function escalationOf(workflowId: string, activity: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const e = escalationsFor(workflowId).find((x) => x.reason.startsWith(`${activity} has failed`));
    if (e) return e.reason;
    await sleep(100);
  }
  throw new Error(`no escalation for ${activity} of ${workflowId} in ${NOTIFY_FILE}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Pending { activity: string; attempt: number; lastFailure: string }

async function pendingOf(handle: WorkflowHandle): Promise<Pending[]> {
  const d = await handle.describe();
  return (d.raw.pendingActivities ?? []).map((a) => ({
    activity: a.activityType?.name ?? '?', attempt: a.attempt ?? 0, lastFailure: a.lastFailure?.message ?? '',
  }));
}

/** Waits until `activity` is pending with a failed attempt behind it, and returns what the UI would show. */
async function retriedFailure(handle: WorkflowHandle, activity: string, minAttempt = 2, timeoutMs = 120_000): Promise<Pending> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const p = (await pendingOf(handle)).find((a) => a.activity === activity && a.attempt >= minAttempt && a.lastFailure);
    if (p) return p;
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') throw new Error(`${handle.workflowId} ended (${d.status.name}) while ${activity} should be retrying`);
    await sleep(200);
  }
  throw new Error(`${activity} of ${handle.workflowId} was not retried within ${timeoutMs} ms`);
}

async function timelineOf(ref: string): Promise<number> {
  const { driver, cluster } = driverOf(ref);
  return ((await (await fetch(`${driver.region.patroniUrl(cluster)}/patroni`)).json()) as { timeline: number }).timeline;
}

/**
 * Runs `fault` at the first call of the promotion itself (removeStandbyConfig), then lets the call go on into it: the
 * part is down for the promote step, after the checks before it (lineage, replay of the archive) have passed.
 */
function faultAtPromotion(fault: () => Promise<void>): (driver: SiteDriver) => SiteDriver {
  let done = false;
  return (driver) => Object.assign(Object.create(driver) as SiteDriver, {
    removeStandbyConfig: async (cluster: string) => {
      if (!done) {
        done = true;
        await fault();
      }
      return driver.removeStandbyConfig(cluster);
    },
  });
}

const startPromote = (h: RunbookHarness, cluster: string) => startRunbook(h.client, {
  workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster, taskQueue: h.taskQueue,
  input: { cluster, mode: 'unplanned', approvalTimeoutSeconds: 600, takeBackup: false, limits: { regionTimeoutSeconds: 10 } },
});

describe('chaos: S3, Patroni and etcd down mid-run', () => {
  const pairs: StandbyPair[] = [];
  afterAll(async () => {
    for (const p of pairs) await deleteStandbyPair(p);
    // Jest runs the files in one process: later files must get the production default back.
    if (escalateBefore === undefined) delete process.env.DR_ESCALATE_AFTER_ATTEMPTS;
    else process.env.DR_ESCALATE_AFTER_ATTEMPTS = escalateBefore;
  });

  it('S3 stopped during backup-push: retried with the cause named, no success while down, proven backup after', async () => {
    const pair = await createStandbyPair('s3', { members: 1 });
    pairs.push(pair);
    // Enough data that backup-push is still running when the test sees it start (a few seconds on 2 cores).
    await sql(pair.source, "CREATE TABLE public.ballast AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 300000) g");
    const s3 = driverOf(pair.source).driver.cfg.s3;
    const s3Dir = join(testLayout().dir, 's3');
    await recordFault('S3 server stopped during force-backup', `the suite's S3 server (versitygw) stopped while backup-push of ${pair.source} runs, restarted after 3 failed attempts`, async (observe) => {
      try {
        await withRunbookWorkers(async (h) => {
          const handle = await startRunbook(h.client, {
            workflowType: 'forceBackup', runbook: RUNBOOK_NAMES.forceBackup, cluster: pair.source, taskQueue: h.taskQueue,
            input: { cluster: pair.source },
          });
          for (let i = 0; i < 600 && !(await pendingOf(handle)).some((a) => a.activity === 'walgRunBaseBackup'); i++) await sleep(100);
          await stopS3Server(join(s3Dir, 'versitygw.pid'));
          const seen = await retriedFailure(handle, 'walgRunBaseBackup', 3);
          expect(seen.lastFailure).toMatch(/backup-push of .* failed/);
          const paged = await escalationOf(handle.workflowId, 'walgRunBaseBackup');
          expect((await handle.describe()).status.name).toBe('RUNNING');
          await startS3ServerFor(s3, s3Dir);
          const result = (await handle.result()) as ForceBackupResult;
          const facts = (await driverOf(pair.source).driver.describeCluster(driverOf(pair.source).cluster))!;
          expect((await listCompleteBackups(s3, facts.archive.walPrefix)).map((b) => b.name)).toContain(result.backupName);
          observe(`backup-push retried (attempt ${seen.attempt} pending, last failure "${seen.lastFailure.slice(0, 140)}"); escalated while retrying ("${paged.slice(0, 100)}…"); run still RUNNING while S3 was down; after the restart backup ${result.backupName} was proven by its sentinel`);
        });
      } finally {
        await startS3ServerFor(s3, s3Dir);
      }
    });
  });

  it('Patroni of the standby killed during promote: retried, nothing promoted behind its back, completes when it is back', async () => {
    const pair = await createStandbyPair('pd', { members: 1 });
    pairs.push(pair);
    const { driver, cluster } = driverOf(pair.standby);
    const member = driver.region.getCluster(cluster)!.members[0];
    const pidFile = driver.region.memberPaths(cluster, member.name).pidFile;
    const before = await timelineOf(pair.standby);
    await recordFault('Patroni REST down during promote', `Patroni of ${pair.standby} SIGKILLed (Postgres left running) as the promotion starts, restarted after a failed attempt`, async (observe) => {
      await withRunbookWorkers(async (h) => {
        const handle = await startPromote(h, pair.standby);
        await pendingGate(handle);
        await approveWhenAsked(handle, 'alice');
        const seen = await retriedFailure(handle, 'siteRemoveStandbyConfig');
        const paged = await escalationOf(handle.workflowId, 'siteRemoveStandbyConfig');
        expect((await handle.describe()).status.name).toBe('RUNNING');
        // Still a standby: nothing took writes while Patroni was away.
        await expect(sql(pair.standby, 'INSERT INTO public.writes (id) VALUES (-2)')).rejects.toThrow();
        await driver.region.startCluster(cluster);
        const result = (await handle.result()) as PromoteResult;
        expect(await roleOf(pair.standby)).toBe('primary');
        expect(await timelineOf(pair.standby)).toBe(before + 1);
        expect(result.timelineAfter).toBe(before + 1);
        observe(`siteRemoveStandbyConfig retried (attempt ${seen.attempt}, last failure "${seen.lastFailure.slice(0, 140)}"), escalated ("${paged.slice(0, 80)}…"); the standby refused writes meanwhile; after Patroni's restart the run completed, timeline ${before} -> ${before + 1}`);
      }, { sites: ['eu', 'us'], wrapDriver: faultAtPromotion(async () => { process.kill(alivePid(pidFile)!, 'SIGKILL'); }) });
    });
  });

  it('etcd of the target region down during promote: retried, completes when etcd is back', async () => {
    const pair = await createStandbyPair('ed', { members: 1 });
    pairs.push(pair);
    const { driver } = driverOf(pair.standby);
    const before = await timelineOf(pair.standby);
    await recordFault('etcd of the target region down during promote', `etcd of region us stopped as the promotion of ${pair.standby} starts, restarted after a failed attempt`, async (observe) => {
      try {
        await withRunbookWorkers(async (h) => {
          const handle = await startPromote(h, pair.standby);
          await pendingGate(handle);
          await approveWhenAsked(handle, 'alice');
          const seen = await retriedFailure(handle, 'siteRemoveStandbyConfig');
          const paged = await escalationOf(handle.workflowId, 'siteRemoveStandbyConfig');
          expect((await handle.describe()).status.name).toBe('RUNNING');
          await driver.region.startEtcd();
          const result = (await handle.result()) as PromoteResult;
          expect(await roleOf(pair.standby)).toBe('primary');
          expect(await timelineOf(pair.standby)).toBe(before + 1);
          expect(result.timelineAfter).toBe(before + 1);
          observe(`siteRemoveStandbyConfig retried (attempt ${seen.attempt}, last failure "${seen.lastFailure.slice(0, 140)}"), escalated ("${paged.slice(0, 80)}…"); after etcd's restart the run completed, timeline ${before} -> ${before + 1}`);
        }, { wrapDriver: faultAtPromotion(async () => { await driver.region.stopEtcd(); }) });
      } finally {
        await driver.region.startEtcd();
      }
    });
  });
});
