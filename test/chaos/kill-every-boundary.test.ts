// Chaos: the worker process is SIGKILLed at EVERY activity boundary of provision-standby, promote (unplanned and,
// as failback's switchback, planned) and failback-reseed (reseed), one run each on one chain of 1-member clusters;
// a new worker process finishes each run; every effect happened once, counted outside the runbook's own journal.
//
// How the kill works, and what it costs (test/chaos/chaos-worker.ts, chaos-harness.ts):
// - Each worker process runs the production workers (createRunbookWorkers) plus an activity interceptor. When an
//   activity returns, the interceptor writes its task token and result to a file, cancels its own long polls and
//   SIGKILLs its process; the harness then reports the result by task token and a spare takes over.
// - Why not die holding the task: Temporal would wait for the activity's startToClose/heartbeat timeout (1-2 min in
//   activity-proxies.ts) before retrying it: ~70 boundaries x 2 min. Why not report first and then die: the server
//   creates the next workflow task at once and the dying worker's own poller takes it in the instant before the
//   kill; measured, every boundary then cost the 10 s workflow task timeout. Why cancel the polls first: a poll
//   left by a dead process could still be handed the next task of its queue (measured: 25-30 s until it moved on).
// - For the activities that change something (LOSE below) the first attempt's result is lost instead: the effect
//   happens, the harness reports a retryable failure in place of the result, and the next worker runs the activity
//   again (after the 2 s retry interval) and must find its effect already there: what a crash between the effect and
//   the report looks like, minus the timeout. walgRunBaseBackup is left out on purpose: a retried backup-push takes
//   a fresh backup by design (activities/walg/run-base-backup.ts).
// - maxCachedWorkflows 0: no sticky queue, so nothing waits out a dead worker's 5 s sticky schedule-to-start.
//   The price is that a query replays the whole history; polling a gate by query cost ~20 s per gate, so the gates
//   are watched through the DrApprovalPending search attribute and approved by signal.
// - Two warmed-up spares (connected, workers created, not polling) always wait; the Kubernetes client is not
//   loaded (1.7 of 2.7 s of start-up). Measured on 2 cores: ~67 boundaries, ~2 s each, the file ~160 s.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { getJournalQuery, type JournalEntry } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type FailbackResult, type PromoteResult, type ProvisionStandbyResult } from '../../workflows/contracts/runbooks';
import { listCompleteBackups, splitS3Url } from '../../activities/s3/backup-catalogue';
import { listKeys } from '../../activities/sites/local/s3-server';
import { approvalNonce, approveSignal, getPendingApprovalQuery } from '../../workflows/contracts/approvals';
import { sandboxIdToken } from '../helpers/identity';
import { DR_APPROVAL_PENDING } from '../../workflows/contracts/search-attributes';
import { deleteCluster, driverOf, roleOf, sql } from '../helpers/clusters';
import { createSource } from '../helpers/standby-pair';
import { withChaosWorkers, type ChaosEntry, type ChaosWorkers } from './chaos-harness';
import { recordFault } from './results';

const SOURCE = 'eu/acid-kb';
const STANDBY = 'us/acid-kb';

const LOSE = [
  'secretsCopyClusterSecrets', 'siteCreateStandbyCluster', 'postgresWriteMarker', 'siteFenceCluster', 'siteUnfenceCluster',
  'siteRemoveStandbyConfig', 'postgresVerifyWritable', 'siteDemoteToStandby', 'siteQuarantineWal', 'siteReseedAsStandby',
  'siteEnsureStandbySlot', 'siteDropStandbySlot',
];

async function patroni(ref: string): Promise<{ timeline: number; role: string; history: unknown[] }> {
  const { driver, cluster } = driverOf(ref);
  const url = driver.region.patroniUrl(cluster);
  const status = (await (await fetch(`${url}/patroni`)).json()) as { timeline: number; role: string };
  const history = (await (await fetch(`${url}/history`)).json()) as unknown[];
  return { timeline: status.timeline, role: status.role, history };
}

const uidOf = (ref: string) => {
  const { driver, cluster } = driverOf(ref);
  return driver.region.getCluster(cluster)?.uid ?? null;
};

/** Every activity finished in a process that was then killed; lost results retried by another process. */
function checkBoundaries(w: ChaosWorkers, observe: (s: string) => void): ChaosEntry[] {
  const entries = w.entries();
  expect(entries.length).toBeGreaterThan(0);
  // Only real failures may appear unkilled (the SDK reports them); every success was a boundary the worker died at.
  expect(entries.filter((e) => e.outcome === 'completed')).toEqual([]);
  const killedPids = new Set(entries.filter((e) => e.outcome.endsWith('-then-killed')).map((e) => e.pid));
  expect(w.kills()).toBeGreaterThanOrEqual(killedPids.size);
  for (const lost of entries.filter((e) => e.outcome === 'lost-then-killed')) {
    const retry = entries.find((e) => e.activity === lost.activity && e.workflowId === lost.workflowId && e.attempt > lost.attempt && e.pid !== lost.pid);
    expect(retry).toBeDefined();
  }
  const lost = entries.filter((e) => e.outcome === 'lost-then-killed').map((e) => e.activity);
  observe(`${entries.length} activity executions, ${w.kills()} worker processes SIGKILLed (one per boundary), ${lost.length} results lost and rerun (${[...new Set(lost)].join(', ')})`);
  return entries;
}

function onceEach(journal: JournalEntry[]): string[] {
  const steps = journal.map((e) => `${e.step}:${e.outcome}`);
  const names = journal.map((e) => e.step);
  expect(names.filter((s, i) => names.indexOf(s) !== i)).toEqual([]);
  return steps;
}

/**
 * The humans at the gate, with one query: the gate is seen open through the DrApprovalPending search attribute
 * (the server answers that, no worker), then queried once for its challenge (the tokens' nonce), and approved by
 * signal by two people (acknowledging everything takes two), back to back. With no workflow cache a query replays
 * the whole history in a worker that may be between two kills; measured, polling the gate by query cost ~20 s per
 * gate here.
 */
async function approveOnceOpen(handle: WorkflowHandle): Promise<void> {
  for (let i = 0; ; i++) {
    const d = await handle.describe().catch(() => null);
    if (d?.typedSearchAttributes.get(DR_APPROVAL_PENDING) === true) break;
    if (i > 3000) throw new Error(`no approval gate opened in ${handle.workflowId}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const gate = await handle.query(getPendingApprovalQuery);
  for (const person of ['alice', 'bob']) {
    const idToken = await sandboxIdToken(person, approvalNonce(gate!.challenge!, 'approve'));
    await handle.signal(approveSignal, { idToken, ticket: 'CHAOS-1', acknowledgeDataLoss: true, acknowledgeUnconfirmedFence: true });
  }
}

/** When the last lost first attempt of `activity` finished: its effect was in place by then. */
const lostAt = (entries: ChaosEntry[], activity: string) => entries.filter((e) => e.activity === activity && e.outcome === 'lost-then-killed').pop()!.at;

describe('chaos: a worker SIGKILLed at every activity boundary', () => {
  afterAll(async () => {
    await deleteCluster(STANDBY);
    await deleteCluster(SOURCE);
  });

  it('provision-standby: finishes; the credentials were written once and the standby created once', async () => {
    await createSource(SOURCE, { members: 1 });
    await recordFault('worker SIGKILLed at every activity boundary of provision-standby', 'chaos worker process, after each activity (results of changing ones lost once)', async (observe) => {
      await withChaosWorkers({ kill: 'every', lose: LOSE, label: 'provision' }, async (w) => {
        const t0 = Date.now();
        const handle = await startRunbook(w.client, {
          workflowType: 'provisionStandby', runbook: RUNBOOK_NAMES.provisionStandby, cluster: STANDBY, taskQueue: w.taskQueue,
          input: { source: SOURCE, target: STANDBY, method: 'both', limits: { pollIntervalSeconds: 1 } },
        });
        const result = (await handle.result()) as ProvisionStandbyResult;
        expect(result.alreadyProvisioned).toBe(false);
        const steps = onceEach(await handle.query(getJournalQuery));
        // A rerun whose first result was lost finds its effect there: "already", never a second copy or cluster.
        expect(steps).toEqual([
          'validate-request:done', 'check-source:done', 'check-base-backup:done', 'check-target:done', 'write-marker:done',
          'copy-credentials:already', 'keep-standby-slot:already', 'create-standby:already', 'wait-for-replay:done', 'verify-marker:done', 'check-archive:done', 'measure-lag:done',
        ]);
        const entries = checkBoundaries(w, observe);

        // Independently of the journal: each secret file was last written before the (lost) copy's first attempt
        // ended, so its rerun wrote none (preflight's dry run is the earlier call); the standby's cluster record
        // dates from the first (lost) create.
        const dst = driverOf(STANDBY);
        const src = driverOf(SOURCE);
        const copiedAt = lostAt(entries, 'secretsCopyClusterSecrets');
        const users = await dst.driver.listSecretUsers(dst.cluster);
        expect(users.sort()).toEqual((await src.driver.listSecretUsers(src.cluster)).sort());
        for (const user of users) {
          expect(statSync(join(dst.driver.cfg.secretStore.dir, dst.cluster, `${user}.json`)).mtimeMs).toBeLessThanOrEqual(copiedAt);
        }
        const created = dst.driver.region.getCluster(dst.cluster)!;
        expect(Date.parse(created.createdAt)).toBeLessThanOrEqual(lostAt(entries, 'siteCreateStandbyCluster'));
        expect(await roleOf(STANDBY)).toBe('standby_leader');
        observe(`run succeeded in ${Math.round((Date.now() - t0) / 1000)} s; journal once each; ${users.length} secret files untouched by the rerun; one standby (uid ${created.uid.slice(0, 8)})`);
      });
    });
  });

  it('promote (unplanned, source reachable): finishes; the standby promoted once (timeline +1)', async () => {
    const before = await patroni(STANDBY);
    await recordFault('worker SIGKILLed at every activity boundary of promote (unplanned) and its child force-backup', 'chaos worker process, after each activity (results of changing ones lost once)', async (observe) => {
      await withChaosWorkers({ kill: 'every', lose: LOSE, label: 'promote' }, async (w) => {
        const t0 = Date.now();
        const handle = await startRunbook(w.client, {
          workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: STANDBY, taskQueue: w.taskQueue,
          // The first backup's boundaries are covered by the switchback below, which takes one.
          input: { cluster: STANDBY, mode: 'unplanned', approvalTimeoutSeconds: 600, takeBackup: false, limits: { regionTimeoutSeconds: 30 } },
        });
        await approveOnceOpen(handle);
        const result = (await handle.result()) as PromoteResult;
        expect(result.fence).toBe('CONFIRMED');
        const steps = onceEach(await handle.query(getJournalQuery));
        expect(steps).toEqual([
          'validate-request:done', 'requester:done', 'estimate-loss:done', 'check-lineage:done', 'fencing-epoch:done', 'fence-old-primary:done',
          // Trusting the unconfirmed fence takes two approvers: the first one's signature, then the decision.
          'approval-signature:waiting', 'approval:done', 'check-replay:done',
          'remove-standby-config:already', 'verify-writable:done', 'report:done',
        ]);
        checkBoundaries(w, observe);

        // Independently: Patroni's own timeline history grew by exactly one switch (one promotion).
        const after = await patroni(STANDBY);
        expect(after.timeline).toBe(before.timeline + 1);
        expect(after.history.length).toBe(before.history.length + 1);
        expect(result.timelineAfter).toBe(after.timeline);
        // The fenced old primary takes no write.
        await expect(sql(SOURCE, 'INSERT INTO public.writes (id) VALUES (-1)')).rejects.toThrow();
        observe(`run succeeded in ${Math.round((Date.now() - t0) / 1000)} s; journal once each; Patroni timeline ${before.timeline} -> ${after.timeline}, history +1; fenced old primary refused an INSERT`);
      });
    });
  });

  it('failback-reseed (reseed, then the planned switchback): one wipe, one promotion each way', async () => {
    const us = await patroni(STANDBY);
    const uids = new Set<string>([uidOf(SOURCE)!]);
    const watch = setInterval(() => {
      const u = uidOf(SOURCE);
      if (u) uids.add(u);
    }, 100);
    await recordFault('worker SIGKILLed at every activity boundary of failback-reseed (reseed + switchback promote, planned)', 'chaos worker process, after each activity (results of changing ones lost once)', async (observe) => {
      try {
        await withChaosWorkers({ kill: 'every', lose: LOSE, label: 'failback' }, async (w) => {
          const t0 = Date.now();
          const handle = await startRunbook(w.client, {
            workflowType: 'failbackReseed', runbook: RUNBOOK_NAMES.failbackReseed, cluster: SOURCE, taskQueue: w.taskQueue,
            input: { primary: STANDBY, formerPrimary: SOURCE, strategy: 'reseed', switchBack: true, approvalTimeoutSeconds: 600 },
          });
          await approveOnceOpen(handle);
          const child: WorkflowHandle = w.client.workflow.getHandle(`promote/${SOURCE}`);
          await approveOnceOpen(child);
          const result = (await handle.result()) as FailbackResult;
          expect(result).toMatchObject({ strategy: 'reseed', alreadyRejoined: false });
          const steps = onceEach(await handle.query(getJournalQuery));
          const childSteps = onceEach(await child.query(getJournalQuery));
          process.stdout.write(`[chaos failback] ${steps.join(' ')} | switchback ${childSteps.join(' ')}\n`);
          expect(steps.map((s) => s.split(':')[0])).toEqual(expect.arrayContaining(['approval', 'credential-parity', 'reseed', 'catch-up', 'switch-back', 'report']));
          expect(childSteps.map((s) => s.split(':')[0])).toEqual(expect.arrayContaining(['fence-old-primary', 'catch-up', 'remove-standby-config', 'verify-writable', 'rejoin-old-primary', 'first-backup']));
          checkBoundaries(w, observe);

          // One wipe: the former primary went through exactly one new incarnation (uid), watched from outside
          // every 100 ms and confirmed by the archive prefixes in S3.
          expect(uids.size).toBe(2);
          const { driver, cluster } = driverOf(SOURCE);
          const s3 = driver.cfg.s3;
          const prefixes = new Set((await listKeys(s3, s3.bucket, `${splitS3Url(driver.region.getCluster(cluster)!.archivePrefix!).key.split('/').slice(0, 2).join('/')}/`))
            .map((k) => k.split('/')[2]));
          expect(prefixes.size).toBe(2);
          // One promotion back: eu is exactly one timeline past the us timeline it was reseeded from.
          const eu = await patroni(SOURCE);
          expect(eu.timeline).toBe(us.timeline + 1);
          // us follows eu now: it replays eu's timeline, it did not promote again.
          expect((await patroni(STANDBY)).timeline).toBe(eu.timeline);
          expect(await roleOf(SOURCE)).toBe('primary');
          expect(await roleOf(STANDBY)).toBe('standby_leader');
          // One backup per backup taken: us's for the reseed (promote ran without one) and eu's first on its new
          // timeline (the switchback's); backup-push is never lost-and-rerun here (a rerun takes a fresh one).
          for (const [ref, timeline] of [[STANDBY, us.timeline], [SOURCE, eu.timeline]] as const) {
            const facts = (await driverOf(ref).driver.describeCluster(driverOf(ref).cluster))!;
            expect((await listCompleteBackups(facts.archive.s3, facts.archive.walPrefix)).filter((b) => b.timeline === timeline).length).toBe(1);
          }
          observe(`run succeeded in ${Math.round((Date.now() - t0) / 1000)} s; journals once each; ${uids.size - 1} wipe (uids seen ${uids.size}, archive prefixes ${prefixes.size}); eu timeline ${eu.timeline} = us ${us.timeline} + 1`);
        });
      } finally {
        clearInterval(watch);
      }
    });
  });
});
