import { listCompleteBackups, type BaseBackup } from './backup-catalogue';
import { newestBackupAtOrAfter, type BackupRequirement } from './prove-backup';

/**
 * A complete backup (stop sentinel present) that already meets the requirement, or null: lets force-backup
 * reuse a backup instead of taking another. Reads only.
 */
export function createFindBackupAtOrAfter() {
  return async function s3FindBackupAtOrAfter(input: BackupRequirement): Promise<BaseBackup | null> {
    const all = await listCompleteBackups(input.archive.s3, input.archive.walPrefix);
    return newestBackupAtOrAfter(all, input.requiredLsn, input.timeline);
  };
}
