import type { ArchiveLocation } from '../sites/site-driver';
import { listCompleteBackups, type BaseBackup } from './backup-catalogue';
import { PreconditionFailedError } from '../../workflows/contracts/errors';

/**
 * The newest COMPLETE base backup (one with a stop sentinel) in an archive, by LSN, optionally only on one
 * timeline. Run at the site that will restore it, so it proves that site can read the archive.
 */
export function createFindLatestBackup() {
  return async function s3FindLatestBackup(input: {
    archive: ArchiveLocation;
    timeline?: number;
    clusterRef: string;
  }): Promise<BaseBackup & { completeBackups: number }> {
    const all = await listCompleteBackups(input.archive.s3, input.archive.walPrefix);
    const usable = input.timeline === undefined ? all : all.filter((b) => b.timeline <= input.timeline!);
    const latest = usable[usable.length - 1];
    if (!latest) {
      throw new PreconditionFailedError(
        `${input.clusterRef} has no complete base backup (none with a stop sentinel) under ${input.archive.walPrefix}/basebackups_005: run force-backup on ${input.clusterRef} first`,
        { walPrefix: input.archive.walPrefix, backupsWithSentinel: all.length },
      );
    }
    return { ...latest, completeBackups: all.length };
  };
}
