// force-backup and WAL archiving, on real parts: a primary whose archive_command fails (set through Patroni's
// /config, as a broken S3 path makes wal-push fail) is named — "archiving is broken: <wal> since <time>" — and
// paged, not waited out until the backup timeout; archiving that recovers lets the backup finish; a switchover
// inside the cluster during backup-push leaves no old-timeline backup reported as good.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { archivedWalObject } from '../../activities/s3/archived-segment';
import type { SiteDriver } from '../../activities/sites/site-driver';
import { getJournalQuery, type JournalEntry } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type ForceBackupInput, type ForceBackupResult } from '../../workflows/contracts/runbooks';
import { DR_OUTCOME } from '../../workflows/contracts/search-attributes';
import { failureOf } from '../helpers/failures';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { deleteCluster, driverOf, sql } from '../helpers/clusters';
import { saveHistory } from '../helpers/histories';
import { createSource } from '../helpers/standby-pair';
import { testLayout } from '../helpers/test-env';
import { waitFor } from '../helpers/private-regions';

const NOTIFY_FILE = join(testLayout().dir, 'notifications-archiving.jsonl');
process.env.DR_NOTIFY_FILE = NOTIFY_FILE;

const BROKEN = 'eu/acid-fbarch';
const SWITCHED = 'eu/acid-fbtli';
// Long on purpose: a failure before it is reached is the archiving check's, never the timeout's.
const LONG_TIMEOUT = 3600;

const start = (h: RunbookHarness, input: ForceBackupInput) => startRunbook(h.client, {
  workflowType: 'forceBackup', runbook: RUNBOOK_NAMES.forceBackup, cluster: input.cluster, input, taskQueue: h.taskQueue,
});
const steps = (journal: JournalEntry[]) => journal.map((e) => `${e.step}:${e.outcome}`);
const outcome = async (handle: WorkflowHandle) => (await handle.describe()).typedSearchAttributes.get(DR_OUTCOME);

async function patroniConfig(ref: string, body?: unknown): Promise<any> {
  const { driver, cluster } = driverOf(ref);
  const r = await fetch(`${driver.region.patroniUrl(cluster)}/config`, body === undefined ? {} : {
    method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  if (r.status !== 200) throw new Error(`${body ? 'PATCH' : 'GET'} /config of ${ref} answered ${r.status}: ${await r.text()}`);
  return r.json();
}

/** Sets archive_command through Patroni and waits until the leader runs with it (Patroni reloads on its loop). */
async function setArchiveCommand(ref: string, command: string): Promise<void> {
  await patroniConfig(ref, { postgresql: { parameters: { archive_command: command } } });
  await waitFor(`archive_command of ${ref} to be applied`, 120_000, async () => {
    const [row] = await sql<{ cmd: string }>(ref, "SELECT current_setting('archive_command') AS cmd");
    return row.cmd === command ? true : null;
  });
}

type ArchiverRow = { failed_count: string; last_failed_wal: string | null; last_failed_time: Date | null; last_archived_time: Date | null };
const archiver = async (ref: string) => (await sql<ArchiverRow>(ref, 'SELECT failed_count, last_failed_wal, last_failed_time, last_archived_time FROM pg_stat_archiver'))[0];

/** Breaks archiving and waits until Postgres reports a failed attempt newer than its last success. */
async function breakArchiving(ref: string): Promise<void> {
  await setArchiveCommand(ref, '/bin/false');
  await sql(ref, 'SELECT pg_switch_wal() FROM (SELECT txid_current()) t');
  await waitFor(`a failed archive attempt on ${ref}`, 120_000, async () => {
    const a = await archiver(ref);
    return a.last_failed_time && (!a.last_archived_time || a.last_failed_time > a.last_archived_time) ? true : null;
  });
}

async function backupsOf(ref: string) {
  const { driver, cluster } = driverOf(ref);
  const { archive } = (await driver.describeCluster(cluster))!;
  return { archive, backups: await listCompleteBackups(archive.s3, archive.walPrefix) };
}

const notifications = () => (existsSync(NOTIFY_FILE)
  ? readFileSync(NOTIFY_FILE, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { workflowId: string; cluster: string; reason: string })
  : []);

describe('force-backup and WAL archiving', () => {
  let goodArchiveCommand: string;

  beforeAll(async () => {
    await createSource(BROKEN, { members: 1 });
    goodArchiveCommand = (await patroniConfig(BROKEN)).postgresql.parameters.archive_command;
    rmSync(NOTIFY_FILE, { force: true });
  });

  afterAll(async () => {
    await setArchiveCommand(BROKEN, goodArchiveCommand).catch(() => undefined);
    await deleteCluster(BROKEN);
    await deleteCluster(SWITCHED);
  });

  it('fails naming the WAL file and since when, with ArchivingBrokenError (not the timeout), journals and pages', async () => {
    await breakArchiving(BROKEN);
    const before = await backupsOf(BROKEN);
    await withRunbookWorkers(async (h) => {
      const handle = await start(h, {
        cluster: BROKEN, limits: { backupTimeoutSeconds: LONG_TIMEOUT, archiveBrokenAfterSeconds: 20, archivePollSeconds: 2 },
      });
      const failure = await failureOf(handle);
      expect(failure.type).toBe('ArchivingBrokenError');
      expect(failure.nonRetryable).toBe(true);
      const m = /^archiving is broken: ([0-9A-F]{24}) since (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) \(failing for \d+s with no WAL archived since/.exec(failure.message);
      expect(m).not.toBeNull();
      const [, wal, since] = m!;
      // The file named is the one Postgres itself reports failing, and it is not in the archive.
      expect((await archiver(BROKEN)).last_failed_wal).toBe(wal);
      expect(await archivedWalObject(before.archive.s3, before.archive.walPrefix, wal)).toBeNull();
      expect(Date.parse(since)).toBeLessThanOrEqual(Date.now());

      const journal = await handle.query(getJournalQuery);
      // Refused by the look before backup-push when the streak was already long enough, else failed while waiting.
      const last = journal[journal.length - 1];
      expect(last).toMatchObject({ step: 'runbook', message: failure.message });
      expect(['refused', 'failed']).toContain(last.outcome);
      expect(steps(journal)).toEqual(expect.arrayContaining(['page:done']));
      expect(steps(journal)).not.toEqual(expect.arrayContaining(['report:done']));
      expect(await outcome(handle)).toBe(last.outcome);
      expect(notifications()).toEqual(expect.arrayContaining([
        expect.objectContaining({ workflowId: handle.workflowId, cluster: BROKEN, reason: failure.message }),
      ]));
      await saveHistory(handle, 'force-backup.archiving-broken');
    });
  });

  it('goes on when archiving recovers before it counts as broken, and proves the backup\'s WAL is in the archive', async () => {
    await breakArchiving(BROKEN);
    await withRunbookWorkers(async (h) => {
      const handle = await start(h, {
        cluster: BROKEN, limits: { backupTimeoutSeconds: LONG_TIMEOUT, archiveBrokenAfterSeconds: 900, archivePollSeconds: 2 },
      });
      // The look before backup-push sees the failing archiver; then the S3 path "comes back".
      const check = await waitFor('the check-archiving step', 120_000, async () =>
        (await handle.query(getJournalQuery)).find((e) => e.step === 'check-archiving') ?? null);
      expect(check).toMatchObject({ outcome: 'done' });
      expect(check.message).toMatch(/archiving fails: [0-9A-F]{24} since /);
      await setArchiveCommand(BROKEN, goodArchiveCommand);
      const result = (await handle.result()) as ForceBackupResult;
      expect(result.reused).toBe(false);
      expect(steps(await handle.query(getJournalQuery))).toEqual([
        'validate-request:done', 'check-existing:done', 'check-archiving:done', 'run-backup:done', 'prove-backup:done', 'wal-archived:done', 'report:done',
      ]);
      expect(await outcome(handle)).toBe('succeeded');
      // Independently: the WAL file holding the backup's finish LSN is in S3.
      const { archive, backups } = await backupsOf(BROKEN);
      expect(backups.map((b) => b.name)).toContain(result.backupName);
      expect(result.archivedWal).toMatch(/^[0-9A-F]{24}$/);
      expect(await archivedWalObject(archive.s3, archive.walPrefix, result.archivedWal!)).not.toBeNull();
      await saveHistory(handle, 'force-backup.archiving-recovered');
    });
  });

  it('a switchover inside the cluster during backup-push: the backup is taken again on the new primary and proven on the new timeline', async () => {
    await createSource(SWITCHED, { members: 2 });
    // Enough data that backup-push is still running when the old primary stops.
    await sql(SWITCHED, "CREATE TABLE public.bulk AS SELECT g AS id, repeat(md5(g::text), 16) AS pad FROM generate_series(1, 300000) g");
    const timelineBefore = (await sql<{ tli: number }>(SWITCHED,
      "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli"))[0].tli;
    const { driver: local, cluster } = driverOf(SWITCHED);
    // Patroni switches over only to a replica that has caught up.
    await waitFor(`the replica of ${SWITCHED} to catch up`, 300_000, async () => {
      const [r] = await sql<{ n: number }>(SWITCHED,
        'SELECT count(*)::int AS n FROM pg_stat_replication WHERE replay_lsn = pg_current_wal_lsn()');
      return r.n === 1 ? true : null;
    });
    let switchedFrom: string | null = null;
    let switchAnswer: number | null = null;
    // The real tool starts; right away a real Patroni switchover moves the leader to the replica, which stops the old
    // primary (fast) under the running tool.
    const switchDuringBackup = (driver: SiteDriver): SiteDriver => Object.assign(Object.create(driver) as SiteDriver, {
      runBaseBackup: async (c: string, onProgress: (d: string) => void, signal?: AbortSignal) => {
        if (c !== cluster || switchedFrom) return driver.runBaseBackup(c, onProgress, signal);
        const facts = (await local.describeCluster(cluster))!;
        switchedFrom = facts.leaderMember!;
        const candidate = facts.members.find((m) => m.name !== switchedFrom)!.name;
        const run = driver.runBaseBackup(c, onProgress, signal);
        switchAnswer = (await fetch(`${local.region.patroniUrl(cluster)}/switchover`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ leader: switchedFrom, candidate }),
        })).status;
        return run;
      },
    });
    await withRunbookWorkers(async (h) => {
      const handle = await start(h, { cluster: SWITCHED, limits: { backupTimeoutSeconds: LONG_TIMEOUT } });
      const result = (await handle.result()) as ForceBackupResult;
      const journal = await handle.query(getJournalQuery);
      const facts = (await local.describeCluster(cluster))!;
      expect(switchAnswer).toBe(200);
      expect(facts.leaderMember).not.toBe(switchedFrom);
      expect(result.timeline).toBe(timelineBefore + 1);
      expect(journal.find((e) => e.step === 'timeline-changed')?.message).toMatch(
        new RegExp(`changed from ${timelineBefore} to ${timelineBefore + 1} during the backup`));
      // The proof is a backup of the new timeline; no backup of the old one is what the runbook reports.
      const { backups } = await backupsOf(SWITCHED);
      const reported = backups.find((b) => b.name === result.backupName)!;
      expect(reported.timeline).toBe(timelineBefore + 1);
      expect(result.backupName.startsWith((timelineBefore + 1).toString(16).toUpperCase().padStart(8, '0'), 5)).toBe(true);
    }, { wrapDriver: switchDuringBackup });
  });
});
