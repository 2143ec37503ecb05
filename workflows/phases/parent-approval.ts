// The approval a region-failover gave for the promotions it starts, taken from the parent itself: the server names
// the parent (workflowInfo().parent), an activity reads its type from the server and asks it, and the answer is
// journalled in history. A run without a parent, or whose parent holds nothing for it, waits for a human.
import { workflowInfo } from '@temporalio/workflow';
import { control } from '../activity-proxies';
import type { ApprovalRecord } from '../contracts/runbooks';
import type { RunbookRecord } from './runbook-record';

export async function parentApproval(record: RunbookRecord, cluster: string): Promise<ApprovalRecord | null> {
  const parent = workflowInfo().parent;
  if (!parent) return null;
  const handed = await control.temporalParentDelegation({ parent: { workflowId: parent.workflowId, runId: parent.runId }, cluster });
  if (handed.kind === 'none') {
    // Another runbook's child (failback-reseed's switchback) asks a human as any run does: nothing to say. An
    // evacuation that holds nothing for this cluster is worth a line: someone expected it to be covered.
    if (handed.fromEvacuation) record.step('delegated-approval', 'skipped', `No approval handed down for ${cluster}: ${handed.why}. Waiting for a human.`);
    return null;
  }
  // The parent named by the server, not whatever the record says about where it came from.
  return { ...handed.record, via: 'delegated', delegatedBy: parent.workflowId };
}
