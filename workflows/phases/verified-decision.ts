// The part of a decision that workflow code cannot judge alone: who sent it and whether they may. A local activity
// verifies the ID token and applies the sites file's approvals policy; its answer is recorded in history.
import { ApplicationFailure, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { ControlActivities } from '../../activities';
import { NON_RETRYABLE_ERROR_TYPES } from '../contracts/errors';
import { approvalNonce, type ApprovalDecision, type DecisionCheck, type PendingApproval } from '../contracts/approvals';
import type { ApproverIdentity } from '../contracts/identity';
import type { RunbookRecord } from './runbook-record';

const identity = proxyLocalActivities<ControlActivities>({
  // An issuer that does not answer is retried for a minute; the decision then fails and can simply be sent again.
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '10s', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

/**
 * Distinct verified approvers a gate needs: accepting data loss or trusting an unconfirmed fence takes two people,
 * whether the gate requires the acknowledgement or an approval offers it (region-failover's `include`).
 */
export const approversNeeded = (requires: PendingApproval['requires'], d?: ApprovalDecision): number =>
  requires.acknowledgeDataLoss || requires.acknowledgeUnconfirmedFence || d?.acknowledgeDataLoss === true || d?.acknowledgeUnconfirmedFence === true ? 2 : 1;

export const describeApprover = (a: ApproverIdentity): string =>
  a.authenticated
    ? `${a.subject}${a.name && a.name !== a.subject ? ` (${a.name})` : ''} of ${a.issuer}${a.groups.length ? ` [${a.groups.join(', ')}]` : ''}`
    : `"${a.subject}" (a typed name, NOT verified: the sites file accepts typed names)`;

/** The identity check's verdict on one decision at the open gate. */
export async function checkDecision(
  gate: PendingApproval, d: ApprovalDecision, approving: boolean, requester: ApproverIdentity | null, signedBy: ApproverIdentity[],
): Promise<DecisionCheck> {
  const decision = approving ? 'approve' : 'reject';
  return identity.identityCheckDecision({
    idToken: typeof d.idToken === 'string' && d.idToken ? d.idToken : undefined,
    typedName: typeof d.approver === 'string' ? d.approver : undefined,
    nonce: approvalNonce(gate.challenge ?? '', decision),
    scope: { runbook: gate.runbook, target: gate.cluster, gate: gate.gate, decision },
    requester,
    signedBy,
  });
}

/**
 * A run that can stop a primary (fence-guard, a disruptive drill) starts only for someone who may approve the
 * promotion it stands for, or as the child of a run that had that authority (the server names the parent). Refused
 * as bad input, nothing changed.
 */
export async function requireStarterAuthority(
  record: RunbookRecord, idToken: unknown, scope: { runbook: string; target: string; gate: string }, what: string,
): Promise<void> {
  const { workflowId, parent } = workflowInfo();
  if (parent) {
    record.step('authority', 'done', `Started by the run ${parent.workflowId}, which had the authority.`);
    return;
  }
  if (idToken !== undefined && typeof idToken !== 'string') {
    throw ApplicationFailure.nonRetryable('requesterIdToken must be a string: the ID token from `drctl login`', 'BadInputError');
  }
  const r = await identity.identityCheckStarterAuthority({
    idToken: idToken || undefined, nonce: requesterNonce(workflowId), scope: { ...scope, decision: 'approve' }, what,
  });
  if (!r.allowed) {
    record.step('authority', 'refused', `Refused to start: ${r.reason}. Nothing was changed.`);
    throw ApplicationFailure.nonRetryable(`${r.reason}; nothing was changed`, 'BadInputError');
  }
  record.step('authority', 'done', `Started by ${describeApprover(r.starter)} (rule "${r.rule}").`, { starter: r.starter });
}

/** The nonce the starter's token carries: it binds the token to this one run. */
export const requesterNonce = (workflowId: string) => `start:${workflowId}`;

/**
 * Who started this run, verified from `requesterIdToken`, journaled before anything changes. A token that does
 * not verify, or none when the policy requires one, ends the run as bad input with nothing changed.
 */
export async function identifyRequester(record: RunbookRecord, idToken: unknown): Promise<ApproverIdentity | null> {
  if (idToken !== undefined && typeof idToken !== 'string') {
    throw ApplicationFailure.nonRetryable('requesterIdToken must be a string: the ID token from `drctl login`', 'BadInputError');
  }
  const { workflowId, parent } = workflowInfo();
  if (parent && idToken === undefined) {
    // The server set the parent; its own requester was identified when it started (region-failover).
    record.step('requester', 'done', `Started by the run ${parent.workflowId}, whose requester was identified when it started.`);
    return null;
  }
  const r = await identity.identityIdentifyRequester({ idToken: idToken || undefined, nonce: requesterNonce(workflowId) });
  if (r.refuse) {
    record.step('requester', 'refused', `Refused to start: ${r.why}. Nothing was changed.`);
    throw ApplicationFailure.nonRetryable(
      `the run's requester could not be verified (${r.why}): start it with the ID token of \`drctl login\` ` +
        `(requesterIdToken, nonce "${requesterNonce(workflowId)}"); nothing was changed`,
      'BadInputError',
    );
  }
  record.step('requester', 'done', r.requester
    ? `Requested by ${describeApprover(r.requester)}.`
    : `Requested by an unauthenticated caller (${r.why}); the approvals policy allows that.`,
  r.requester ? { requester: r.requester } : undefined);
  return r.requester;
}
