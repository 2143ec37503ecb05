// After a runbook changed where a cluster's history lives (a standby built from a backup, a promotion's first
// backup on a new timeline): WAL-G's own check that the backup a restore would start from, plus every WAL segment
// after it up to now, are in that prefix (activities/walg/verify-archive.ts says why "from this backup" and not
// "since the earliest one"). A gap never passes silently: the step fails in the journal and a human is paged; the
// runbook itself goes on, since what it did (a standby built, a promotion made) stands either way.
import { workflowInfo } from '@temporalio/workflow';
import { control, siteActivities } from '../activity-proxies';
import type { ArchiveCheck } from '../contracts/archive-check';
import { parseClusterRef } from '../contracts/clusters';
import { failureFacts } from './failures';
import type { RunbookRecord } from './runbook-record';

export interface ArchiveToCheck {
  /** Where wal-verify runs (a worker of this site reads the prefix through S3); the position is read at the cluster's. */
  site: string;
  /** The site whose S3 settings reach the prefix. */
  archiveSite: string;
  walPrefix: string;
  backupName: string;
  /** The cluster whose current position the WAL must reach. */
  clusterRef: string;
  /** Its position, when the caller has just read it (else it is read here, at the cluster's site). */
  position?: { timeline: number; lsn: string };
}

export async function checkArchive(record: RunbookRecord, runbook: string, a: ArchiveToCheck, why: string): Promise<ArchiveCheck | null> {
  let check: ArchiveCheck | null = null;
  let failure = '';
  try {
    const pos = a.position ?? await siteActivities(parseClusterRef(a.clusterRef).site).postgresCurrentPosition({ ref: a.clusterRef });
    check = await siteActivities(a.site).walgVerifyArchive({
      archiveSite: a.archiveSite, walPrefix: a.walPrefix, backupName: a.backupName, timeline: pos.timeline, lsn: pos.lsn,
    });
  } catch (err) {
    failure = failureFacts(err).message;
  }
  if (check && check.status !== 'FAILURE') {
    // WARNING is WAL-G's "probably still uploading": the newest segments are on their way, nothing is known lost.
    const uploading = check.status === 'WARNING' ? ' (WAL-G: the newest segments may still be uploading)' : '';
    record.step('check-archive', 'done', `${why}: ${check.detail}${uploading}.`, { ...check });
    return check;
  }
  const reason = check
    ? `the archive of ${a.clusterRef} would not restore to now: ${check.detail}`
    : `the archive of ${a.clusterRef} (${a.walPrefix}) could not be checked: ${failure}`;
  record.step('check-archive', 'failed', `${why}: ${reason}.`, check ? { ...check } : { walPrefix: a.walPrefix, error: failure });
  await control.notifyEscalation({
    runbook, workflowId: workflowInfo().workflowId, cluster: a.clusterRef, reason,
    action: `look at ${a.walPrefix} (wal-g wal-verify integrity --backup-name ${a.backupName}); take a new backup with force-backup once archiving works`,
  });
  return check;
}
