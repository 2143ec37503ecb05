// The disruptive drill: the real cycle, as the runbooks a real failover would use, each as a child with its own
// approval gate (a human approves there, as on the day): a planned promote of the real standby, then
// failback-reseed of the old primary with the zero-loss switchback.
import { executeChild, patched, workflowInfo } from '@temporalio/workflow';
import { RUNBOOK_NAMES, runbookWorkflowId, type FailbackResult, type PromoteResult } from '../contracts/runbooks';
import type { DrillPlan } from './drill-plan';
import type { DrillFindings } from './drill-steps';
import type { RunbookRecord } from './runbook-record';
import type { failbackReseed } from '../failback-reseed';
import type { promote } from '../promote';

export async function promoteRealStandby(record: RunbookRecord, plan: DrillPlan, findings: DrillFindings): Promise<PromoteResult> {
  const workflowId = runbookWorkflowId(RUNBOOK_NAMES.promote, plan.copy.ref);
  record.waiting(`approval of the promotion in ${workflowId} (approve it there)`);
  // Its first backup is proven by restore as well (runs started since the patch), as the non-disruptive drill's.
  const verifyBackupByRestore = patched('drill-backup-restore-proof');
  const r = await executeChild<typeof promote>('promote', {
    workflowId, taskQueue: workflowInfo().taskQueue,
    args: [{
      cluster: plan.copy.ref, mode: 'planned', source: plan.source.ref, approvalTimeoutSeconds: plan.approvalTimeoutSeconds, takeBackup: true,
      ...(verifyBackupByRestore ? { verifyBackupByRestore } : {}),
    }],
  });
  record.waiting(undefined);
  findings.rtoMs = r.rtoMs;
  if (r.approval) findings.approvals.push(r.approval);
  if (r.backup) findings.backup = { name: r.backup.backupName, finishLsn: r.backup.finishLsn, sentinelKey: r.backup.sentinelKey };
  record.step('promote-standby', 'done',
    `${workflowId}: ${plan.copy.ref} promoted (planned), approved by ${r.approval?.approver ?? 'nobody'}, writable ${r.rtoMs} ms after approval, ` +
    `writes stopped ${r.writeDowntimeMs} ms, loss ${r.measuredRpoBytes ?? '?'} bytes; ${plan.source.ref} follows it.`,
    { rtoMs: r.rtoMs, writeDowntimeMs: r.writeDowntimeMs, measuredRpoBytes: r.measuredRpoBytes, backup: r.backup?.backupName,
      ...(r.backup?.restoreProof ? { restoreProof: r.backup.restoreProof } : {}) });
  return r;
}

export async function failBackAndSwitchBack(record: RunbookRecord, plan: DrillPlan, findings: DrillFindings): Promise<FailbackResult> {
  const workflowId = runbookWorkflowId(RUNBOOK_NAMES.failbackReseed, plan.source.ref);
  record.waiting(`${workflowId} and the approval of its switchback (approve it in promote/${plan.source.ref})`);
  const r = await executeChild<typeof failbackReseed>('failbackReseed', {
    workflowId, taskQueue: workflowInfo().taskQueue,
    args: [{
      primary: plan.copy.ref, formerPrimary: plan.source.ref, strategy: 'auto', switchBack: true,
      approvalTimeoutSeconds: plan.approvalTimeoutSeconds, limits: { replayTimeoutSeconds: plan.replayTimeoutSeconds },
    }],
  });
  record.waiting(undefined);
  for (const a of [r.approval, r.switchBack?.approval]) if (a) findings.approvals.push(a);
  record.step('fail-back', 'done',
    `${workflowId}: ${plan.source.ref} ${r.alreadyRejoined ? 'already followed' : `rejoined (${r.strategy})`} ${plan.copy.ref}, then switched back ` +
    `(approved by ${r.switchBack?.approval?.approver ?? 'nobody'}, writes stopped ${r.switchBack?.writeDowntimeMs ?? '?'} ms, loss ${r.switchBack?.measuredRpoBytes ?? '?'} bytes): ${plan.source.ref} is primary again.`,
    { strategy: r.strategy, switchBackRtoMs: r.switchBack?.rtoMs ?? null });
  return r;
}
