// force-backup with verifyByRestore against real parts: Patroni/Postgres 15, WAL-G and S3. The backup is restored
// in a scratch at the site's worker, replayed from the real archive up to a marker and checked with amcheck; a
// backup whose tar partition is corrupted in S3 must fail the proof. The archive is checked independently: the
// scratch's promotion must not have archived anything (no history file of a new timeline).
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { listCompleteBackups, s3ClientFor, splitS3Url } from '../../activities/s3/backup-catalogue';
import { SCRATCH_PREFIX } from '../../activities/walg/scratch-postgres';
import { getJournalQuery, type JournalEntry } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type ForceBackupInput, type ForceBackupResult } from '../../workflows/contracts/runbooks';
import { failureOf } from '../helpers/failures';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { driverOf, sql } from '../helpers/clusters';
import { saveHistory } from '../helpers/histories';

const PRIMARY = 'eu/acid-demo';

const start = (h: RunbookHarness, input: ForceBackupInput) => startRunbook(h.client, {
  workflowType: 'forceBackup', runbook: RUNBOOK_NAMES.forceBackup, cluster: String(input.cluster), input, taskQueue: h.taskQueue,
});
const steps = (journal: JournalEntry[]) => journal.map((e) => `${e.step}:${e.outcome}`);
const scratchDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith(SCRATCH_PREFIX));

async function archiveOf(ref: string) {
  const { driver, cluster } = driverOf(ref);
  return (await driver.describeCluster(cluster))!.archive;
}

async function keysUnder(ref: string, sub: string): Promise<string[]> {
  const archive = await archiveOf(ref);
  const { bucket, key } = splitS3Url(archive.walPrefix);
  const r = await s3ClientFor(archive.s3).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${key}/${sub}` }));
  return (r.Contents ?? []).map((o) => o.Key!);
}

// WAL-G 3.0.9 hangs on a corrupt partition: the activity's stall watchdog stops it; short here to keep the test lean.
process.env.DR_RESTORE_FETCH_STALL_SECONDS = '15';

describe('force-backup verifyByRestore', () => {
  it('restores the backup in a scratch, replays to a marker, and checks every btree index', async () => {
    await sql(PRIMARY, `INSERT INTO public.orders (customer, amount_cents) SELECT 'rp-' || g, g FROM generate_series(1, 300) AS g`);
    const historiesBefore = (await keysUnder(PRIMARY, 'wal_005/')).filter((k) => k.endsWith('.history'));
    await withRunbookWorkers(async (h) => {
      const handle = await start(h, { cluster: PRIMARY, verifyByRestore: true });
      const r = (await handle.result()) as ForceBackupResult;
      expect(steps(await handle.query(getJournalQuery))).toEqual([
        'validate-request:done', 'check-existing:done', 'check-archiving:done', 'run-backup:done', 'prove-backup:done',
        'wal-archived:done', 'restore-marker:done', 'verify-restore:done', 'report:done',
      ]);
      expect(r.restoreProof).toMatchObject({ backupName: r.backupName, markerFound: true });
      expect(r.restoreProof!.indexesChecked).toBeGreaterThan(0);
      expect(r.restoreProof!.databasesChecked).toBeGreaterThanOrEqual(2);
      expect(Object.values(r.restoreProof!.rowsCompared)[0]).toBeGreaterThan(0);
      await saveHistory(handle, 'force-backup.restore-proof');
    });
    expect(scratchDirs()).toEqual([]);
    // The scratch promoted to a new timeline without archive_mode: no history file of it reached the archive.
    expect((await keysUnder(PRIMARY, 'wal_005/')).filter((k) => k.endsWith('.history'))).toEqual(historiesBefore);
  });

  it('fails with BackupNotProvenError when a tar partition of the backup is corrupt in S3, and leaves no scratch', async () => {
    let taken: ForceBackupResult | undefined;
    await withRunbookWorkers(async (h) => {
      taken = (await (await start(h, { cluster: PRIMARY })).result()) as ForceBackupResult;
    });
    const archive = await archiveOf(PRIMARY);
    const { bucket } = splitS3Url(archive.walPrefix);
    const s3 = s3ClientFor(archive.s3);
    try {
      const parts = (await keysUnder(PRIMARY, `basebackups_005/${taken!.backupName}/tar_partitions/`)).filter((k) => /part_\d+/.test(k));
      expect(parts.length).toBeGreaterThan(0);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: parts[0], Body: Buffer.from('not a compressed tar at all') }));
      await withRunbookWorkers(async (h) => {
        const handle = await start(h, { cluster: PRIMARY, notBeforeLsn: taken!.requiredLsn, verifyByRestore: true });
        const failure = await failureOf(handle);
        expect(failure.type).toBe('BackupNotProvenError');
        expect(failure.message).toMatch(new RegExp(`^restore proof of backup ${taken!.backupName} of eu/acid-demo failed: (wal-g backup-fetch exited|wal-g backup-fetch made no progress|the restored copy stopped)`));
        expect(steps(await handle.query(getJournalQuery))).toEqual(
          ['validate-request:done', 'check-existing:already', 'restore-marker:done', 'runbook:failed']);
      });
      expect(scratchDirs()).toEqual([]);
    } finally {
      // Not a complete backup any more: later tests must never pick the corrupted one.
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: taken!.sentinelKey }));
    }
    expect((await listCompleteBackups(archive.s3, archive.walPrefix)).map((b) => b.name)).not.toContain(taken!.backupName);
  });
});

describe('force-backup verifyByRestore input', () => {
  it('refuses a verifyByRestore that is not a boolean, before changing anything', async () => {
    await withRunbookWorkers(async (h) => {
      const handle = await start(h, { cluster: PRIMARY, verifyByRestore: 'yes' as unknown as boolean });
      const failure = await failureOf(handle);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(/verifyByRestore must be true or false/);
      expect(steps(await handle.query(getJournalQuery))).toEqual(['runbook:refused']);
    });
  });
});
