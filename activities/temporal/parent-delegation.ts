// A promotion started by region-failover asks its parent for the approval that covers it. The parent is the one the
// server recorded when it started this run (workflowInfo().parent: a client cannot set it), its type is read from the
// server, and the record is the one the parent's own gate accepted from a human: nothing a caller typed.
import { Context } from '@temporalio/activity';
import { DELEGATING_WORKFLOW_TYPE, delegatedApprovalQuery } from '../../workflows/contracts/approvals';
import type { ApprovalRecord } from '../../workflows/contracts/runbooks';

export interface ParentDelegationInput {
  /** From workflowInfo().parent of the asking run: set by the server, never by a client. */
  parent: { workflowId: string; runId: string };
  /** The cluster the asking run promotes (`<site>/<cluster>`). */
  cluster: string;
}

export type ParentDelegation =
  | { kind: 'approved'; record: ApprovalRecord; parentType: string }
  /** `fromEvacuation`: the parent is a region-failover (that holds nothing for this cluster); false for any other parent. */
  | { kind: 'none'; why: string; fromEvacuation: boolean };

export function createParentDelegation() {
  return async function temporalParentDelegation(input: ParentDelegationInput): Promise<ParentDelegation> {
    const handle = Context.current().client.workflow.getHandle(input.parent.workflowId, input.parent.runId);
    const description = await handle.describe();
    if (description.type !== DELEGATING_WORKFLOW_TYPE) {
      return { kind: 'none', why: `the parent run ${input.parent.workflowId} is a ${description.type}, not a region-failover: only an evacuation hands its approval down`, fromEvacuation: false };
    }
    // A long evacuation continues as new: the run that started this promotion answers from its own history then.
    if (description.status.name !== 'RUNNING' && description.status.name !== 'CONTINUED_AS_NEW') {
      return { kind: 'none', why: `the parent region-failover ${input.parent.workflowId} is ${description.status.name.toLowerCase()}`, fromEvacuation: true };
    }
    const record = await handle.query(delegatedApprovalQuery, input.cluster);
    if (!record) return { kind: 'none', why: `the parent region-failover ${input.parent.workflowId} holds no approval for ${input.cluster}`, fromEvacuation: true };
    return { kind: 'approved', record, parentType: description.type };
  };
}
