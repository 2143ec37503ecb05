// force-backup's proof by restore: after the sentinel proof, a marker on the primary (with the marker table's row
// count in the same transaction, and a WAL switch so its segment is archived), then the backup restored in a
// scratch at the site's worker, replayed from the archive up to the marker, and checked there (walgRestoreProof).
import { patched, workflowInfo } from '@temporalio/workflow';
import { siteActivities, siteLongActivities } from '../activity-proxies';
import { RUNBOOK_NAMES, type RestoreProofResult } from '../contracts/runbooks';
import type { RunbookRecord } from './runbook-record';
import type { BackupPlan } from './backup-checks';
import type { BaseBackup } from '../../activities/s3/backup-catalogue';

/** Old histories never took this branch: the marker keeps them replaying, new runs record it. */
export const RESTORE_PROOF_PATCH = 'force-backup-verify-by-restore';

// The marker table (activities/postgres/markers.ts MARKER_TABLE), named here so the bundle imports no activity code.
// Its row count is the invariant compared: only runbooks write it, so it is quiet, and it holds the marker itself.
const MARKER_TABLE = 'standby_runbooks.markers';

export function restoreProofWanted(plan: BackupPlan): boolean {
  return plan.verifyByRestore && patched(RESTORE_PROOF_PATCH);
}

export async function proveByRestore(record: RunbookRecord, plan: BackupPlan, backup: BaseBackup): Promise<RestoreProofResult> {
  const markerId = `${RUNBOOK_NAMES.forceBackup}/${workflowInfo().workflowId}/${workflowInfo().runId}`;
  const mark = await siteActivities(plan.site).postgresMarkAndCount({
    ref: plan.ref, markerId, runbook: RUNBOOK_NAMES.forceBackup, tables: [MARKER_TABLE], switchWal: true,
  });
  // Counted before the insert in one transaction: the copy at the marker holds the count plus the marker row
  // (a retry that found the marker already there counted it).
  const expected = mark.counts[MARKER_TABLE] + (mark.inserted ? 1 : 0);
  record.step('restore-marker', 'done',
    `Wrote marker ${markerId} on ${plan.ref} at LSN ${mark.lsn} (${MARKER_TABLE}: ${expected} rows with it) and switched WAL, so the archive gets it.`,
    { markerId, lsn: mark.lsn, expectedRows: expected });
  record.waiting(`restoring ${backup.name} of ${plan.ref} in a scratch up to ${mark.lsn}`);
  const proof = await siteLongActivities(plan.site, plan.backupTimeoutSeconds).walgRestoreProof({
    clusterRef: plan.ref, archive: plan.facts.archive, backupName: backup.name, targetLsn: mark.lsn, markerId,
    expectedCounts: { [MARKER_TABLE]: expected }, timeoutSeconds: plan.backupTimeoutSeconds,
  });
  record.waiting(undefined);
  const d = proof.durationsMs;
  record.step('verify-restore', 'done',
    `Restored ${proof.backupName} of ${plan.ref} in a scratch and replayed the archive to ${proof.restoredToLsn}: marker found, ` +
      `${MARKER_TABLE} ${proof.rowsCompared[MARKER_TABLE]} rows as on the primary, amcheck passed on ${proof.indexesChecked} btree indexes in ` +
      `${proof.databasesChecked} databases (fetch ${(d.fetch / 1000).toFixed(1)}s, recovery ${(d.recovery / 1000).toFixed(1)}s, checks ${(d.checks / 1000).toFixed(1)}s).`,
    { ...proof });
  return proof;
}
