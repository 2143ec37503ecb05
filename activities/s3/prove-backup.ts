// The only proof that a base backup landed: its stop sentinel in S3 (WAL-G writes it last), on the right
// timeline, finishing at or after the LSN the backup had to cover. The backup tool's exit code proves nothing:
// Spilo's backup script exits 0 on a replica without taking a backup.
import type { ArchiveLocation } from '../sites/site-driver';
import { listCompleteBackups, type BaseBackup } from './backup-catalogue';
import { BackupNotProvenError } from '../../workflows/contracts/errors';
import { lsnAtOrAfter } from '../../workflows/contracts/lsn';

export interface BackupRequirement {
  archive: ArchiveLocation;
  /** The backup must have finished at or after this LSN. */
  requiredLsn: string;
  /** ... on this timeline: a backup of an older timeline does not restore the cluster as it is now. */
  timeline: number;
  /** `<site>/<cluster>`, for messages. */
  clusterRef: string;
}

/** The newest complete backup on `timeline` that finished at or after `requiredLsn`, or null. */
export function newestBackupAtOrAfter(backups: BaseBackup[], requiredLsn: string, timeline: number): BaseBackup | null {
  // listCompleteBackups sorts oldest first by finish LSN: the last match is the newest.
  const matching = backups.filter((b) => b.timeline === timeline && lsnAtOrAfter(b.finishLsn, requiredLsn));
  return matching[matching.length - 1] ?? null;
}

/** Reads the catalogue and returns the proving backup, or fails with BackupNotProvenError. Reads only. */
export function createProveBackup() {
  return async function s3ProveBackup(input: BackupRequirement): Promise<BaseBackup> {
    const all = await listCompleteBackups(input.archive.s3, input.archive.walPrefix);
    const proof = newestBackupAtOrAfter(all, input.requiredLsn, input.timeline);
    if (proof) return proof;
    const onTimeline = all.filter((b) => b.timeline === input.timeline);
    const newest = onTimeline[onTimeline.length - 1];
    throw new BackupNotProvenError(
      `no sentinel at or after LSN ${input.requiredLsn} on timeline ${input.timeline} under ${input.archive.walPrefix}/basebackups_005: ` +
        `the backup of ${input.clusterRef} did not land (newest complete backup on timeline ${input.timeline}: ` +
        `${newest ? `${newest.name}, finish LSN ${newest.finishLsn}` : 'none'}; ${all.length} complete in all)`,
      {
        walPrefix: input.archive.walPrefix,
        requiredLsn: input.requiredLsn,
        timeline: input.timeline,
        newestOnTimeline: newest?.name ?? null,
        newestFinishLsn: newest?.finishLsn ?? null,
        completeBackups: all.length,
      },
    );
  };
}
