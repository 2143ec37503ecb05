// failback-reseed against real parts: after an unplanned promotion, the old site comes back as a standby of the
// promoted cluster (rewind or reseed), and the switchback restores the original topology with zero loss.
import { startRunbook } from '../../scripts/lib/runbook-client';
import { approveIfAskedAgain, approveWhenAsked, signalDecision } from '../helpers/approvals';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type FailbackInput, type FailbackResult, type PromoteResult } from '../../workflows/contracts/runbooks';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { driverOf, roleOf, sql } from '../helpers/clusters';
import { createSource, createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { listCompleteBackups, splitS3Url } from '../../activities/s3/backup-catalogue';
import { listKeys } from '../../activities/sites/local/s3-server';
import type { ReseedRequest, SiteDriver } from '../../activities/sites/site-driver';
import { startWriter } from '../helpers/writer';
import { saveHistory } from '../helpers/histories';
import { testLayout } from '../helpers/test-env';
import { lastForkOf, partitionStandby, removeArchivedWalSegments, removeWalSegmentHolding, writeDivergentRows } from '../../scripts/lib/sandbox/faults';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ids = async (ref: string) => new Set((await sql<{ id: string }>(ref, 'SELECT id FROM public.writes')).map((r) => Number(r.id)));

/**
 * The source region is lost (its cluster stops, no worker serves it) and the standby is promoted, unplanned.
 * With `diverge`, a partition first cuts the standby off and the source writes rows it never gets.
 */
async function loseSourceAndPromote(pair: StandbyPair, opts: { diverge?: boolean } = {}) {
  const writer = await startWriter(pair.source);
  await sleep(2000);
  const src = driverOf(pair.source);
  const dst = driverOf(pair.standby);
  let divergent: number[] = [];
  if (opts.diverge) {
    await writer.stop();
    const port = (await src.driver.describeCluster(src.cluster))!.streamingEndpoint.port;
    await partitionStandby(dst.driver, dst.cluster, port, testLayout().portBase + 4999);
    divergent = await writeDivergentRows(src.driver, src.cluster);
    await sleep(1000);
  }
  await src.driver.region.stopCluster(src.cluster);
  await writer.stop();
  const promoted = await withRunbookWorkers(async (h) => {
    const handle = await startRunbook(h.client, {
      workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: pair.standby, taskQueue: h.taskQueue,
      input: { cluster: pair.standby, mode: 'unplanned', limits: { regionTimeoutSeconds: 3, catchUpTimeoutSeconds: 5 }, takeBackup: false },
    });
    await approveWhenAsked(handle, 'alice');
    // Cut off, the standby may not replay all the divergent WAL the source archived: then promote asks again with
    // the loss it measured, which must be acknowledged.
    const again = opts.diverge ? await approveIfAskedAgain(handle, 'alice') : null;
    if (again) expect(again.requires.acknowledgeDataLoss).toBe(true);
    return (await handle.result()) as PromoteResult;
  }, { sites: ['us'] });
  expect(promoted.fence).toBe('UNCONFIRMED');
  // The promoted side keeps taking writes while the old region is away.
  for (let i = 1; i <= 20; i++) await sql(pair.standby, 'INSERT INTO public.writes (id) VALUES ($1)', [100_000 + i]);
  return { acknowledged: writer.acknowledged, divergent, promoted };
}

function startFailback(h: RunbookHarness, input: FailbackInput) {
  return startRunbook(h.client, {
    workflowType: 'failbackReseed', runbook: RUNBOOK_NAMES.failbackReseed, cluster: input.formerPrimary, input, taskQueue: h.taskQueue,
  });
}

describe('failback-reseed', () => {
  const pairs: StandbyPair[] = [];
  afterAll(async () => {
    for (const p of pairs) await deleteStandbyPair(p);
  });

  it('the whole DR cycle: provision, lose eu under a writer, promote us, eu comes back fenced, rewind, switch back', async () => {
    const pair = { source: 'eu/acid-cy', standby: 'us/acid-cy' };
    pairs.push(pair);
    await createSource(pair.source);
    const eu = driverOf(pair.source);
    let writer = await startWriter(pair.source);
    const t: Record<string, number> = {};
    await withRunbookWorkers(async (h) => {
      const provision = await startRunbook(h.client, {
        workflowType: 'provisionStandby', runbook: RUNBOOK_NAMES.provisionStandby, cluster: pair.standby, taskQueue: h.taskQueue,
        input: { source: pair.source, target: pair.standby, method: 'both', limits: { pollIntervalSeconds: 1 } },
      });
      await provision.result();
    });
    await sleep(2000);
    // Region eu is lost: its cluster and its etcd stop, and no eu worker serves its queue.
    await eu.driver.region.stopCluster(eu.cluster);
    await eu.driver.region.stopEtcd();
    await writer.stop();
    const committedOnEu = writer.acknowledged;

    await withRunbookWorkers(async (h) => {
      const promote = await startRunbook(h.client, {
        workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: pair.standby, taskQueue: h.taskQueue,
        input: { cluster: pair.standby, mode: 'unplanned', limits: { regionTimeoutSeconds: 3 } },
      });
      const gate = await approveWhenAsked(promote, 'alice');
      const promoted = (await promote.result()) as PromoteResult;
      expect(promoted.fence).toBe('UNCONFIRMED');
      expect(promoted.fenceGuard).toBe(`fence-guard/${pair.source}`);
      t.unplannedRtoMs = promoted.rtoMs!;

      // Writes go on in us while eu is away.
      writer = await startWriter(pair.standby, 20, 1_000_000);
      await sleep(2000);
      await writer.stop();
      const committedOnUs = writer.acknowledged;

      // eu comes back: etcd, then its worker; the guard fences the old primary before Patroni starts Postgres.
      await eu.driver.region.startEtcd();
      await h.addSiteWorker('eu');
      const guard = (await h.client.workflow.getHandle(promoted.fenceGuard!).result()) as { fenced: boolean };
      expect(guard.fenced).toBe(true);
      await eu.driver.region.startCluster(eu.cluster);
      await sleep(5000);
      await expect(sql(pair.source, 'INSERT INTO public.writes (id) VALUES (-42)')).rejects.toThrow();

      const failback = await startFailback(h, { primary: pair.standby, formerPrimary: pair.source, strategy: 'auto', switchBack: true });
      await approveWhenAsked(failback, 'alice');
      // The switchback happens under a client that follows the primary: no write it was told committed is lost.
      writer = await startWriter([pair.standby, pair.source], 20, 2_000_000);
      await approveWhenAsked(h.client.workflow.getHandle(`promote/${pair.source}`), 'alice');
      const result = (await failback.result()) as FailbackResult;
      await sleep(1000);
      await writer.stop();
      const committedAcrossSwitchback = writer.acknowledged;
      expect(result.strategy).toBe('rewind');
      expect(await roleOf(pair.source)).toBe('primary');
      expect(await roleOf(pair.standby)).toBe('standby_leader');

      // Every row a writer was told was committed is on the final primary, but what the loss estimate named.
      const final = await ids(pair.source);
      const lostOnEu = committedOnEu.filter((id) => !final.has(id));
      expect(committedOnUs.filter((id) => !final.has(id))).toEqual([]);
      expect(committedAcrossSwitchback.filter((id) => !final.has(id))).toEqual([]);
      expect(committedAcrossSwitchback.length).toBeGreaterThan(10);
      expect(committedOnUs.length).toBeGreaterThan(10);
      if (gate.estimate?.bytes === 0) expect(lostOnEu).toEqual([]);
      // Both regions have proven backups of their own timelines.
      for (const ref of [pair.source, pair.standby]) {
        const { driver, cluster } = driverOf(ref);
        const facts = (await driver.describeCluster(cluster))!;
        expect((await listCompleteBackups(facts.archive.s3, facts.archive.walPrefix)).length).toBeGreaterThan(0);
      }
      process.stdout.write(`[dr-cycle] committed on eu ${committedOnEu.length}, lost ${lostOnEu.length} (estimate ${JSON.stringify(gate.estimate)}); ` +
        `committed on us ${committedOnUs.length}; unplanned RTO ${t.unplannedRtoMs} ms; failback ${result.strategy} rewound=${result.rewound} ` +
        `phases ${JSON.stringify(result.phaseDurationsMs)}; switchback RTO ${result.switchBack?.rtoMs} ms, writes stopped ${result.switchBack?.writeDowntimeMs} ms ` +
        `(longest gap a client saw ${writer.longestGapMs()} ms, ${committedAcrossSwitchback.length} rows committed across it, 0 missing), LSNs ${result.switchBack?.estimate?.sourceLsn} -> ${result.switchBack?.estimate?.standbyReplayedLsn}\n`);
    }, { sites: ['us'] });
  });

  it('rewinds the old primary into a standby of the promoted cluster, then switches back with zero loss', async () => {
    const pair = await createStandbyPair('fb');
    pairs.push(pair);
    const { acknowledged } = await loseSourceAndPromote(pair);
    // The old site's replication credentials drifted while it was away: failback must put the primary's back.
    const former = driverOf(pair.source);
    await former.driver.writeSecret(former.cluster, 'standby', { username: 'standby', password: 'drifted-while-away' });
    await withRunbookWorkers(async (h) => {
      const handle = await startFailback(h, { primary: pair.standby, formerPrimary: pair.source, strategy: 'auto', switchBack: false });
      const gate = await approveWhenAsked(handle, 'alice');
      expect(gate.gate).toBe('failback');
      const result = (await handle.result()) as FailbackResult;
      expect(result).toMatchObject({ strategy: 'rewind', alreadyRejoined: false });
      expect(result.forkLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(await roleOf(pair.source)).toBe('standby_leader');
      // Everything the promoted side has, including what it took while the old region was away, is on the old side.
      const onFormer = await ids(pair.source);
      for (const id of await ids(pair.standby)) expect(onFormer.has(id)).toBe(true);
      process.stdout.write(`[failback rewind] fork ${result.forkLsn}, divergent ${result.divergentBytes} bytes, rewound ${result.rewound}, phases ${JSON.stringify(result.phaseDurationsMs)}\n`);
      const journal = await handle.query(getJournalQuery);
      expect(journal.map((e) => e.step)).toEqual(expect.arrayContaining(['assess-former-primary', 'choose-strategy', 'approval', 'credential-parity', 'rewind', 'catch-up']));
      expect(journal.find((e) => e.step === 'credential-parity')).toMatchObject({ outcome: 'done', message: expect.stringContaining('standby') });
      const primarySide = driverOf(pair.standby);
      expect(await former.driver.readSecret(former.cluster, 'standby')).toEqual(await primarySide.driver.readSecret(primarySide.cluster, 'standby'));
      await saveHistory(handle, 'failback-reseed.rewind');

      // Switch back: the old side is already a standby, so only the planned switchover runs (its own approval).
      const back = await startFailback(h, { primary: pair.standby, formerPrimary: pair.source, strategy: 'auto', switchBack: true });
      const child = h.client.workflow.getHandle(`promote/${pair.source}`);
      await approveWhenAsked(child, 'alice');
      const final = (await back.result()) as FailbackResult;
      expect(final.alreadyRejoined).toBe(true);
      expect(final.switchBack).toMatchObject({ fence: 'CONFIRMED', measuredRpoBytes: 0 });
      expect(await roleOf(pair.source)).toBe('primary');
      expect(await roleOf(pair.standby)).toBe('standby_leader');
      const finalIds = await ids(pair.source);
      expect(acknowledged.filter((id) => !finalIds.has(id))).toEqual([]);
      for (let i = 1; i <= 20; i++) expect(finalIds.has(100_000 + i)).toBe(true);
      process.stdout.write(`[switchback] LSNs ${final.switchBack!.estimate?.sourceLsn} -> ${final.switchBack!.estimate?.standbyReplayedLsn}, RTO ${final.switchBack!.rtoMs} ms, backup ${final.switchBack!.backup?.backupName}\n`);
      await saveHistory(back, 'failback-reseed.switchback');
    });
  });

  it('reseeds when asked to, from the promoted cluster\'s backup, and the old side follows it', async () => {
    const pair = await createStandbyPair('rs');
    pairs.push(pair);
    await loseSourceAndPromote(pair);
    const former = driverOf(pair.source);
    const before = former.driver.region.getCluster(former.cluster);
    await withRunbookWorkers(async (h) => {
      // A rejected reseed destroys nothing: same cluster files, no reseed step.
      const rejected = await startFailback(h, { primary: pair.standby, formerPrimary: pair.source, strategy: 'reseed' });
      await signalDecision(rejected, false, ['bob'], { ticket: 'INC-78', comment: 'not before the audit' });
      const err = await rejected.result().then(() => undefined, (e: unknown) => e as { cause?: { type?: string } });
      expect(err?.cause?.type).toBe('ApprovalRejectedError');
      expect((await rejected.query(getJournalQuery)).map((e) => e.step)).not.toContain('reseed');
      expect(former.driver.region.getCluster(former.cluster)).toEqual(before);
      expect(await roleOf(pair.source)).not.toBe('standby_leader');

      // Two backups of the promoted primary, so that the retention step after the rejoin has one to delete.
      const primary = driverOf(pair.standby);
      const primaryArchive = (await primary.driver.describeCluster(primary.cluster))!.archive;
      const primaryBackups = async () => (await listCompleteBackups(primaryArchive.s3, primaryArchive.walPrefix)).map((b) => b.name);
      while ((await primaryBackups()).length < 2) expect((await primary.driver.region.backupPush(primary.cluster)).exitCode).toBe(0);
      const backupsBefore = await primaryBackups();

      const handle = await startFailback(h, { primary: pair.standby, formerPrimary: pair.source, strategy: 'reseed', retainBackups: 1 });
      await approveWhenAsked(handle, 'bob');
      const result = (await handle.result()) as FailbackResult;
      expect(result.strategy).toBe('reseed');
      expect(await roleOf(pair.source)).toBe('standby_leader');
      const onFormer = await ids(pair.source);
      for (const id of await ids(pair.standby)) expect(onFormer.has(id)).toBe(true);
      // retainBackups: 1 ran last, on the primary's own prefix: only its newest backup (the one reseeded from) is left.
      expect(result.retention).toMatchObject({ cluster: pair.standby, changed: true, keepApplied: 1 });
      expect(result.retention!.kept.map((b) => b.name)).toEqual([backupsBefore[backupsBefore.length - 1]]);
      expect(await primaryBackups()).toEqual([backupsBefore[backupsBefore.length - 1]]);
      const steps = (await handle.query(getJournalQuery)).map((e) => `${e.step}:${e.outcome}`);
      expect(steps.slice(-2)).toEqual(['retention:done', 'report:done']);
      process.stdout.write(`[failback reseed] phases ${JSON.stringify(result.phaseDurationsMs)}\n`);
      await saveHistory(handle, 'failback-reseed.reseed');
    });
  });
  it('auto falls back to the approved reseed when pg_rewind fails (its WAL gone); the quarantine is in S3 before the wipe; a crash after the wipe is retried', async () => {
    const pair = await createStandbyPair('ri');
    pairs.push(pair);
    const { acknowledged, divergent, promoted } = await loseSourceAndPromote(pair, { diverge: true });
    const former = driverOf(pair.source);
    const primarySide = driverOf(pair.standby);
    // The WAL back to the fork point is gone from the former primary, as if recycled, and from its own archive, where
    // pg_rewind --restore-target-wal would fetch it during the demotion: a rewind cannot work.
    const fork = await lastForkOf(primarySide.driver, primarySide.cluster, promoted.timelineAfter);
    const lost = removeWalSegmentHolding(former.driver, former.cluster, fork.timeline, fork.lsn);
    expect(lost.length).toBeGreaterThan(0);
    expect(await removeArchivedWalSegments(former.driver, former.cluster, lost)).not.toEqual([]);
    const oldPrefix = (await former.driver.describeCluster(former.cluster))!.archive.walPrefix;
    const s3 = former.driver.cfg.s3;
    const keysUnder = (url: string) => listKeys(s3, s3.bucket, `${splitS3Url(url).key}/`);
    const oldArchive = await keysUnder(oldPrefix);

    // At the wipe: what is in the quarantine already. The first attempt dies right after the wipe, as a worker would.
    const atWipe: string[][] = [];
    const asked: ReseedRequest[] = [];
    const crashAfterWipe = (driver: SiteDriver): SiteDriver => Object.assign(Object.create(driver) as SiteDriver, {
      reseedAsStandby: async (cluster: string, req: ReseedRequest, onProgress?: (d: string) => void) => {
        asked.push(req);
        atWipe.push(await listKeys(s3, s3.bucket, `quarantine/${cluster}/`));
        return driver.reseedAsStandby(cluster, req, (d) => {
          if (atWipe.length === 1 && d.startsWith('bootstrap')) throw new Error('simulated worker crash right after the wipe');
          onProgress?.(d);
        });
      },
    });
    await withRunbookWorkers(async (h) => {
      const handle = await startFailback(h, { primary: pair.standby, formerPrimary: pair.source, strategy: 'auto', switchBack: true });
      const gate = await approveWhenAsked(handle, 'alice');
      expect(gate.plan).toMatch(/should pg_rewind fail, WIPE and reseed it/);
      expect(gate.requires.acknowledgeDataLoss).toBe(true);
      await approveWhenAsked(h.client.workflow.getHandle(`promote/${pair.source}`), 'alice');
      const result = (await handle.result()) as FailbackResult;
      expect(result).toMatchObject({ strategy: 'reseed', rewound: false, alreadyRejoined: false });
      expect(result.choiceReason).toMatch(/pg_rewind failed, so reseeded as approved/);

      const journal = await handle.query(getJournalQuery);
      const steps = journal.map((e) => `${e.step}:${e.outcome}`);
      expect(steps).toEqual(expect.arrayContaining(['choose-strategy:done', 'quarantine:done', 'approval:done', 'rewind:failed', 'reseed:done']));
      expect(steps.filter((x) => x.startsWith('reseed:'))).toEqual(['reseed:done']);
      expect(steps.indexOf('quarantine:done')).toBeLessThan(steps.indexOf('reseed:done'));
      // The quarantine (manifest and WAL) was in S3 before the first attempt wiped anything.
      expect(atWipe.length).toBe(2);
      const manifestKey = splitS3Url(result.quarantine!.manifest).key;
      expect(atWipe[0]).toContain(manifestKey);
      expect(atWipe[0].filter((k) => k !== manifestKey).length).toBe(result.quarantine!.objects);

      // The reseeded cluster is a new incarnation with its own archive; the old prefix, diverged timeline and
      // all, is untouched.
      const reseedStep = journal.find((e) => e.step === 'reseed')!;
      const newPrefix = (await former.driver.describeCluster(former.cluster))!.archive.walPrefix;
      expect(newPrefix).not.toBe(oldPrefix);
      expect(reseedStep.facts).toMatchObject({ walPrefix: newPrefix, previousWalPrefix: oldPrefix });
      expect(await keysUnder(oldPrefix)).toEqual(expect.arrayContaining(oldArchive));
      // Both attempts carried the assessed system for the driver's re-check at the stop; the old data was set aside
      // (by the first attempt) and removed once the new standby replayed, and the journal says where it was.
      const assessed = journal.find((e) => e.step === 'assess-former-primary')!.facts!.systemIdentifier as string;
      expect(assessed).toMatch(/^\d+$/);
      expect(asked.map((r) => r.assessedSystemIdentifier)).toEqual([assessed, assessed]);
      expect(reseedStep.facts).toMatchObject({ oldData: { removed: true } });
      const kept = (reseedStep.facts!.oldData as { location: string }).location;
      expect(reseedStep.message).toContain(`The old data was kept at ${kept} and removed once the new standby replayed`);

      // Switched back: the former primary leads with everything the promoted side had, and nothing it alone wrote.
      expect(await roleOf(pair.source)).toBe('primary');
      expect(await roleOf(pair.standby)).toBe('standby_leader');
      const final = await ids(pair.source);
      expect(acknowledged.filter((id) => !final.has(id))).toEqual([]);
      for (let i = 1; i <= 20; i++) expect(final.has(100_000 + i)).toBe(true);
      expect(divergent.filter((id) => final.has(id))).toEqual([]);
      expect(result.switchBack).toMatchObject({ fence: 'CONFIRMED', measuredRpoBytes: 0 });
      const backups = await listCompleteBackups(s3, newPrefix);
      expect(backups.map((b) => b.name)).toContain(result.switchBack!.backup!.backupName);
      process.stdout.write(`[failback rewind impossible] fork ${fork.lsn} (timeline ${fork.timeline}), divergent ${result.divergentBytes} bytes kept in ${result.quarantine!.objects} objects, ` +
        `archive ${oldPrefix} -> ${newPrefix}, phases ${JSON.stringify(result.phaseDurationsMs)}\n`);
      await saveHistory(handle, 'failback-reseed.rewind-failed');
    }, { wrapDriver: crashAfterWipe });
  });
});
