// Playing the human at an approval gate.
import type { WorkflowHandle } from '@temporalio/client';
import { approveUpdate, getPendingApprovalQuery, type PendingApproval } from '../../workflows/contracts/approvals';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the run's approval gate is open and returns what it shows. */
export async function pendingGate(handle: WorkflowHandle, timeoutMs = 300_000): Promise<PendingApproval> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const gate = await handle.query(getPendingApprovalQuery).catch(() => null);
    if (gate) return gate;
    await sleep(250);
  }
  throw new Error(`no approval gate opened in ${handle.workflowId} within ${timeoutMs} ms`);
}

/** Approves the gate once it opens, acknowledging exactly what it requires. */
export async function approveWhenAsked(handle: WorkflowHandle, approver: string, ticket = 'INC-77'): Promise<PendingApproval> {
  const gate = await pendingGate(handle);
  await handle.executeUpdate(approveUpdate, {
    args: [{ approver, ticket, acknowledgeDataLoss: gate.requires.acknowledgeDataLoss, acknowledgeUnconfirmedFence: gate.requires.acknowledgeUnconfirmedFence }],
  });
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
      await handle.executeUpdate(approveUpdate, {
        args: [{ approver, ticket, acknowledgeDataLoss: gate.requires.acknowledgeDataLoss, acknowledgeUnconfirmedFence: gate.requires.acknowledgeUnconfirmedFence }],
      });
      return gate;
    }
    if ((await handle.describe()).status.name !== 'RUNNING') return null;
    await sleep(250);
  }
  throw new Error(`${handle.workflowId} neither asked again nor ended within ${timeoutMs} ms`);
}

/** The reason a validator gave for refusing an update. */
export async function updateRefusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => { throw new Error('the update was accepted but should have been refused'); }, (e: unknown) => e);
  return ((err as { cause?: { message?: string } }).cause?.message) ?? String(err);
}
