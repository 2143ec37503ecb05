// force-backup against real parts: Temporal dev server, Patroni/Postgres 15 clusters, WAL-G v3.0.9 uploading to
// S3. Every claim is checked in S3 independently of the runbook (listCompleteBackups).
import type { WorkflowHandle } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { createRunBaseBackup } from '../../activities/walg/run-base-backup';
import { createDriverFactory } from '../../activities/sites';
import { loadSites } from '../../activities/sites/sites-file';
import type { SiteDriver } from '../../activities/sites/site-driver';
import { getJournalQuery, getStatusQuery, type JournalEntry } from '../../workflows/contracts/journal';
import { lsnAtOrAfter } from '../../workflows/contracts/lsn';
import { RUNBOOK_NAMES, type ForceBackupInput, type ForceBackupResult } from '../../workflows/contracts/runbooks';
import { DR_OUTCOME } from '../../workflows/contracts/search-attributes';
import { PreconditionFailedError } from '../../workflows/contracts/errors';
import { failureOf } from '../helpers/failures';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { deleteCluster, driverOf, sql } from '../helpers/clusters';
import { saveHistory } from '../helpers/histories';
import { testLayout } from '../helpers/test-env';

const PRIMARY = 'eu/acid-demo';
const STANDBY = 'us/acid-fb-standby';

const start = (h: RunbookHarness, input: ForceBackupInput) => startRunbook(h.client, {
  workflowType: 'forceBackup', runbook: RUNBOOK_NAMES.forceBackup, cluster: String(input.cluster), input, taskQueue: h.taskQueue,
});
const steps = (journal: JournalEntry[]) => journal.map((e) => `${e.step}:${e.outcome}`);
const outcome = async (handle: WorkflowHandle) => (await handle.describe()).typedSearchAttributes.get(DR_OUTCOME);

async function backupsOf(ref: string) {
  const { driver, cluster } = driverOf(ref);
  const { archive } = (await driver.describeCluster(cluster))!;
  return listCompleteBackups(archive.s3, archive.walPrefix);
}

const leaderLsn = async (ref: string) => (await sql<{ lsn: string }>(ref, 'SELECT pg_current_wal_lsn()::text AS lsn'))[0].lsn;
// The demo source's timeline is whatever its history made it (another test's etcd outage may have failed it over).
const leaderTimeline = async (ref: string) =>
  (await sql<{ tli: number }>(ref, "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli"))[0].tli;

/** The failure a refused or failed run ended with: its ApplicationFailure under the workflow failure. */
describe('force-backup', () => {
  let taken: ForceBackupResult;

  afterAll(async () => {
    await deleteCluster(STANDBY);
  });

  it('takes a full base backup of a primary and proves it by its sentinel in S3', async () => {
    const before = await backupsOf(PRIMARY);
    const lsnBefore = await leaderLsn(PRIMARY);
    const timeline = await leaderTimeline(PRIMARY);
    await withRunbookWorkers(async (h) => {
      const handle = await start(h, { cluster: PRIMARY });
      taken = (await handle.result()) as ForceBackupResult;
      expect(steps(await handle.query(getJournalQuery))).toEqual(
        ['validate-request:done', 'check-existing:done', 'check-archiving:done', 'run-backup:done', 'prove-backup:done', 'wal-archived:done', 'report:done']);
      expect(Object.keys((await handle.query(getStatusQuery)).phaseDurationsMs)).toEqual(['validate', 'check-existing', 'backup', 'prove', 'archive', 'report']);
      expect(await outcome(handle)).toBe('succeeded');
      await saveHistory(handle, 'force-backup.taken');
    });
    expect(taken).toMatchObject({ cluster: PRIMARY, reused: false, timeline });
    expect(lsnAtOrAfter(taken.requiredLsn, lsnBefore)).toBe(true);
    expect(lsnAtOrAfter(taken.finishLsn, taken.requiredLsn)).toBe(true);
    expect(taken.compressedSize).toBeGreaterThan(0);

    // Independently of the runbook: exactly one new complete backup, the one reported, with its sentinel.
    const after = await backupsOf(PRIMARY);
    expect(after.map((b) => b.name)).toEqual([...before.map((b) => b.name), taken.backupName]);
    const landed = after.find((b) => b.name === taken.backupName)!;
    expect(landed).toMatchObject({ sentinelKey: taken.sentinelKey, startLsn: taken.startLsn, finishLsn: taken.finishLsn, timeline: taken.timeline });
    expect(taken.backupName.startsWith(`base_${timeline.toString(16).toUpperCase().padStart(8, '0')}`)).toBe(true);
  });

  it('reuses the backup when run again for the same LSN, and uploads nothing', async () => {
    const before = await backupsOf(PRIMARY);
    await withRunbookWorkers(async (h) => {
      const handle = await start(h, { cluster: PRIMARY, notBeforeLsn: taken.requiredLsn });
      const again = (await handle.result()) as ForceBackupResult;
      expect(again).toMatchObject({ reused: true, backupName: taken.backupName, sentinelKey: taken.sentinelKey, requiredLsn: taken.requiredLsn });
      expect(steps(await handle.query(getJournalQuery))).toEqual(['validate-request:done', 'check-existing:already', 'report:done']);
      expect(await outcome(handle)).toBe('already');
      await saveHistory(handle, 'force-backup.reused');
    });
    expect((await backupsOf(PRIMARY)).map((b) => b.name)).toEqual(before.map((b) => b.name));
  });

  it('without notBeforeLsn takes a new backup even with no new writes: the last backup ended before the leader\'s LSN', async () => {
    // backup-push ends with a WAL switch, so the leader's LSN is already in the next segment when it returns.
    const lsn = await leaderLsn(PRIMARY);
    expect(lsnAtOrAfter(taken.finishLsn, lsn)).toBe(false);
    await withRunbookWorkers(async (h) => {
      const r = (await (await start(h, { cluster: PRIMARY })).result()) as ForceBackupResult;
      expect(r.reused).toBe(false);
      expect(r.backupName).not.toBe(taken.backupName);
      taken = r;
    });
  });

  it('takes a new backup after writes, when notBeforeLsn is beyond the newest backup', async () => {
    await sql(PRIMARY, `INSERT INTO public.orders (customer, amount_cents) SELECT 'fb-' || g, g FROM generate_series(1, 500) AS g`);
    const notBeforeLsn = await leaderLsn(PRIMARY);
    const before = await backupsOf(PRIMARY);
    expect(lsnAtOrAfter(before[before.length - 1].finishLsn, notBeforeLsn)).toBe(false);
    await withRunbookWorkers(async (h) => {
      const r = (await (await start(h, { cluster: PRIMARY, notBeforeLsn })).result()) as ForceBackupResult;
      expect(r).toMatchObject({ reused: false, requiredLsn: notBeforeLsn });
      expect(lsnAtOrAfter(r.finishLsn, notBeforeLsn)).toBe(true);
      const after = await backupsOf(PRIMARY);
      expect(after.map((b) => b.name)).toEqual([...before.map((b) => b.name), r.backupName]);
    });
  });

  it('fails, never succeeds, when the backup tool exits 0 but no sentinel lands', async () => {
    const before = await backupsOf(PRIMARY);
    // Spilo's backup script on a replica: exit 0, a reassuring line, no backup.
    const lyingTool = (driver: SiteDriver): SiteDriver => Object.assign(Object.create(driver) as SiteDriver, {
      runBaseBackup: async () => ({ exitCode: 0, reportedName: 'base_000000010000000000000099', outputTail: 'backup done' }),
    });
    await withRunbookWorkers(async (h) => {
      const handle = await start(h, { cluster: PRIMARY });
      const failure = await failureOf(handle);
      expect(failure.type).toBe('BackupNotProvenError');
      expect(failure.message).toMatch(new RegExp(`^no sentinel at or after LSN \\S+ on timeline ${await leaderTimeline(PRIMARY)} under s3://dr-eu/.*: the backup of eu/acid-demo did not land`));
      expect(steps(await handle.query(getJournalQuery))).toEqual(
        ['validate-request:done', 'check-existing:done', 'check-archiving:done', 'run-backup:done', 'runbook:failed']);
      expect(await outcome(handle)).toBe('failed');
    }, { wrapDriver: lyingTool });
    expect((await backupsOf(PRIMARY)).length).toBe(before.length);
  });

  describe('on a standby cluster', () => {
    beforeAll(async () => {
      const src = driverOf(PRIMARY);
      const dst = driverOf(STANDBY);
      for (const user of await src.driver.listSecretUsers(src.cluster)) {
        await dst.driver.writeSecret(dst.cluster, user, (await src.driver.readSecret(src.cluster, user))!);
      }
      const facts = (await src.driver.describeCluster(src.cluster))!;
      const newest = (await backupsOf(PRIMARY)).pop()!;
      await dst.driver.createStandbyCluster({
        cluster: dst.cluster, sourceRef: PRIMARY, fromArchive: { archive: facts.archive, backupName: newest.name },
      });
      expect((await dst.driver.describeCluster(dst.cluster))?.leaderRole).toBe('standby_leader');
    });

    it('refuses, non-retryably, before taking anything, and says to promote first', async () => {
      const [standbyBefore, primaryBefore] = [await backupsOf(STANDBY), await backupsOf(PRIMARY)];
      await withRunbookWorkers(async (h) => {
        const handle = await start(h, { cluster: STANDBY });
        const failure = await failureOf(handle);
        expect(failure.nonRetryable).toBe(true);
        expect(failure.type).toBe('PreconditionFailedError');
        expect(failure.message).toMatch(/us\/acid-fb-standby is a standby cluster .*force-backup needs a primary; promote it first/);
        expect(steps(await handle.query(getJournalQuery))).toEqual(['runbook:refused']);
        expect(await outcome(handle)).toBe('refused');
      });
      expect(await backupsOf(STANDBY)).toEqual(standbyBefore);
      expect(await backupsOf(PRIMARY)).toEqual(primaryBefore);
    });

    it('the backup activity itself refuses the standby leader, should a run get past the check', async () => {
      const sites = loadSites(testLayout().sitesFile);
      const backup = createRunBaseBackup({ sites, driverFor: createDriverFactory(sites) });
      await expect(new MockActivityEnvironment().run(backup, { cluster: STANDBY })).rejects.toThrow(PreconditionFailedError);
      expect(await backupsOf(STANDBY)).toEqual([]);
    });
  });

  describe('refuses bad input before changing anything', () => {
    const cases: Array<[string, ForceBackupInput, RegExp]> = [
      ['a cluster without a site', { cluster: 'acid-demo' }, /"<site>\/<cluster>"/],
      ['an unknown site', { cluster: 'mars/acid-red' }, /site "mars" is not in the sites file/],
      ['a cluster that does not exist', { cluster: 'eu/acid-ghost' }, /eu\/acid-ghost does not exist at site eu/],
      ['notBeforeLsn that is not an LSN', { cluster: PRIMARY, notBeforeLsn: 'yesterday' }, /"yesterday" is not a Postgres LSN/],
      ['notBeforeLsn ahead of the leader', { cluster: PRIMARY, notBeforeLsn: 'FF/0' }, /notBeforeLsn FF\/0 is ahead of eu\/acid-demo's current LSN/],
      ['a zero backup timeout', { cluster: PRIMARY, limits: { backupTimeoutSeconds: 0 } }, /limits.backupTimeoutSeconds must be a positive number/],
    ];
    it.each(cases)('%s', async (_name, input, message) => {
      const before = await backupsOf(PRIMARY);
      await withRunbookWorkers(async (h) => {
        const handle = await start(h, input);
        const failure = await failureOf(handle);
        expect(failure.nonRetryable).toBe(true);
        expect(failure.message).toMatch(message);
        expect((await handle.query(getJournalQuery)).filter((e) => e.step === 'run-backup')).toEqual([]);
      });
      expect((await backupsOf(PRIMARY)).length).toBe(before.length);
    });
  });
});
