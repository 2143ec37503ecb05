// Deciding an approval gate as named people, each proven by an ID token bound to the gate open now (nonce
// `<approve|reject>:<challenge>`): the sandbox's demos and the tests play the humans this way. An approval the gate
// answers with "awaiting approvers" is given again by the next person of the list, on the same terms.
import type { WorkflowHandle } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import {
  approvalNonce, approveUpdate, getPendingApprovalQuery, rejectUpdate, type ApprovalDecision, type PendingApproval,
} from '../../../workflows/contracts/approvals';
import type { ApprovalRecord } from '../../../workflows/contracts/runbooks';
import type { SandboxUsersFile } from '../sandbox/oidc-issuer';
import { obtainIdToken } from './id-token-client';

/** A fresh ID token of `user` carrying `nonce`. */
export type TokenSource = (user: string, nonce: string) => Promise<string>;

/** Tokens of the sandbox issuer's users, with the passwords of its users file. */
export function sandboxTokenSource(usersFile: string): TokenSource {
  return async (user, nonce) => {
    const file = JSON.parse(readFileSync(usersFile, 'utf8')) as SandboxUsersFile;
    const entry = file.users[user];
    if (!entry) throw new Error(`no sandbox user ${user} (known: ${Object.keys(file.users).join(', ')})`);
    return obtainIdToken({ issuer: file.issuer, clientId: file.clientId, username: user, password: entry.password, nonce });
  };
}

/** What a decision says besides who decides. */
export type DecisionTerms = Omit<ApprovalDecision, 'idToken' | 'approver'>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the run's approval gate is open (with the time it takes a run to assess) and returns it. */
export async function openGate(handle: WorkflowHandle, timeoutMs = 300_000): Promise<PendingApproval> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const gate = await handle.query(getPendingApprovalQuery).catch(() => null);
    if (gate) return gate;
    await sleep(250);
  }
  throw new Error(`no approval gate opened in ${handle.workflowId} within ${timeoutMs} ms`);
}

/**
 * Approves `gate` as `people[0]`, and as the next of `people` while the gate answers that it awaits another
 * approver. A gate of a run started before verified approvals (no challenge) takes the first name typed.
 */
export async function approveAsPeople(
  handle: WorkflowHandle, gate: PendingApproval, people: string[], tokenOf: TokenSource, terms: DecisionTerms,
): Promise<ApprovalRecord> {
  if (!gate.challenge) return handle.executeUpdate(approveUpdate, { args: [{ ...terms, approver: people[0] }] });
  for (const [i, person] of people.entries()) {
    const idToken = await tokenOf(person, approvalNonce(gate.challenge, 'approve'));
    const record = await handle.executeUpdate(approveUpdate, { args: [{ ...terms, idToken }] });
    if (!record.awaitingApprovers) return record;
    if (i === people.length - 1) {
      throw new Error(`${handle.workflowId}: gate "${gate.gate}" still awaits ${record.awaitingApprovers} approver(s) after ${people.join(', ')}`);
    }
  }
  throw new Error('approveAsPeople needs at least one person');
}

/** Rejects `gate` as `person`, proven by a token bound to it. */
export async function rejectAs(handle: WorkflowHandle, gate: PendingApproval, person: string, tokenOf: TokenSource, terms: DecisionTerms): Promise<ApprovalRecord> {
  if (!gate.challenge) return handle.executeUpdate(rejectUpdate, { args: [{ ...terms, approver: person }] });
  return handle.executeUpdate(rejectUpdate, { args: [{ ...terms, idToken: await tokenOf(person, approvalNonce(gate.challenge, 'reject')) }] });
}

/** The acknowledgements a gate requires, given exactly. */
export const acknowledgementsOf = (gate: PendingApproval) => ({
  acknowledgeDataLoss: gate.requires.acknowledgeDataLoss, acknowledgeUnconfirmedFence: gate.requires.acknowledgeUnconfirmedFence,
});
