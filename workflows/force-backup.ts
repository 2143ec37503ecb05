// force-backup: take a full base backup of <site>/<cluster> on its primary now, and prove it landed in S3 by
// its stop sentinel: on the cluster's current timeline, finished at or after the required LSN. The backup
// tool's exit code is never the proof (Spilo's backup script exits 0 on a replica without taking a backup).
// A backup that already meets the requirement is reused. WAL archiving is checked before, watched during, and
// proven after the backup (phases/backup-archiving.ts): broken archiving fails the run by name within minutes, not
// at the timeout. With verifyByRestore the backup is also restored in a scratch and checked there
// (phases/restore-proof.ts). promote runs this as a child for the first backup of a new timeline, drills for the
// backup of their promoted copy.
import { patched } from '@temporalio/workflow';
import { siteActivities, siteLongActivities } from './activity-proxies';
import { RUNBOOK_NAMES, type ForceBackupInput, type ForceBackupResult, type RestoreProofResult } from './contracts/runbooks';
import { checkExistingBackup, validateBackupRequest, type BackupNeed, type BackupPlan } from './phases/backup-checks';
import { checkArchiving, lookAtArchiver, pageIfArchivingBroken, proveOnCurrentTimeline, waitForBackupWal } from './phases/backup-archiving';
import { proveByRestore, restoreProofWanted } from './phases/restore-proof';
import { RunbookRecord } from './phases/runbook-record';
import type { BaseBackup } from '../activities/s3/backup-catalogue';
import type { BaseBackupRun } from '../activities/sites/site-driver';

export async function forceBackup(input: ForceBackupInput): Promise<ForceBackupResult> {
  const startedAt = Date.now();
  const record = new RunbookRecord(RUNBOOK_NAMES.forceBackup, String(input?.cluster ?? 'unknown'));
  // Once the backup has started, a failure is a failure of the backup, never a refusal before any change.
  let backupStarted = false;
  try {
    const plan = await record.phase('validate', () => validateBackupRequest(record, input));
    // Reads that do not wait on each other run together (runs started before replay one after the other): the
    // archiver's look beside check-existing's, the proof beside the timeline read after the backup. Nothing is skipped.
    const together = patched(READS_TOGETHER_PATCH);
    const earlyLook = together ? lookAtArchiver(plan) : undefined;
    // Only a new backup judges it; a reused one leaves it unread, and a failed look is reported where it is judged.
    earlyLook?.catch(() => undefined);
    const need = await record.phase('check-existing', () => checkExistingBackup(record, plan));
    let backup = need.existing;
    let archivedWal: string | undefined;
    if (!backup) {
      // Runs started before the archiving checks replay without them.
      const archiving = patched(ARCHIVING_CHECKS_PATCH);
      const run = await record.phase('backup', async () => {
        if (archiving) await checkArchiving(record, plan, earlyLook);
        backupStarted = true;
        return takeBaseBackup(record, plan, archiving);
      });
      const proven = await record.phase('prove', () => proveBackup(record, plan, need, run, archiving, together));
      backup = proven;
      if (archiving) archivedWal = await record.phase('archive', () => waitForBackupWal(record, plan, proven));
    }
    const proven = backup;
    // A reused backup is restored as well: the restore proves the backup, whoever took it. It writes a marker row
    // and its failure is a failed proof, never a refusal.
    let restoreProof: RestoreProofResult | undefined;
    if (restoreProofWanted(plan)) {
      backupStarted = true;
      restoreProof = await record.phase('verify-restore', () => proveByRestore(record, plan, proven));
    }
    const result = await record.phase('report', () => reportBackup(record, plan, need, backup, startedAt, restoreProof));
    record.finish(result.reused ? 'already' : 'succeeded');
    return archivedWal ? { ...result, archivedWal } : result;
  } catch (err) {
    await pageIfArchivingBroken(record, String(input?.cluster ?? 'unknown'), err);
    record.failed(err, { changedAnything: backupStarted });
    throw err;
  }
}

const ARCHIVING_CHECKS_PATCH = 'force-backup-archiving-checks';
const READS_TOGETHER_PATCH = 'force-backup-reads-together';

async function takeBaseBackup(record: RunbookRecord, plan: BackupPlan, archiving: boolean): Promise<BaseBackupRun> {
  record.waiting(`backup-push of ${plan.ref} (full base backup on ${plan.facts.leaderMember})`);
  const run = await siteLongActivities(plan.site, plan.backupTimeoutSeconds).walgRunBaseBackup({
    cluster: plan.ref,
    timeoutSeconds: plan.backupTimeoutSeconds,
    ...(archiving ? { archiving: { brokenAfterSeconds: plan.archiveBrokenAfterSeconds, pollSeconds: plan.archivePollSeconds } } : {}),
  });
  record.waiting(undefined);
  record.step('run-backup', 'done',
    `Ran backup-push on ${plan.ref} (leader ${plan.facts.leaderMember}): exit code 0, the tool reported ${run.reportedName ?? 'no backup name'}; not proof until its sentinel is read.`,
    { exitCode: run.exitCode, reportedName: run.reportedName });
  return run;
}

async function proveBackup(
  record: RunbookRecord, plan: BackupPlan, need: BackupNeed, run: BaseBackupRun, archiving: boolean, together: boolean,
): Promise<BaseBackup> {
  const proof = archiving
    ? await proveOnCurrentTimeline(record, plan, need, together)
    : await siteActivities(plan.site).s3ProveBackup({
      archive: plan.facts.archive, requiredLsn: need.requiredLsn, timeline: need.timeline, clusterRef: plan.ref,
    });
  // Another backup (a schedule, a second operator) may have landed meanwhile: it proves the point as well.
  const other = run.reportedName && run.reportedName !== proof.name ? ` (the tool reported ${run.reportedName})` : '';
  record.step('prove-backup', 'done',
    `Proved base backup ${proof.name} of ${plan.ref}${other}: its sentinel says timeline ${proof.timeline}, LSN ${proof.startLsn} to ${proof.finishLsn} (required ${need.requiredLsn}).`,
    { backup: proof.name, sentinelKey: proof.sentinelKey, startLsn: proof.startLsn, finishLsn: proof.finishLsn, compressedSize: proof.compressedSize });
  return proof;
}

async function reportBackup(
  record: RunbookRecord, plan: BackupPlan, need: BackupNeed, backup: BaseBackup, startedAt: number,
  restoreProof: RestoreProofResult | undefined,
): Promise<ForceBackupResult> {
  const reused = need.existing !== null;
  const durationMs = Date.now() - startedAt;
  record.step('report', 'done',
    `${reused ? 'Reused' : 'Took'} base backup ${backup.name} of ${plan.ref}: finish LSN ${backup.finishLsn} at or after ${need.requiredLsn} on timeline ${backup.timeline}` +
      `${restoreProof ? ', proven by restore' : ''}, in ${(durationMs / 1000).toFixed(1)}s.`,
    { durationMs });
  return {
    cluster: plan.ref,
    backupName: backup.name,
    reused,
    startLsn: backup.startLsn,
    finishLsn: backup.finishLsn,
    timeline: backup.timeline,
    requiredLsn: need.requiredLsn,
    compressedSize: backup.compressedSize,
    uncompressedSize: backup.uncompressedSize,
    durationMs,
    sentinelKey: backup.sentinelKey,
    ...(restoreProof ? { restoreProof } : {}),
  };
}
