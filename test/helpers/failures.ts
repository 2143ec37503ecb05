// How a runbook ended when it failed: the typed failure a workflow or an activity raised.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';

export interface RunbookFailure {
  message: string;
  type?: string;
  nonRetryable?: boolean;
}

/** The failure behind a failed run: the activity's (ActivityFailure -> ApplicationFailure) or the workflow's own. */
export async function failureOf(handle: WorkflowHandle): Promise<RunbookFailure> {
  const err = await handle.result().then(() => { throw new Error(`${handle.workflowId} succeeded but should have failed`); }, (e: unknown) => e);
  if (!(err instanceof WorkflowFailedError)) throw err;
  const cause = err.cause as RunbookFailure & { cause?: RunbookFailure };
  return cause?.cause ?? cause;
}
