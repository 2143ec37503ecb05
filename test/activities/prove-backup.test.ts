// s3ProveBackup against the real S3 of the test sandbox: a backup counts only when its sentinel is there, on
// the right timeline, finishing at or after the required LSN. A tool that "succeeded" without a sentinel
// must not be taken for a backup.
import { createProveBackup } from '../../activities/s3/prove-backup';
import { createFindBackupAtOrAfter } from '../../activities/s3/find-backup-at-or-after';
import { listCompleteBackups, type BaseBackup } from '../../activities/s3/backup-catalogue';
import type { ArchiveLocation } from '../../activities/sites/site-driver';
import { BackupNotProvenError } from '../../workflows/contracts/errors';
import { formatLsn, parseLsn } from '../../workflows/contracts/lsn';
import { driverOf } from '../helpers/clusters';

const CLUSTER = 'eu/acid-demo';

describe('s3ProveBackup (real S3 of the test sandbox)', () => {
  let archive: ArchiveLocation;
  let newest: BaseBackup;

  beforeAll(async () => {
    const { driver, cluster } = driverOf(CLUSTER);
    archive = (await driver.describeCluster(cluster))!.archive;
    const all = await listCompleteBackups(archive.s3, archive.walPrefix);
    expect(all.length).toBeGreaterThan(0); // the global setup takes the demo source's first backup
    newest = all[all.length - 1];
  });

  it('proves the newest backup whose sentinel finished at or after the required LSN', async () => {
    const proof = await createProveBackup()({ archive, requiredLsn: newest.finishLsn, timeline: newest.timeline, clusterRef: CLUSTER });
    expect(proof.name).toBe(newest.name);
    expect(proof.sentinelKey).toMatch(new RegExp(`/basebackups_005/${newest.name}_backup_stop_sentinel\\.json$`));
  });

  it('refuses to call a backup proven when no sentinel reaches the required LSN (a tool that exited 0 without a backup)', async () => {
    const beyond = formatLsn(parseLsn(newest.finishLsn) + 1n);
    const prove = createProveBackup()({ archive, requiredLsn: beyond, timeline: newest.timeline, clusterRef: CLUSTER });
    const err = await prove.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupNotProvenError);
    expect((err as BackupNotProvenError).retryable).toBe(false);
    expect((err as Error).message).toContain(
      `no sentinel at or after LSN ${beyond} on timeline ${newest.timeline} under ${archive.walPrefix}/basebackups_005: the backup of ${CLUSTER} did not land`,
    );
    expect((err as Error).message).toContain(`newest complete backup on timeline ${newest.timeline}: ${newest.name}, finish LSN ${newest.finishLsn}`);
  });

  it('does not accept a backup of another timeline, however late it finished', async () => {
    const otherTimeline = newest.timeline + 1;
    await expect(createProveBackup()({ archive, requiredLsn: '0/0', timeline: otherTimeline, clusterRef: CLUSTER }))
      .rejects.toThrow(new RegExp(`on timeline ${otherTimeline} .*newest complete backup on timeline ${otherTimeline}: none`));
  });

  it('s3FindBackupAtOrAfter answers null instead of failing, for the reuse check', async () => {
    const find = createFindBackupAtOrAfter();
    expect(await find({ archive, requiredLsn: formatLsn(parseLsn(newest.finishLsn) + 1n), timeline: newest.timeline, clusterRef: CLUSTER })).toBeNull();
    expect((await find({ archive, requiredLsn: newest.finishLsn, timeline: newest.timeline, clusterRef: CLUSTER }))?.name).toBe(newest.name);
  });
});
