import type { ActivityDeps } from '../deps';
import { siteConfig } from '../deps';
import { lastArchivedWal, listCompleteBackups, type ArchivedWal } from './backup-catalogue';

export interface ArchiveLineage {
  /** The system identifier in the newest complete backup's sentinel: whose archive this is. Null without a backup. */
  systemIdentifier: string | null;
  /** The backup it was read from. */
  backupName: string | null;
  /** The newest WAL segment archived: its timeline is the newest one the source reached as far as the archive knows. */
  lastWal: ArchivedWal | null;
}

/**
 * Whose WAL a source's archive holds and how far it goes, read by the standby's site (the source's may be gone):
 * what a promotion compares the standby's lineage with when the source itself does not answer.
 */
export function createArchiveLineage(deps: ActivityDeps) {
  return async function s3ArchiveLineage(input: { archiveSite: string; walPrefix: string }): Promise<ArchiveLineage> {
    const s3 = siteConfig(deps, input.archiveSite).s3;
    const backups = await listCompleteBackups(s3, input.walPrefix);
    const newest = backups[backups.length - 1];
    return {
      systemIdentifier: newest?.systemIdentifier ?? null,
      backupName: newest?.name ?? null,
      lastWal: await lastArchivedWal(s3, input.walPrefix),
    };
  };
}
