// region-failover found a promotion of one of its clusters already running (started by a human or an earlier
// evacuation): it waits for that run instead of starting a second one, and hands it the evacuation's approval
// when its gate is open, so one decision still covers the whole region.
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { approveUpdate, getPendingApprovalQuery, type ApprovalDecision } from '../../workflows/contracts/approvals';
import type { PromoteResult } from '../../workflows/contracts/runbooks';

export interface JoinPromotionInput {
  workflowId: string;
  /** The evacuation's decision, given to the joined run's gate if it asks (null: only wait). */
  approval: ApprovalDecision | null;
}

export type JoinPromotionOutcome =
  | { kind: 'completed'; result: PromoteResult }
  | { kind: 'failed'; type: string; message: string };

export function createJoinPromotion() {
  return async function temporalJoinPromotion(input: JoinPromotionInput): Promise<JoinPromotionOutcome> {
    const ctx = Context.current();
    const handle = ctx.client.workflow.getHandle(input.workflowId);
    // 'refused' is the joined run's own answer; any other failure (an RPC cut or timed out under load) is tried
    // again, or a joined promotion would wait for a human although the evacuation's decision covers it.
    let handed: 'not yet' | 'accepted' | 'refused' = 'not yet';
    const result = handle.result().then(
      (r) => ({ kind: 'completed', result: r as PromoteResult }) as const,
      (err: unknown) => {
        const cause = err instanceof WorkflowFailedError ? err.cause : err;
        return { kind: 'failed', type: (cause as { type?: string })?.type ?? (cause as Error)?.name ?? 'Error', message: (cause as Error)?.message ?? String(cause) } as const;
      },
    );
    for (;;) {
      const done = await Promise.race([result, new Promise<null>((r) => setTimeout(() => r(null), 2000))]);
      if (done) return done;
      ctx.heartbeat({ waitingFor: input.workflowId, approval: handed });
      if (input.approval && handed === 'not yet') {
        const gate = await handle.query(getPendingApprovalQuery).catch(() => null);
        if (gate) {
          // A refusal (e.g. the joined run needs an acknowledgement the evacuation's approver did not give) leaves
          // the gate to a human, as it would have been without the evacuation.
          handed = await handle.executeUpdate(approveUpdate, { args: [{ ...input.approval, gate: gate.gate }] }).then(
            () => 'accepted' as const,
            (err: unknown) => (err instanceof WorkflowUpdateFailedError ? 'refused' as const : 'not yet' as const),
          );
        }
      }
    }
  };
}
