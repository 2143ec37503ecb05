// Everything known about one run: its execution (describe), search attributes, journal and phase timings (queries,
// answered by a worker), the open approval gate, and how it ended (result or typed failure, from history).
import {
  ActivityFailure, ApplicationFailure, CancelledFailure, ChildWorkflowFailure, TerminatedFailure, TimeoutFailure,
  WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle,
} from '@temporalio/client';
import { getPendingApprovalQuery, type PendingApproval } from '../../../workflows/contracts/approvals';
import { getStatusQuery, type JournalEntry, type RunbookStatus } from '../../../workflows/contracts/journal';
import {
  DR_APPROVAL_PENDING, DR_CLUSTER, DR_OUTCOME, DR_PHASE, DR_RUNBOOK, DR_SITE,
} from '../../../workflows/contracts/search-attributes';
import { withDeadline, type Temporal } from './connect';
import { CliError } from './output';

export interface RunFailure {
  /** The failure type: the runbook's error class (ApprovalRejectedError, PreconditionFailedError, ...). */
  type: string;
  message: string;
}

export interface RunInfo {
  workflowId: string;
  runId: string;
  workflowType: string;
  taskQueue: string;
  runbook: string | null;
  cluster: string | null;
  site: string | null;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, TERMINATED, CANCELLED, TIMED_OUT, ... */
  executionStatus: string;
  startTime: string;
  closeTime: string | null;
  durationMs: number | null;
  phase: string | null;
  /** The runbook's own state: running, waiting (for a human or a child), succeeded, failed. */
  state: RunbookStatus['state'];
  /** DrOutcome: succeeded, already, refused, rejected, timed-out, failed (null while running). */
  outcome: string | null;
  approvalPending: boolean;
  pendingApproval: PendingApproval | null;
  journal: JournalEntry[];
  /** Why the journal could not be read (no worker answered the query), when it could not. */
  journalError: string | null;
  phaseDurationsMs: Record<string, number>;
  result: unknown;
  failure: RunFailure | null;
}

/** The runbook's failure under Temporal's wrappers (activity and child workflow failures). */
export function failureOf(err: unknown): RunFailure {
  let cause: unknown = err instanceof WorkflowFailedError ? err.cause ?? err : err;
  while ((cause instanceof ActivityFailure || cause instanceof ChildWorkflowFailure) && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'Error', message: cause.message };
  if (cause instanceof TerminatedFailure) return { type: 'Terminated', message: cause.message || 'the run was terminated' };
  if (cause instanceof CancelledFailure) return { type: 'Cancelled', message: cause.message || 'the run was cancelled' };
  if (cause instanceof TimeoutFailure) return { type: 'TimedOut', message: cause.message || 'the run timed out' };
  return { type: (cause as Error)?.name ?? 'Error', message: String((cause as Error)?.message ?? cause) };
}

const QUERY_MS = 10_000;

export async function pendingApprovalOf(t: Temporal, handle: WorkflowHandle, ms = QUERY_MS): Promise<PendingApproval | null> {
  return withDeadline(t, ms, () => handle.query(getPendingApprovalQuery)).catch(() => null);
}

export async function runInfo(t: Temporal, workflowId: string): Promise<RunInfo> {
  const handle = t.client.workflow.getHandle(workflowId);
  const d = await handle.describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) {
      throw new CliError('not-found', `no run ${workflowId} in namespace ${t.namespace} (see: drctl list)`, { workflowId });
    }
    throw err;
  });
  const sa = d.typedSearchAttributes;
  const running = d.status.name === 'RUNNING';
  let journalError: string | null = null;
  const status = await withDeadline(t, QUERY_MS, () => handle.query(getStatusQuery)).catch((err: Error) => {
    journalError = `no worker on ${d.taskQueue} answered the journal query: ${err.message}`;
    return null;
  });
  const pendingApproval = running ? await pendingApprovalOf(t, handle) : null;
  let result: unknown = null;
  let failure: RunFailure | null = null;
  if (!running) {
    try {
      result = await handle.result();
    } catch (err) {
      failure = failureOf(err);
    }
  }
  const closeTime = d.closeTime ? d.closeTime.toISOString() : null;
  const derivedState: RunbookStatus['state'] = running ? 'running' : d.status.name === 'COMPLETED' ? 'succeeded' : 'failed';
  return {
    workflowId,
    runId: d.runId,
    workflowType: d.type,
    taskQueue: d.taskQueue,
    runbook: sa.get(DR_RUNBOOK) ?? status?.runbook ?? null,
    cluster: sa.get(DR_CLUSTER) ?? status?.cluster ?? null,
    site: sa.get(DR_SITE) ?? null,
    executionStatus: d.status.name,
    startTime: d.startTime.toISOString(),
    closeTime,
    durationMs: d.closeTime ? d.closeTime.getTime() - d.startTime.getTime() : null,
    phase: status?.phase ?? sa.get(DR_PHASE) ?? null,
    // A runbook killed from outside (terminate) never recorded its end: Temporal's status wins.
    state: running ? status?.state ?? derivedState : derivedState,
    outcome: sa.get(DR_OUTCOME) ?? null,
    approvalPending: pendingApproval !== null || sa.get(DR_APPROVAL_PENDING) === true,
    pendingApproval,
    journal: status?.journal ?? [],
    journalError,
    phaseDurationsMs: status?.phaseDurationsMs ?? (result as { phaseDurationsMs?: Record<string, number> } | null)?.phaseDurationsMs ?? {},
    result,
    failure,
  };
}
