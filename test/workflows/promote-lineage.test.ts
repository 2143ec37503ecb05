// promote's lineage check against real parts: a standby whose data is another cluster's, an archive the standby has
// not replayed yet, and an S3 that stalls for the standby's restore_command only.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { getPendingApprovalQuery, type PendingApproval } from '../../workflows/contracts/approvals';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { lsnAtOrAfter } from '../../workflows/contracts/lsn';
import { RUNBOOK_NAMES, type PromoteInput, type PromoteResult } from '../../workflows/contracts/runbooks';
import { lastArchivedWal, listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { approveIfAskedAgain, approveWhenAsked, signalDecision } from '../helpers/approvals';
import { deleteCluster, driverOf, roleOf, sql, switchWalAndWaitArchived } from '../helpers/clusters';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createSource } from '../helpers/standby-pair';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const startPromote = (h: RunbookHarness, input: PromoteInput) =>
  startRunbook(h.client, { workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: input.cluster, input, taskQueue: h.taskQueue });

const systemId = async (ref: string) => (await sql<{ id: string }>(ref, 'SELECT system_identifier::text AS id FROM pg_control_system()'))[0].id;
const inRecovery = async (ref: string) => (await sql<{ r: boolean }>(ref, 'SELECT pg_is_in_recovery() AS r'))[0].r;

/** A standby of `sourceRef` at us that replays `archiveOf`'s archive only (no streaming), one member. */
async function archiveStandby(standbyRef: string, sourceRef: string, archiveOf = sourceRef): Promise<void> {
  const from = driverOf(archiveOf);
  const dst = driverOf(standbyRef);
  for (const user of await from.driver.listSecretUsers(from.cluster)) {
    await dst.driver.writeSecret(dst.cluster, user, (await from.driver.readSecret(from.cluster, user))!);
  }
  const facts = (await from.driver.describeCluster(from.cluster))!;
  const backup = (await listCompleteBackups(facts.archive.s3, facts.archive.walPrefix)).pop()!;
  await dst.driver.createStandbyCluster({
    cluster: dst.cluster, sourceRef, like: { pgVersion: 15, instances: 1 },
    // What provision-standby records: the source's identity as seen live (here X's, while the data is archiveOf's).
    sourceLineage: { systemIdentifier: await systemId(sourceRef), timeline: 1 },
    fromArchive: { archive: facts.archive, backupName: backup.name },
  });
}

/** An S3 endpoint that accepts connections and never answers, put in front of one standby's restore_command only. */
async function stallRestore(standbyRef: string): Promise<() => Promise<void>> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const { driver, cluster } = driverOf(standbyRef);
  const envFile = join(driver.cfg.dataDir, 'clusters', cluster, 'walg', 'standby.env');
  const original = readFileSync(envFile, 'utf8');
  if (!/^AWS_ENDPOINT=/m.test(original)) throw new Error(`${envFile} names no AWS_ENDPOINT to stall`);
  writeFileSync(envFile, original.replace(/^AWS_ENDPOINT=.*$/m, `AWS_ENDPOINT='http://127.0.0.1:${port}'`));
  return async () => {
    writeFileSync(envFile, original);
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
}

/** Rows 1..n on the source, switched into the archive, then the source region stops. Returns the archive's end. */
async function writeArchiveAndStop(sourceRef: string, n: number): Promise<string> {
  await sql(sourceRef, `INSERT INTO public.writes (id) SELECT g FROM generate_series(1, ${n}) g`);
  await switchWalAndWaitArchived(sourceRef);
  const src = driverOf(sourceRef);
  const facts = (await src.driver.describeCluster(src.cluster))!;
  await src.driver.region.stopCluster(src.cluster);
  return (await lastArchivedWal(facts.archive.s3, facts.archive.walPrefix))!.endLsn;
}

/** The next gate opened after `after` (another openedAt), or null when the run closed without one. */
async function nextGate(handle: WorkflowHandle, after: PendingApproval): Promise<PendingApproval | null> {
  for (;;) {
    const gate = await handle.query(getPendingApprovalQuery).catch(() => null);
    if (gate && gate.openedAt !== after.openedAt) return gate;
    if ((await handle.describe()).status.name !== 'RUNNING') return null;
    await sleep(250);
  }
}

async function replayLsn(ref: string): Promise<string> {
  return (await sql<{ l: string }>(ref, 'SELECT pg_last_wal_replay_lsn()::text AS l'))[0].l;
}

describe('promote: lineage', () => {
  const clusters: string[] = [];
  afterAll(async () => {
    for (const c of clusters.reverse()) await deleteCluster(c);
  });

  it('refuses a standby built from another cluster\'s backup, naming both system identifiers; it stays in recovery', async () => {
    const [x, y, standby] = ['eu/acid-lnx', 'eu/acid-lny', 'us/acid-lnx'];
    clusters.push(x, y, standby);
    await createSource(x, { members: 1 });
    await createSource(y, { members: 1 });
    await archiveStandby(standby, x, y);
    const [xId, yId] = [await systemId(x), await systemId(y)];
    expect(xId).not.toBe(yId);
    expect(await systemId(standby)).toBe(yId);

    await withRunbookWorkers(async (h) => {
      const handle = await startPromote(h, { cluster: standby, mode: 'unplanned', takeBackup: false, limits: { regionTimeoutSeconds: 5 } });
      // A human approves whatever gate opens, so a check that let the wrong standby through would promote it here
      // (and fail the assertions below) instead of leaving the run waiting.
      const approving = approveIfAskedAgain(handle, 'alice').catch(() => undefined);
      const err = await handle.result().then(() => undefined, (e: unknown) => e);
      await approving;
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as { type?: string; message: string };
      expect(cause.type).toBe('PreconditionFailedError');
      expect(cause.message).toContain(xId);
      expect(cause.message).toContain(yId);
      const steps = (await handle.query(getJournalQuery)).map((e) => e.step);
      expect(steps).not.toContain('fence-old-primary');
      expect(steps).not.toContain('remove-standby-config');
    });
    // Nothing changed: the standby is still replaying, and still is after a while; its source was not fenced.
    expect(await roleOf(standby)).toBe('standby_leader');
    expect(await inRecovery(standby)).toBe(true);
    await sleep(60_000);
    expect(await roleOf(standby)).toBe('standby_leader');
    expect(await inRecovery(standby)).toBe(true);
    expect(await roleOf(x)).toBe('primary');
  });

  it('unplanned from the archive: waits until the standby replayed the archive\'s newest segment, then promotes with every archived row', async () => {
    const [source, standby] = ['eu/acid-lnw', 'us/acid-lnw'];
    clusters.push(source, standby);
    await createSource(source, { members: 1 });
    await archiveStandby(standby, source);
    const unstall = await stallRestore(standby);
    let stalled = true;
    try {
      const archiveEnd = await writeArchiveAndStop(source, 500);
      expect(lsnAtOrAfter(await replayLsn(standby), archiveEnd)).toBe(false);
      await withRunbookWorkers(async (h) => {
        const handle = await startPromote(h, {
          cluster: standby, mode: 'unplanned', takeBackup: false, approvalTimeoutSeconds: 600,
          limits: { regionTimeoutSeconds: 3, catchUpTimeoutSeconds: 600 },
        });
        await approveWhenAsked(handle, 'bob');
        // Approved, but the archive is not replayed yet: the standby must still be in recovery.
        await sleep(5_000);
        expect(await inRecovery(standby)).toBe(true);
        await unstall();
        stalled = false;
        const result = (await handle.result()) as PromoteResult;
        expect(result.alreadyPromoted).toBe(false);
        // Every archived row is on the promoted cluster, and it was promoted only past the archive's end.
        expect(await roleOf(standby)).toBe('primary');
        const rows = await sql<{ n: string }>(standby, 'SELECT count(*) AS n FROM public.writes WHERE id BETWEEN 1 AND 500');
        expect(Number(rows[0].n)).toBe(500);
        const check = (await handle.query(getJournalQuery)).find((e) => e.step === 'check-replay');
        expect(check).toMatchObject({ outcome: 'done' });
        expect(lsnAtOrAfter(String(check!.facts!.replayedLsn), archiveEnd)).toBe(true);
      }, { sites: ['us'] });
    } finally {
      if (stalled) await unstall();
    }
  });

  it('S3 stalled for the standby during an archive promotion: not promoted early; the gate asks again with the measured loss', async () => {
    const [source, standby] = ['eu/acid-lns', 'us/acid-lns'];
    clusters.push(source, standby);
    await createSource(source, { members: 1 });
    await archiveStandby(standby, source);
    const unstall = await stallRestore(standby);
    try {
      const archiveEnd = await writeArchiveAndStop(source, 500);
      await withRunbookWorkers(async (h) => {
        const handle = await startPromote(h, {
          cluster: standby, mode: 'unplanned', takeBackup: false, approvalTimeoutSeconds: 600,
          limits: { regionTimeoutSeconds: 3, catchUpTimeoutSeconds: 30 },
        });
        const first = await approveWhenAsked(handle, 'carol');
        const again = await nextGate(handle, first);
        expect(again).not.toBeNull();
        expect(again!.plan).toMatch(/replayed only to/);
        expect(again!.estimate).toMatchObject({ basis: 'archive', sourceLsn: archiveEnd });
        expect(again!.estimate!.bytes).toBeGreaterThan(0);
        expect(again!.requires.acknowledgeDataLoss).toBe(true);
        expect(await inRecovery(standby)).toBe(true);
        await signalDecision(handle, false, ['dana'], { ticket: 'INC-15', comment: 'wait for S3' }, again!);
        const err = await handle.result().then(() => undefined, (e: unknown) => e);
        expect(((err as WorkflowFailedError).cause as { type?: string }).type).toBe('ApprovalRejectedError');
      }, { sites: ['us'] });
      expect(await roleOf(standby)).toBe('standby_leader');
      expect(await inRecovery(standby)).toBe(true);
    } finally {
      await unstall();
    }
  });
});
