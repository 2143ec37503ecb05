// A runbook command: validate the input, start the runbook with its business-key workflow ID (a running one is
// reported, never duplicated), then follow it to its end unless --no-wait.
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { Command } from 'commander';
import { runbookWorkflowId } from '../../../workflows/contracts/runbooks';
import { DR_OUTCOME } from '../../../workflows/contracts/search-attributes';
import { RunbookAlreadyRunningError, startRunbook } from '../runbook-client';
import type { Action } from './context';
import { followRun } from './follow';
import { CliError, formatMs, type Answer } from './output';
import type { RunbookCommandSpec } from './runbooks';
import { tokenOfLoggedInUser } from './user-token';

/**
 * Who starts the run: a token of the logged-in user bound to this run (nonce `start:<workflowId>`), or nobody when no
 * one is logged in (the run journals "unauthenticated"; a sites file may refuse that). Never part of the echoed input.
 */
async function requesterProof(workflowId: string): Promise<{ requesterIdToken?: string; requester: string }> {
  const proof = await tokenOfLoggedInUser(`start:${workflowId}`);
  return proof
    ? { requesterIdToken: proof.token, requester: `${proof.user} of ${proof.issuer}` }
    : { requester: 'unauthenticated (nobody is logged in: drctl login --user <you>)' };
}

export function defineRunbookCommand(program: Command, spec: RunbookCommandSpec, register: (cmd: Command, action: Action) => void): void {
  const cmd = spec.define(program.command(spec.command).description(spec.description))
    .option('--no-wait', 'return right after the start instead of following the run to its end');
  spec.subcommands?.(cmd, register);
  register(cmd, async ({ out, opts, args, temporal }) => {
    const { cluster, input } = spec.input(args, opts);
    const workflowId = spec.workflowId?.(input) ?? runbookWorkflowId(spec.runbook, cluster);
    const identifies = typeof spec.identifiesRequester === 'function' ? spec.identifiesRequester(input) : spec.identifiesRequester === true;
    const { requesterIdToken, requester } = identifies ? await requesterProof(workflowId) : { requesterIdToken: undefined, requester: null };
    const t = await temporal();
    let handle: WorkflowHandleWithFirstExecutionRunId;
    try {
      // client.workflow.start answers with the first run's ID; startRunbook's type does not say so.
      handle = await startRunbook(t.client, {
        workflowType: spec.workflowType, runbook: spec.runbook, cluster, taskQueue: t.taskQueue, workflowId,
        input: requesterIdToken ? { ...input, requesterIdToken } : input,
      }) as WorkflowHandleWithFirstExecutionRunId;
    } catch (err) {
      if (!(err instanceof RunbookAlreadyRunningError)) throw err;
      throw new CliError('already-running', `${err.message} (see: drctl status ${err.workflowId})`,
        { workflowId: err.workflowId, runId: err.runId ?? null, runbook: spec.runbook, cluster, input, started: false });
    }
    const started = {
      workflowId: handle.workflowId, runId: handle.firstExecutionRunId, runbook: spec.runbook, cluster,
      taskQueue: t.taskQueue, input, started: true, ...(requester ? { requester } : {}),
    };
    out.progress(`started ${handle.workflowId} (run ${handle.firstExecutionRunId}) on ${t.taskQueue} at ${t.address}${requester ? `, requested by ${requester}` : ''}`);
    if (opts.wait === false) {
      return {
        ok: true,
        data: { ...started, status: 'RUNNING' },
        human: [
          `Started ${handle.workflowId} (run ${handle.firstExecutionRunId})${requester ? `, requested by ${requester}` : ''}.`,
          `  follow:  drctl status ${handle.workflowId}`,
          ...((typeof spec.hasApprovalGate === 'function' ? spec.hasApprovalGate(input) : spec.hasApprovalGate) ? [`  approve: drctl login --user <you>; drctl approve ${handle.workflowId} --ticket <ticket>   (once its gate is open)`] : []),
        ].join('\n'),
      };
    }
    const t0 = Date.now();
    const stop = () => {
      out.progress(`stopped following; ${handle.workflowId} goes on (drctl status ${handle.workflowId})`);
      process.exit(130);
    };
    process.once('SIGINT', stop);
    const f = await followRun(t, handle, out, spec.relatedRuns?.(input) ?? [], { progress: spec.progress });
    process.removeListener('SIGINT', stop);
    const outcomeName = (await handle.describe().catch(() => null))?.typedSearchAttributes.get(DR_OUTCOME);
    const data = {
      ...started,
      status: f.failure ? 'FAILED' : 'COMPLETED',
      outcome: outcomeName ?? (f.failure ? 'failed' : 'succeeded'),
      result: f.result,
      failure: f.failure,
      approvalsRequested: f.approvalsRequested,
      journal: f.journal,
    };
    const took = formatMs(Date.now() - t0);
    if (f.failure) {
      const answer: Answer = {
        ok: false,
        data,
        human: `${handle.workflowId} ended ${data.outcome} after ${took}: ${f.failure.type}: ${f.failure.message}`,
        error: { kind: data.outcome === 'refused' ? 'refused' : 'failed', message: `${f.failure.type}: ${f.failure.message}`, type: f.failure.type },
      };
      return answer;
    }
    return {
      ok: true,
      data,
      human: [`${handle.workflowId} ${data.outcome} after ${took}.`, ...spec.summarize(f.result).map((l) => `  ${l}`)].join('\n'),
    };
  });
}
