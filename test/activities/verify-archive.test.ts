// walgVerifyArchive against real parts: WAL-G's wal-verify on a cluster's prefix in the sandbox's S3. From the newest
// backup to the cluster's position the archive is whole; with one segment after that backup deleted from S3, the
// check is a FAILURE that names the missing range, never an OK.
import { CopyObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createVerifyArchive } from '../../activities/walg/verify-archive';
import { createDriverFactory } from '../../activities/sites';
import { loadSites } from '../../activities/sites/sites-file';
import { lastArchivedWal, listCompleteBackups, s3ClientFor, splitS3Url } from '../../activities/s3/backup-catalogue';
import type { ArchiveLocation } from '../../activities/sites/site-driver';
import type { ArchiveCheck } from '../../workflows/contracts/archive-check';
import { deleteCluster, driverOf, sql, switchWalAndWaitArchived } from '../helpers/clusters';
import { createSource } from '../helpers/standby-pair';
import { testLayout } from '../helpers/test-env';

const CLUSTER = 'eu/acid-vfy';

/** Rows and a WAL switch, waited for until the switched segment is in the archive. */
async function writeAndArchive(ref: string, rows: number): Promise<void> {
  await sql(ref, `INSERT INTO public.writes (id) SELECT g FROM generate_series((SELECT coalesce(max(id), 0) + 1 FROM public.writes), (SELECT coalesce(max(id), 0) + ${rows} FROM public.writes)) g`);
  await switchWalAndWaitArchived(ref);
}

describe('walgVerifyArchive (real WAL-G, real S3)', () => {
  let archive: ArchiveLocation;
  const verify = () => {
    const sites = loadSites(testLayout().sitesFile);
    return createVerifyArchive({ sites, driverFor: createDriverFactory(sites) });
  };
  const check = async (): Promise<ArchiveCheck> => {
    const backups = await listCompleteBackups(archive.s3, archive.walPrefix);
    const pos = (await sql<{ lsn: string; tl: number }>(CLUSTER, 'SELECT pg_current_wal_lsn()::text AS lsn, timeline_id AS tl FROM pg_control_checkpoint()'))[0];
    return new MockActivityEnvironment().run(verify(), {
      archiveSite: 'eu', walPrefix: archive.walPrefix, backupName: backups[backups.length - 1].name, timeline: pos.tl, lsn: pos.lsn,
    });
  };

  beforeAll(async () => {
    await createSource(CLUSTER, { members: 1 });
    const { driver, cluster } = driverOf(CLUSTER);
    archive = (await driver.describeCluster(cluster))!.archive;
    for (let i = 0; i < 3; i++) await writeAndArchive(CLUSTER, 200);
  });
  afterAll(async () => {
    await deleteCluster(CLUSTER);
  });

  it('from the newest backup to now, every segment is in the prefix: OK, no gaps', async () => {
    const r = await check();
    expect(r).toMatchObject({ status: 'OK', walPrefix: archive.walPrefix, gaps: [] });
    expect(r.ranges.reduce((n, g) => n + g.count, 0)).toBeGreaterThanOrEqual(3);
  });

  it('one segment after the backup deleted from S3: FAILURE naming it as lost', async () => {
    const { bucket, key } = splitS3Url(archive.walPrefix);
    const last = (await lastArchivedWal(archive.s3, archive.walPrefix))!;
    // The segment before the newest: written after the backup (three switches since), followed by more WAL.
    const victim = (BigInt(`0x${last.segment.slice(16)}`) - 1n).toString(16).toUpperCase().padStart(8, '0');
    const name = `${last.segment.slice(0, 16)}${victim}`;
    const objectKey = `${key}/wal_005/${name}.lz4`;
    const s3 = s3ClientFor(archive.s3);
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: `${objectKey}.aside`, CopySource: `${bucket}/${objectKey}` }));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey }));
    try {
      const r = await check();
      expect(r.status).toBe('FAILURE');
      expect(r.gaps.map((g) => g.status)).toContain('MISSING_LOST');
      expect(r.gaps.some((g) => g.start <= name && name <= g.end)).toBe(true);
      expect(r.detail).toContain('MISSING_LOST');
    } finally {
      await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: objectKey, CopySource: `${bucket}/${objectKey}.aside` }));
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${objectKey}.aside` }));
    }
    expect((await check()).status).toBe('OK');
  });
});
