// The approval gate every runbook that changes a primary passes: an Update for tools that want an answer,
// a Signal for tools that can only fire and forget, and a query that shows what is waiting. Bundle-safe.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApprovalRecord, FenceState, LossEstimate } from './runbooks';
import type { ApproverIdentity } from './identity';
import type { RegionClusterRow } from './region-failover';

export interface ApprovalDecision {
  /** The gate being decided (see getPendingApproval); default: the one open now. */
  gate?: string;
  /**
   * Who decides, proven: an OpenID Connect ID token of one of the sites file's issuers whose `nonce` is
   * approvalNonce(challenge, "approve" | "reject") of the open gate (`drctl login`, then `drctl approve`/`reject`).
   */
  idToken?: string;
  /** A typed name proves nothing: only a sites file with `approvals.acceptTypedNames` (sandbox demos) takes it. */
  approver?: string;
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
  requires: {
    acknowledgeDataLoss: boolean;
    acknowledgeUnconfirmedFence: boolean;
    /** Distinct verified approvers the gate needs: two when it acknowledges data loss or an unconfirmed fence. */
    approvers?: number;
  };
  /** Bind a decision's ID token to this gate: its nonce must be approvalNonce(challenge, decision). */
  challenge?: string;
  /** Approvals given so far at this gate, while it waits for the next one. */
  signedBy?: ApproverIdentity[];
  /** region-failover: the table the decision is about, one row per cluster (loss estimate, fence, tier). */
  clusters?: RegionClusterRow[];
}

/** The `nonce` an ID token must carry to decide the gate whose challenge this is. */
export const approvalNonce = (challenge: string, decision: 'approve' | 'reject'): string => `${decision}:${challenge}`;

/** What the workflow asks the identity check about one decision (a local activity: verification needs crypto). */
export interface DecisionCheckRequest {
  idToken?: string;
  typedName?: string;
  nonce: string;
  scope: { runbook: string; target: string; gate: string; decision: 'approve' | 'reject' };
  /** Who started the run, when verified: four-eyes. */
  requester: ApproverIdentity | null;
  /** Who already approved this gate. */
  signedBy: ApproverIdentity[];
}

export type DecisionCheck =
  | { accepted: true; approver: ApproverIdentity; rule: string; policyVersion: string }
  | { accepted: false; reason: string; policyVersion: string };

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

/** New runs prove who decides (an ID token the identity check verifies) and judge it by the approvals policy. */
export const VERIFIED_APPROVALS_PATCH = 'verified-approvals';

/** fence-guard and disruptive drills started by hand need the authority of the promotion they stand for. */
export const STARTER_AUTHORITY_PATCH = 'starter-authority';

/** The workflow type whose approvals a child promotion may take over. */
export const DELEGATING_WORKFLOW_TYPE = 'regionFailover';
