// Playing the humans at an approval gate: sandbox users (alice, bob, carol, dana, mallory) deciding with ID tokens of
// the test sandbox's issuer, each bound to the gate open now. An approval the gate answers with "awaiting
// approvers" (accepting data loss or an unconfirmed fence) is given again, on the same terms, by the next approver.
import type { WorkflowHandle } from '@temporalio/client';
import { acknowledgementsOf, approveAsPeople, openGate, rejectAs, type DecisionTerms } from '../../scripts/lib/identity/gate-decision';
import {
  approvalNonce, approveSignal, getPendingApprovalQuery, rejectSignal, type PendingApproval,
} from '../../workflows/contracts/approvals';
import type { ApprovalRecord } from '../../workflows/contracts/runbooks';
import { sandboxIdToken } from './identity';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sandbox users the approvals policy lets approve (group dr-approvers). */
const APPROVERS = ['alice', 'bob', 'carol'];

/** `approver` first, then the other approvers: who signs next when a gate takes two people. */
export const approversStartingWith = (approver: string): string[] => [approver, ...APPROVERS.filter((p) => p !== approver)];

/** Waits until the run's approval gate is open and returns what it shows. */
export const pendingGate = (handle: WorkflowHandle, timeoutMs = 300_000): Promise<PendingApproval> => openGate(handle, timeoutMs);

/**
 * Approves the open gate as `approver` (a sandbox user) with `terms`, and as a second approver when the gate takes
 * two; answers the record that decided the gate.
 */
export async function approveAs(handle: WorkflowHandle, approver: string, terms: DecisionTerms, gate?: PendingApproval): Promise<ApprovalRecord> {
  return approveAsPeople(handle, gate ?? await pendingGate(handle), approversStartingWith(approver), sandboxIdToken, terms);
}

/** Rejects the open gate as `person` (a sandbox user). */
export async function rejectAsUser(handle: WorkflowHandle, person: string, terms: DecisionTerms, gate?: PendingApproval): Promise<ApprovalRecord> {
  return rejectAs(handle, gate ?? await pendingGate(handle), person, sandboxIdToken, terms);
}

/** Approves the gate once it opens, acknowledging exactly what it requires. */
export async function approveWhenAsked(handle: WorkflowHandle, approver: string, ticket = 'INC-77'): Promise<PendingApproval> {
  const gate = await pendingGate(handle);
  await approveAs(handle, approver, { ticket, ...acknowledgementsOf(gate) }, gate);
  return gate;
}

/**
 * After a decision the run may ask again (promote re-asks with the loss it measured when the standby cannot replay
 * what the archive holds): approves that gate if it opens before the run ends; null when the run ended without one.
 */
export async function approveIfAskedAgain(handle: WorkflowHandle, approver: string, ticket = 'INC-77', timeoutMs = 300_000): Promise<PendingApproval | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const gate = await handle.query(getPendingApprovalQuery).catch(() => null);
    if (gate) {
      await approveAs(handle, approver, { ticket, ...acknowledgementsOf(gate) }, gate);
      return gate;
    }
    if ((await handle.describe()).status.name !== 'RUNNING') return null;
    await sleep(250);
  }
  throw new Error(`${handle.workflowId} neither asked again nor ended within ${timeoutMs} ms`);
}

/**
 * A fire-and-forget decision by signal, as a tool that cannot wait for an answer sends it: `people` in turn (a
 * second one only when the gate shows it awaits another approver), each with a token bound to the gate.
 */
export async function signalDecision(
  handle: WorkflowHandle, approving: boolean, people: string[], terms: DecisionTerms, gate?: PendingApproval,
): Promise<PendingApproval> {
  const open = gate ?? await pendingGate(handle);
  const decision = approving ? 'approve' : 'reject';
  for (const [i, person] of (approving ? people : people.slice(0, 1)).entries()) {
    const idToken = await sandboxIdToken(person, approvalNonce(open.challenge!, decision));
    await handle.signal(approving ? approveSignal : rejectSignal, { ...terms, idToken });
    if (!approving) break;
    // The gate shows who has signed: wait for this signature, or for the gate to be decided.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const now = await handle.query(getPendingApprovalQuery).catch(() => null);
      if (!now || now.challenge !== open.challenge) return open;
      if ((now.signedBy?.length ?? 0) > i) break;
      if (Date.now() > deadline) throw new Error(`${handle.workflowId}: the approval signal of ${person} was neither taken nor decided the gate (refused? see the journal)`);
      await sleep(250);
    }
  }
  return open;
}

/** The reason a validator gave for refusing an update. */
export async function updateRefusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => { throw new Error('the update was accepted but should have been refused'); }, (e: unknown) => e);
  return ((err as { cause?: { message?: string } }).cause?.message) ?? String(err);
}
