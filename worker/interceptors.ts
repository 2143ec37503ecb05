// Activities throw typed RunbookErrors; Temporal needs ApplicationFailures to carry the type and the
// retryability. Converting here, once, keeps every activity free of Temporal-specific error plumbing.
// The same place sees every failed attempt, so it is where a step that keeps failing gets escalated.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ActivityInboundCallsInterceptor, ActivityExecuteInput, Next } from '@temporalio/worker';
import { NON_RETRYABLE_ERROR_TYPES, RunbookError, toApplicationFailure } from '../workflows/contracts/errors';
import { createNotifyEscalation } from '../activities/notify/escalate';

export class RunbookErrorInterceptor implements ActivityInboundCallsInterceptor {
  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    try {
      return await next(input);
    } catch (err) {
      if (err instanceof RunbookError) throw toApplicationFailure(err);
      throw err;
    }
  }
}

/** The attempt whose retryable failure pages a human (DR_ESCALATE_AFTER_ATTEMPTS, default 3). */
export function escalateAfterAttempts(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.DR_ESCALATE_AFTER_ATTEMPTS ?? 3);
  return Number.isInteger(n) && n >= 1 ? n : 3;
}

/** The cluster an activity's input names, for the escalation. */
function clusterOf(args: unknown[]): string {
  const i = (args[0] ?? {}) as Record<string, unknown>;
  for (const k of ['ref', 'target', 'cluster', 'primary']) if (typeof i[k] === 'string') return i[k] as string;
  return 'unknown';
}

/**
 * Whether a failed attempt is worth a page: final failures end the run (and say so themselves), and
 * NotReadyError means "still converging" (a standby catching up), which is what retries are for.
 */
function pagesAHuman(err: unknown): boolean {
  const type = err instanceof RunbookError ? err.name : err instanceof ApplicationFailure ? err.type ?? 'Error' : 'Error';
  const final = (err instanceof RunbookError && !err.retryable) || (err instanceof ApplicationFailure && err.nonRetryable);
  return !final && !NON_RETRYABLE_ERROR_TYPES.includes(type) && type !== 'NotReadyError';
}

/**
 * A step that keeps failing with a retryable error (S3, Patroni or etcd down) would otherwise retry silently for
 * minutes until its attempts are spent. Once per activity, at the configured attempt, it pages a human with what
 * fails; the retries go on, and a later success needs no action. A notifier that fails never hides the error.
 */
export class EscalateRepeatedFailureInterceptor implements ActivityInboundCallsInterceptor {
  constructor(private readonly notify = createNotifyEscalation(), private readonly atAttempt = escalateAfterAttempts()) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    try {
      return await next(input);
    } catch (err) {
      const info = Context.current().info;
      if (pagesAHuman(err) && info.attempt === this.atAttempt) {
        await this.notify({
          runbook: info.workflowType ?? 'unknown',
          workflowId: info.workflowExecution?.workflowId ?? 'unknown',
          cluster: clusterOf(input.args),
          reason: `${info.activityType} has failed ${info.attempt} times and is still retrying: ${(err as Error)?.message ?? String(err)}`,
          action: `check what ${info.activityType} reaches (S3, Patroni, etcd, the site's API server) for ${clusterOf(input.args)}; the run goes on by itself once it answers`,
        }).catch(() => undefined);
      }
      throw err;
    }
  }
}
