// A step that keeps failing pages a human once, at the configured attempt, while its retries go on; final
// failures and "still converging" do not page. The interceptor runs in a real activity context.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityExecuteInput } from '@temporalio/worker';
import { EscalateRepeatedFailureInterceptor } from '../../worker/interceptors';
import { NotReadyError, SiteUnreachableError, toApplicationFailure } from '../../workflows/contracts/errors';
import type { Escalation } from '../../activities/notify/escalate';

async function failedAttempt(attempt: number, err: unknown): Promise<Escalation[]> {
  const pages: Escalation[] = [];
  const interceptor = new EscalateRepeatedFailureInterceptor(async (e) => {
    pages.push(e);
    return { delivered: ['test'] };
  }, 3);
  const env = new MockActivityEnvironment({
    attempt, activityType: 'walgRunBaseBackup', workflowType: 'forceBackup',
    workflowExecution: { workflowId: 'force-backup/eu/acid-x', runId: 'r1' },
  });
  const input = { args: [{ ref: 'eu/acid-x' }], headers: {} } as unknown as ActivityExecuteInput;
  const thrown = await env.run(() => interceptor.execute(input, async () => { throw err; })).then(() => null, (e: unknown) => e);
  expect(thrown).toBe(err);
  return pages;
}

describe('escalation of a step that keeps failing', () => {
  const s3Down = toApplicationFailure(new SiteUnreachableError('S3 at http://127.0.0.1:9000 does not answer'));

  it('pages once, at the configured attempt, naming the step, the cluster and the error, and still fails the attempt', async () => {
    expect(await failedAttempt(2, s3Down)).toEqual([]);
    const pages = await failedAttempt(3, s3Down);
    expect(pages).toEqual([expect.objectContaining({
      runbook: 'forceBackup', workflowId: 'force-backup/eu/acid-x', cluster: 'eu/acid-x',
      reason: expect.stringMatching(/walgRunBaseBackup has failed 3 times and is still retrying: S3 at .* does not answer/),
    })]);
    expect(await failedAttempt(4, s3Down)).toEqual([]);
  });

  it('does not page for a final failure or for "still converging"', async () => {
    expect(await failedAttempt(3, ApplicationFailure.nonRetryable('bad input', 'BadInputError'))).toEqual([]);
    expect(await failedAttempt(3, toApplicationFailure(new NotReadyError('standby still replaying')))).toEqual([]);
  });

  it('a notifier that fails never hides the error', async () => {
    const interceptor = new EscalateRepeatedFailureInterceptor(async () => { throw new Error('pager down'); }, 1);
    const env = new MockActivityEnvironment({ attempt: 1 });
    const input = { args: [{}], headers: {} } as unknown as ActivityExecuteInput;
    await expect(env.run(() => interceptor.execute(input, async () => { throw s3Down; }))).rejects.toBe(s3Down);
  });
});
