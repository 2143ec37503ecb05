// Starting runbooks the same way from the sandbox, drctl and tests: business-key workflow IDs, search
// attributes at start, a static summary for the UI.
import {
  WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { DR_CLUSTER, DR_RUNBOOK, DR_SITE } from '../../workflows/contracts/search-attributes';
import { runbookWorkflowId } from '../../workflows/contracts/runbooks';
import { CONTROL_TASK_QUEUE } from '../../workflows/contracts/task-queues';
import { getJournalQuery, type JournalEntry } from '../../workflows/contracts/journal';
import {
  approveUpdate, getPendingApprovalQuery, rejectUpdate, type ApprovalDecision, type PendingApproval,
} from '../../workflows/contracts/approvals';
import type { ApprovalRecord } from '../../workflows/contracts/runbooks';

export interface StartRunbookOptions {
  /** The workflow function name, e.g. 'provisionStandby'. */
  workflowType: string;
  /** The runbook's name in IDs and search attributes, e.g. 'provision-standby'. */
  runbook: string;
  /** `<site>/<cluster>` the run is about (DrCluster; its site is DrSite): its workflow ID is `<runbook>/<cluster>`. */
  cluster: string;
  /** A runbook keyed by something other than one cluster (region-failover: `region-failover/<lostSite>`). */
  workflowId?: string;
  input: unknown;
  taskQueue?: string;
  summary?: string;
}

export class RunbookAlreadyRunningError extends Error {
  constructor(readonly workflowId: string, readonly runId?: string) {
    super(`${workflowId} is already running${runId ? ` (run ${runId})` : ''}: wait for it, or approve/cancel it, before starting another`);
  }
}

export async function startRunbook(client: Client, opts: StartRunbookOptions): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const workflowId = opts.workflowId ?? runbookWorkflowId(opts.runbook, opts.cluster);
  try {
    return await client.workflow.start(opts.workflowType, {
      workflowId,
      taskQueue: opts.taskQueue ?? CONTROL_TASK_QUEUE,
      args: [opts.input],
      // A finished run may be repeated (reruns are idempotent); a running one may not be joined twice.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: new TypedSearchAttributes([
        { key: DR_RUNBOOK, value: opts.runbook },
        { key: DR_CLUSTER, value: opts.cluster },
        { key: DR_SITE, value: opts.cluster.split('/')[0] },
      ]),
      staticSummary: opts.summary ?? `${opts.runbook} ${opts.cluster}`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const running = await client.workflow.getHandle(workflowId).describe().catch(() => undefined);
      throw new RunbookAlreadyRunningError(workflowId, running?.runId);
    }
    throw err;
  }
}

/** Waits for the result, calling `onStep` for each new journal line (polled by query). */
export async function followRunbook<T>(
  handle: WorkflowHandle,
  onStep: (entry: JournalEntry) => void,
  pollMs = 1000,
): Promise<T> {
  let seen = 0;
  let done = false;
  const result = handle.result().finally(() => {
    done = true;
  });
  const poll = (async () => {
    for (;;) {
      const journal = await handle.query(getJournalQuery).catch(() => null);
      if (journal) for (; seen < journal.length; seen++) onStep(journal[seen]);
      if (done) return;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();
  try {
    return (await result) as T;
  } finally {
    await poll;
  }
}

/** Why a decision could not be delivered: no such run, no gate open, or the gate's validator said no. */
export class DecisionRefusedError extends Error {}

/**
 * Approves or rejects the open gate of a running runbook with the `approve`/`reject` Update, so the caller gets
 * the approval record or the validator's reason (wrong gate, missing ticket, acknowledgement needed, ...).
 */
export async function decideRunbook(
  client: Client,
  workflowId: string,
  decision: ApprovalDecision,
  approving: boolean,
): Promise<{ record: ApprovalRecord; gate: PendingApproval }> {
  const handle = client.workflow.getHandle(workflowId);
  const gate = await handle.query(getPendingApprovalQuery).catch((err: Error) => {
    throw new DecisionRefusedError(`${workflowId}: ${/not found/i.test(err.message) ? 'no such run' : err.message}`);
  });
  if (!gate) throw new DecisionRefusedError(`${workflowId} has no approval gate open`);
  try {
    const record = await handle.executeUpdate(approving ? approveUpdate : rejectUpdate, { args: [decision] });
    return { record, gate };
  } catch (err) {
    const reason = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new DecisionRefusedError(`${workflowId}: ${reason}`);
  }
}
