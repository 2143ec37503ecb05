// Starts a runbook that must be refused and reads how it ended: once, typed, non-retryable, nothing retried.
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { RunbookHarness } from '../helpers/runbook-workers';

export interface Refusal {
  type: string | undefined;
  message: string;
  /** The activity that refused, when an activity did (else the workflow's own check did). */
  activity: string | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A workflow that throws something other than a Temporal failure fails its workflow task, and Temporal retries
 * that task forever: the run never ends. Seen in the history, that is reported at once instead of waited out.
 */
async function settle(handle: WorkflowHandle): Promise<unknown> {
  const ended = handle.result().then(() => null, (err: unknown) => err);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const err = await Promise.race([ended, sleep(500).then(() => undefined)]);
    if (err === null) throw new Error(`${handle.workflowId} succeeded but should have been refused`);
    if (err !== undefined) return err;
    const { events } = await handle.fetchHistory();
    const stuck = events?.find((e) => e.workflowTaskFailedEventAttributes);
    if (stuck) {
      await handle.terminate('bad-input suite: the workflow task failed instead of the run being refused');
      throw new Error(`${handle.workflowId}: the workflow task failed (${stuck.workflowTaskFailedEventAttributes?.failure?.message}); Temporal would retry it forever`);
    }
    if (Date.now() > deadline) throw new Error(`${handle.workflowId} neither ended nor was refused within 120 s`);
  }
}

/** Runs `workflowType` with `input` and asserts it was refused exactly once, without a retry or a child run. */
export async function refusalOf(h: RunbookHarness, workflowType: string, workflowId: string, input: unknown): Promise<Refusal> {
  const handle = await h.client.workflow.start(workflowType, { workflowId, taskQueue: h.taskQueue, args: [input] });
  const err = await settle(handle);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause = (err as WorkflowFailedError).cause;
  let activity: string | null = null;
  if (cause instanceof ActivityFailure) {
    // Refused by an activity: its retry state says Temporal gave up because the error said so.
    expect(cause.retryState).toBe(RetryState.NON_RETRYABLE_FAILURE);
    activity = cause.activityType;
    cause = cause.cause;
  }
  expect(cause).toBeInstanceOf(ApplicationFailure);
  const app = cause as ApplicationFailure;
  expect(app.nonRetryable).toBe(true);

  const { events } = await handle.fetchHistory();
  const ev = events ?? [];
  expect(ev.filter((e) => e.workflowExecutionFailedEventAttributes)).toHaveLength(1);
  expect(ev.filter((e) => e.workflowTaskFailedEventAttributes)).toEqual([]);
  expect(ev.filter((e) => e.workflowExecutionContinuedAsNewEventAttributes)).toEqual([]);
  expect(ev.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)).toEqual([]);
  // Every activity ran once: a refusal is never retried (the last attempt's number is on its started event).
  const attempts = ev.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
  expect(attempts.filter((a) => a !== 1)).toEqual([]);
  return { type: app.type ?? undefined, message: app.message, activity };
}
