// The approval gate every runbook that changes a primary passes: an Update for tools that want an answer,
// a Signal for tools that can only fire and forget, and a query that shows what is waiting. Bundle-safe.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApprovalRecord, FenceState, LossEstimate } from './runbooks';
import type { RegionClusterRow } from './region-failover';

export interface ApprovalDecision {
  /** The gate being decided (see getPendingApproval); default: the one open now. */
  gate?: string;
  approver: string;
  /** The incident or change ticket this decision belongs to. */
  ticket: string;
  comment?: string;
  /** Required when the estimated loss exceeds the policy. */
  acknowledgeDataLoss?: boolean;
  /** Required when the old primary could not be confirmed fenced. */
  acknowledgeUnconfirmedFence?: boolean;
  /** region-failover: clusters over the loss policy to promote anyway (cluster names or `<site>/<cluster>`); needs acknowledgeDataLoss. */
  include?: string[];
}

export interface PendingApproval {
  gate: string;
  runbook: string;
  cluster: string;
  openedAt: string;
  expiresAt: string;
  /** One paragraph: what will happen when approved. */
  plan: string;
  estimate: LossEstimate | null;
  fence: FenceState;
  requires: { acknowledgeDataLoss: boolean; acknowledgeUnconfirmedFence: boolean };
  /** region-failover: the table the decision is about, one row per cluster (loss estimate, fence, tier). */
  clusters?: RegionClusterRow[];
}

/** The decision an approval record stands for: how a delegated approval is judged by a gate, or handed to one. */
export function decisionOf(record: ApprovalRecord): ApprovalDecision {
  return {
    approver: record.approver, ticket: record.ticket, comment: record.comment,
    acknowledgeDataLoss: record.acknowledgedDataLoss, acknowledgeUnconfirmedFence: record.acknowledgedUnconfirmedFence,
  };
}

export const approveUpdate = defineUpdate<ApprovalRecord, [ApprovalDecision]>('approve');
export const rejectUpdate = defineUpdate<ApprovalRecord, [ApprovalDecision]>('reject');
export const approveSignal = defineSignal<[ApprovalDecision]>('approveSignal');
export const rejectSignal = defineSignal<[ApprovalDecision]>('rejectSignal');
export const getPendingApprovalQuery = defineQuery<PendingApproval | null>('getPendingApproval');

export const APPROVAL_DESCRIPTIONS = {
  approve:
    'Approve the open gate. JSON: {"approver": "alice", "ticket": "INC-123", "comment": "...", ' +
    '"acknowledgeDataLoss": true, "acknowledgeUnconfirmedFence": true} (acknowledgements only when the gate requires them; see query getPendingApproval). Answers with the approval record or why it was refused.',
  reject: 'Reject the open gate: the runbook undoes its fence and stops with nothing promoted. JSON: {"approver": "alice", "ticket": "INC-123", "comment": "why"}.',
  approveSignal: 'Fire-and-forget approval for tools that cannot wait for an answer; same JSON as the approve update. An invalid one is recorded in the journal and ignored.',
  rejectSignal: 'Fire-and-forget rejection; same JSON as the reject update.',
} as const;

/**
 * region-failover's answer to a promotion it started, asking for the approval that covers it: the approval record the
 * evacuation's own gate accepted, narrowed to that cluster, or null. Only a child verifies and uses it (through
 * temporalParentDelegation), never a caller: no approval rides in a runbook's input.
 */
export const delegatedApprovalQuery = defineQuery<ApprovalRecord | null, [string]>('delegatedApproval');

/** New runs refuse an approval typed into the input and take a parent's approval only from the parent itself. */
export const NO_PUBLIC_DELEGATION_PATCH = 'no-public-delegation';

/** The workflow type whose approvals a child promotion may take over. */
export const DELEGATING_WORKFLOW_TYPE = 'regionFailover';
