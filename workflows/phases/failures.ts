// Turning what went wrong into a journal line and a final, typed workflow failure.
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, TemporalFailure } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES, RunbookError, toApplicationFailure } from '../contracts/errors';

export interface FailureFacts {
  type: string;
  message: string;
  /** true when the runbook refused (bad input, failed precondition) rather than broke. */
  refused: boolean;
}

export function failureFacts(err: unknown): FailureFacts {
  let cause: unknown = err;
  while ((cause instanceof ActivityFailure || cause instanceof ChildWorkflowFailure) && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure) {
    const type = cause.type ?? 'Error';
    return { type, message: cause.message, refused: NON_RETRYABLE_ERROR_TYPES.includes(type) };
  }
  if (cause instanceof RunbookError) {
    return { type: cause.name, message: cause.message, refused: !cause.retryable };
  }
  if (cause instanceof TemporalFailure) return { type: cause.name, message: cause.message, refused: false };
  return { type: 'Error', message: String((cause as Error)?.message ?? cause), refused: false };
}

/** Run workflow-side checks that throw RunbookError, as a non-retryable ApplicationFailure the runbook can report. */
export function check<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RunbookError) throw toApplicationFailure(err);
    throw err;
  }
}

export function refuse(err: RunbookError): never {
  throw toApplicationFailure(err);
}
