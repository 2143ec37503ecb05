// Activities throw typed RunbookErrors; Temporal needs ApplicationFailures to carry the type and the
// retryability. Converting here, once, keeps every activity free of Temporal-specific error plumbing.
import type { ActivityInboundCallsInterceptor, ActivityExecuteInput, Next } from '@temporalio/worker';
import { RunbookError, toApplicationFailure } from '../workflows/contracts/errors';

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
