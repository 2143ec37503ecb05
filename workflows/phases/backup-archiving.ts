// force-backup and the WAL archive: a base backup restores nothing without the WAL up to its finish LSN in the
// archive, and WAL-G's backup-push does not wait for it (pg_backup_stop without waiting for archiving). So the
// runbook looks at the primary's archiver before the backup, watches it while backup-push runs, and after the proof
// waits until the WAL file holding the finish LSN is in S3 — failing with ArchivingBrokenError ("archiving is
// broken: <wal> since <time>") as soon as archiving is judged broken, not when a timeout runs out. It also proves the
// backup on the timeline the cluster is on after the backup: a switchover during backup-push leaves the old
// timeline's backup out of date, and the retry on the new primary is what counts.
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import { control, siteActivities, siteLongActivities } from '../activity-proxies';
import { ArchivingBrokenError, toApplicationFailure } from '../contracts/errors';
import { RUNBOOK_NAMES } from '../contracts/runbooks';
import { failureFacts } from './failures';
import type { BackupNeed, BackupPlan } from './backup-checks';
import type { RunbookRecord } from './runbook-record';
import type { BaseBackup } from '../../activities/s3/backup-catalogue';
import type { ArchivingLook } from '../../activities/postgres/archiver';

/** The look checkArchiving judges; started early, it runs beside check-existing's reads instead of after them. */
export function lookAtArchiver(plan: BackupPlan): Promise<ArchivingLook> {
  return siteActivities(plan.site).postgresArchiverStatus({ ref: plan.ref, brokenAfterSeconds: plan.archiveBrokenAfterSeconds });
}

/** The archiver is looked at once before backup-push; a streak already longer than the limit refuses the run. */
export async function checkArchiving(record: RunbookRecord, plan: BackupPlan, early?: Promise<ArchivingLook>): Promise<void> {
  const look = await (early ?? lookAtArchiver(plan));
  const { verdict, status } = look;
  const facts = {
    state: verdict.state, wal: verdict.wal, since: verdict.since, failedCount: status.failedCount,
    lastFailedWal: status.lastFailedWal, lastFailedAt: status.lastFailedAt, lastArchivedWal: status.lastArchivedWal,
    lastArchivedAt: status.lastArchivedAt, currentWal: status.currentWal, segmentsWaiting: verdict.segmentsWaiting, lagBytes: verdict.lagBytes,
  };
  if (verdict.state === 'broken') {
    record.step('check-archiving', 'failed', verdict.message, facts);
    throw toApplicationFailure(new ArchivingBrokenError(verdict.message, { cluster: plan.ref, ...facts }));
  }
  record.step('check-archiving', 'done',
    verdict.state === 'ok'
      ? `Checked the archiver of ${plan.ref}: ${verdict.message}.`
      : `Checked the archiver of ${plan.ref}: ${verdict.message}; watching it during the backup (broken after ${plan.archiveBrokenAfterSeconds}s).`,
    facts);
}

/**
 * Proves the backup on the leader's timeline as it is after backup-push. When it changed (a switchover or failover
 * inside the cluster while the tool ran; the tool failed and its retry ran on the new primary), only a backup of the
 * new timeline counts, and a missing one fails naming the change.
 */
export async function proveOnCurrentTimeline(
  record: RunbookRecord, plan: BackupPlan, need: BackupNeed, readTogether = false,
): Promise<BaseBackup> {
  const at = siteActivities(plan.site);
  const prove = (timeline: number) => at.s3ProveBackup({ archive: plan.facts.archive, requiredLsn: need.requiredLsn, timeline, clusterRef: plan.ref });
  // The timeline almost never changes during a backup: the proof on the old one is read beside the position, and
  // read again on the new timeline only when it did change.
  const onOldTimeline = readTogether ? prove(need.timeline) : undefined;
  onOldTimeline?.catch(() => undefined);
  const pos = await at.postgresCurrentPosition({ ref: plan.ref });
  const changed = !pos.inRecovery && pos.timeline !== need.timeline;
  if (changed) {
    record.step('timeline-changed', 'done',
      `The timeline of ${plan.ref} changed from ${need.timeline} to ${pos.timeline} during the backup (a switchover or failover): only a backup of timeline ${pos.timeline} counts.`,
      { from: need.timeline, to: pos.timeline });
  }
  const timeline = changed ? pos.timeline : need.timeline;
  try {
    return await (!changed && onOldTimeline ? onOldTimeline : prove(timeline));
  } catch (err) {
    if (!changed || failureFacts(err).type !== 'BackupNotProvenError') throw err;
    throw ApplicationFailure.create({
      type: 'BackupNotProvenError', nonRetryable: true,
      message: `the timeline of ${plan.ref} changed from ${need.timeline} to ${pos.timeline} during the backup, and no backup of timeline ` +
        `${pos.timeline} landed: ${failureFacts(err).message}; run force-backup again on the new primary`,
    });
  }
}

/** Waits until the WAL file holding the backup's finish LSN is in the archive, or archiving is judged broken. */
export async function waitForBackupWal(record: RunbookRecord, plan: BackupPlan, backup: BaseBackup): Promise<string> {
  record.waiting(`the WAL of ${backup.name} (through ${backup.finishLsn}) reaching the archive of ${plan.ref}`);
  const proof = await siteLongActivities(plan.site, plan.backupTimeoutSeconds).postgresWaitForArchived({
    ref: plan.ref, lsn: backup.finishLsn, timeline: backup.timeline, archive: plan.facts.archive, archiveSite: plan.site,
    timeoutSeconds: plan.backupTimeoutSeconds, brokenAfterSeconds: plan.archiveBrokenAfterSeconds, pollIntervalSeconds: plan.archivePollSeconds,
  });
  record.waiting(undefined);
  record.step('wal-archived', 'done',
    `The WAL of ${backup.name} through its finish LSN ${backup.finishLsn} is in the archive: ${proof.wal} at ${proof.key}.`,
    { wal: proof.wal, key: proof.key, archivedAt: proof.archivedAt });
  return proof.wal;
}

/** A broken archive leaves the cluster unprotected whatever this run does: a human is paged, like a failing step. */
export async function pageIfArchivingBroken(record: RunbookRecord, ref: string, err: unknown): Promise<void> {
  const f = failureFacts(err);
  if (f.type !== 'ArchivingBrokenError') return;
  try {
    await control.notifyEscalation({
      runbook: RUNBOOK_NAMES.forceBackup, workflowId: workflowInfo().workflowId, cluster: ref, reason: f.message,
      action: `fix WAL archiving of ${ref} (archive_command, S3 credentials, the bucket, the network; see pg_stat_archiver and the Postgres log), then run force-backup again`,
    });
    record.step('page', 'done', `Paged: ${f.message}.`);
  } catch (pageErr) {
    record.step('page', 'failed', `Could not page about the broken archiving: ${failureFacts(pageErr).message}.`);
  }
}
