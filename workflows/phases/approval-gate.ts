// A human decision, durably: the gate opens with what will happen, the estimated loss and the fence state;
// it accepts one decision (Update with a validator, or Signal) and never proceeds silently on timeout.
import { ApplicationFailure, condition, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { control } from '../activity-proxies';
import {
  APPROVAL_DESCRIPTIONS, approveSignal, decisionOf, approveUpdate, getPendingApprovalQuery, rejectSignal, rejectUpdate,
  type ApprovalDecision, type PendingApproval,
} from '../contracts/approvals';
import { DR_APPROVAL_PENDING } from '../contracts/search-attributes';
import type { ApprovalRecord } from '../contracts/runbooks';
import type { RunbookRecord } from './runbook-record';

/** What a decision is about, for the journal, the escalation and the failure that ends an aborted run. */
export interface DecisionTerms {
  /** e.g. "promoting us/acid-demo" */
  what: string;
  /** What an abort leaves behind, e.g. "nothing was promoted". */
  abortedMeans: string;
  /** What the escalated human should do next. */
  nextStep: string;
  /** Undoes what the run did before the gate (a fence), on rejection or timeout. */
  undo?: (why: string) => Promise<void>;
  /** A runbook's own reason to refuse an approval (e.g. region-failover's `include`), or undefined to accept. */
  check?: (d: ApprovalDecision) => string | undefined;
}

export type GateOutcome = { kind: 'decided'; record: ApprovalRecord } | { kind: 'timed-out' };

/** Why a decision cannot be taken, or undefined when it can. */
function refusal(gate: PendingApproval | null, decided: boolean, d: ApprovalDecision, approving: boolean): string | undefined {
  if (!gate) return 'no approval gate is open in this run';
  if (decided) return `gate "${gate.gate}" was already decided`;
  if (d?.gate && d.gate !== gate.gate) return `gate "${d.gate}" is not open (the open gate is "${gate.gate}")`;
  if (!d || typeof d.approver !== 'string' || d.approver.trim() === '') return 'approver is missing: say who decides';
  if (typeof d.ticket !== 'string' || d.ticket.trim() === '') return 'ticket is missing: name the incident or change ticket';
  if (approving && gate.requires.acknowledgeDataLoss && d.acknowledgeDataLoss !== true) {
    return `the estimated loss (${gate.estimate?.bytes ?? '?'} bytes, ${gate.estimate?.seconds ?? '?'} s) exceeds the policy: approve with "acknowledgeDataLoss": true`;
  }
  if (approving && gate.requires.acknowledgeUnconfirmedFence && d.acknowledgeUnconfirmedFence !== true) {
    return 'the old primary is NOT confirmed fenced and may still take writes: approve with "acknowledgeUnconfirmedFence": true';
  }
  return undefined;
}

export class ApprovalGate {
  private open: PendingApproval | null = null;
  private decision: ApprovalRecord | null = null;
  private extraCheck: DecisionTerms['check'];

  constructor(private readonly record: RunbookRecord) {
    setHandler(getPendingApprovalQuery, () => this.open);
    const decide = (approving: boolean, via: 'update' | 'signal') => (d: ApprovalDecision): ApprovalRecord => {
      const r: ApprovalRecord = {
        decision: approving ? 'approved' : 'rejected',
        approver: d.approver.trim(),
        ticket: d.ticket.trim(),
        comment: d.comment,
        at: new Date().toISOString(),
        acknowledgedDataLoss: d.acknowledgeDataLoss === true,
        acknowledgedUnconfirmedFence: d.acknowledgeUnconfirmedFence === true,
        via,
        ...(approving && Array.isArray(d.include) && d.include.length > 0 ? { included: d.include.map(String) } : {}),
      };
      this.decision = r;
      return r;
    };
    const validator = (approving: boolean) => (d: ApprovalDecision) => {
      const why = this.refusal(d, approving);
      if (why) throw new Error(why);
    };
    setHandler(approveUpdate, decide(true, 'update'), { validator: validator(true), description: APPROVAL_DESCRIPTIONS.approve });
    setHandler(rejectUpdate, decide(false, 'update'), { validator: validator(false), description: APPROVAL_DESCRIPTIONS.reject });
    const signal = (approving: boolean) => (d: ApprovalDecision) => {
      const why = this.refusal(d, approving);
      if (why) {
        this.record.step('approval-signal', 'refused', `Ignored a ${approving ? 'approval' : 'rejection'} signal from ${String(d?.approver ?? 'nobody')}: ${why}.`);
        return;
      }
      decide(approving, 'signal')(d);
    };
    setHandler(approveSignal, signal(true), { description: APPROVAL_DESCRIPTIONS.approveSignal });
    setHandler(rejectSignal, signal(false), { description: APPROVAL_DESCRIPTIONS.rejectSignal });
  }

  /**
   * Opens the gate and returns the approval. A rejection or a timeout (after an escalation) undoes what the terms
   * say and ends the run with ApprovalRejectedError / ApprovalTimedOutError: never proceeds silently.
   */
  async decide(
    gate: Omit<PendingApproval, 'openedAt' | 'expiresAt'>, timeoutSeconds: number, terms: DecisionTerms, delegated?: ApprovalRecord | null,
  ): Promise<ApprovalRecord> {
    if (delegated) {
      const given = this.acceptDelegated(gate, delegated);
      if (given) return given;
    }
    this.extraCheck = terms.check;
    const outcome = await this.await(gate, timeoutSeconds).finally(() => {
      this.extraCheck = undefined;
    });
    if (outcome.kind === 'timed-out') {
      const reason = `nobody decided on ${terms.what} within ${timeoutSeconds}s`;
      this.record.step('approval', 'failed', `No decision within ${timeoutSeconds}s: escalated and aborted; ${terms.abortedMeans}.`);
      await control.notifyEscalation({ runbook: gate.runbook, workflowId: workflowInfo().workflowId, cluster: gate.cluster, reason, action: terms.nextStep });
      await terms.undo?.('approval timed out');
      throw ApplicationFailure.nonRetryable(`${reason}: escalated; ${terms.abortedMeans}`, 'ApprovalTimedOutError');
    }
    const a = outcome.record;
    this.record.step('approval', a.decision === 'approved' ? 'done' : 'refused',
      `${a.decision === 'approved' ? 'Approved' : 'Rejected'} by ${a.approver} (ticket ${a.ticket}, via ${a.via})${a.comment ? `: "${a.comment}"` : ''}` +
      `${a.acknowledgedDataLoss ? '; data loss acknowledged' : ''}${a.acknowledgedUnconfirmedFence ? '; unconfirmed fence acknowledged' : ''}.`,
      { ...a });
    if (a.decision === 'rejected') {
      await terms.undo?.(`rejected by ${a.approver}`);
      throw ApplicationFailure.nonRetryable(`${terms.what} rejected by ${a.approver} (ticket ${a.ticket}); ${terms.abortedMeans}`, 'ApprovalRejectedError');
    }
    return a;
  }

  private refusal(d: ApprovalDecision, approving: boolean): string | undefined {
    return refusal(this.open, this.decision !== null, d, approving) ?? (approving && this.open ? this.extraCheck?.(d) : undefined);
  }

  /**
   * An approval a parent runbook was given for this run (region-failover): it stands for the human's decision only
   * when it acknowledges everything this gate requires, judged exactly as a decision sent to the gate would be.
   */
  private acceptDelegated(gate: Omit<PendingApproval, 'openedAt' | 'expiresAt'>, delegated: ApprovalRecord): ApprovalRecord | null {
    const why = delegated.decision !== 'approved'
      ? 'it is not an approval'
      : refusal({ ...gate, openedAt: '', expiresAt: '' }, false, decisionOf(delegated), true);
    const by = delegated.delegatedBy ?? 'a parent runbook';
    if (why) {
      this.record.step('approval', 'waiting', `The approval ${delegated.approver} gave through ${by} does not cover this gate (${why}): waiting for a human.`);
      return null;
    }
    const r: ApprovalRecord = { ...delegated, via: 'delegated', delegatedBy: by, at: new Date().toISOString() };
    this.decision = r;
    this.record.step('approval', 'done',
      `Approved by ${r.approver} (ticket ${r.ticket}) through ${by}${r.comment ? `: "${r.comment}"` : ''}` +
      `${r.acknowledgedDataLoss ? '; data loss acknowledged' : ''}${r.acknowledgedUnconfirmedFence ? '; unconfirmed fence acknowledged' : ''}.`,
      { ...r });
    return r;
  }

  /** Opens the gate and waits for one decision or the timeout. */
  async await(gate: Omit<PendingApproval, 'openedAt' | 'expiresAt'>, timeoutSeconds: number): Promise<GateOutcome> {
    const now = Date.now();
    // One gate object may open several gates in a run (region-failover asks once per tier).
    this.decision = null;
    this.open = { ...gate, openedAt: new Date(now).toISOString(), expiresAt: new Date(now + timeoutSeconds * 1000).toISOString() };
    upsertSearchAttributes([{ key: DR_APPROVAL_PENDING, value: true }]);
    this.record.waiting(`approval of gate "${gate.gate}" (update "approve"/"reject" or signal "approveSignal"/"rejectSignal") until ${this.open.expiresAt}`);
    const decided = await condition(() => this.decision !== null, timeoutSeconds * 1000);
    this.record.waiting(undefined);
    upsertSearchAttributes([{ key: DR_APPROVAL_PENDING, value: false }]);
    this.open = null;
    return decided && this.decision ? { kind: 'decided', record: this.decision } : { kind: 'timed-out' };
  }
}
