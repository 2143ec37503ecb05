// A human decision, durably: the gate opens with what will happen, the estimated loss and the fence state;
// it accepts one decision (Update with a validator, or Signal) and never proceeds silently on timeout.
import { ApplicationFailure, condition, patched, setHandler, upsertSearchAttributes, uuid4, workflowInfo } from '@temporalio/workflow';
import { control } from '../activity-proxies';
import {
  APPROVAL_DESCRIPTIONS, approveSignal, decisionOf, approveUpdate, getPendingApprovalQuery, rejectSignal, rejectUpdate,
  VERIFIED_APPROVALS_PATCH, type ApprovalDecision, type PendingApproval,
} from '../contracts/approvals';
import type { ApproverIdentity } from '../contracts/identity';
import { approversNeeded, checkDecision, describeApprover, identifyRequester } from './verified-decision';
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

/** What an approval agrees to, beyond "yes": two approvers of one gate must agree to the same. */
type AgreedTerms = { acknowledgeDataLoss: boolean; acknowledgeUnconfirmedFence: boolean; include: string[] };
const termsOf = (d: ApprovalDecision): AgreedTerms => ({
  acknowledgeDataLoss: d.acknowledgeDataLoss === true,
  acknowledgeUnconfirmedFence: d.acknowledgeUnconfirmedFence === true,
  include: Array.isArray(d.include) ? d.include.map(String).sort() : [],
});

/** The record of one decision as the gate took it. */
function recordOf(d: ApprovalDecision, approving: boolean, via: 'update' | 'signal', approver: string): ApprovalRecord {
  return {
    decision: approving ? 'approved' : 'rejected',
    approver,
    ticket: d.ticket.trim(),
    comment: d.comment,
    at: new Date().toISOString(),
    acknowledgedDataLoss: d.acknowledgeDataLoss === true,
    acknowledgedUnconfirmedFence: d.acknowledgeUnconfirmedFence === true,
    via,
    ...(approving && Array.isArray(d.include) && d.include.length > 0 ? { included: d.include.map(String) } : {}),
  };
}

export type GateOutcome = { kind: 'decided'; record: ApprovalRecord } | { kind: 'timed-out' };

/**
 * Why a decision cannot be taken, or undefined when it can. `verifying`: who decides is proven by a token the
 * identity check verifies later, so here only its presence (or a typed name, which that check judges) is asked for.
 */
function refusal(gate: PendingApproval | null, decided: boolean, d: ApprovalDecision, approving: boolean, verifying = false): string | undefined {
  if (!gate) return 'no approval gate is open in this run';
  if (decided) return `gate "${gate.gate}" was already decided`;
  if (d?.gate && d.gate !== gate.gate) return `gate "${d.gate}" is not open (the open gate is "${gate.gate}")`;
  const named = (v: unknown) => typeof v === 'string' && v.trim() !== '';
  if (verifying && !(named(d?.idToken) || named(d?.approver))) {
    return `idToken is missing: prove who decides with the ID token of \`drctl login\` (nonce "${approving ? 'approve' : 'reject'}:${gate.challenge}")`;
  }
  if (!verifying && (!d || !named(d.approver))) return 'approver is missing: say who decides';
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
  /** Decisions are proven and judged by policy (runs started since the verified-approvals patch). */
  private verifying = false;
  private requester: ApproverIdentity | null = null;
  /** Verified approvals given at the open gate so far, with the rule that allowed each. */
  private signatures: { approver: ApproverIdentity; rule: string; policyVersion: string; terms: AgreedTerms }[] = [];

  constructor(private readonly record: RunbookRecord) {
    setHandler(getPendingApprovalQuery, () => this.open);
    const decide = (approving: boolean, via: 'update' | 'signal') => (d: ApprovalDecision): ApprovalRecord => {
      const r = recordOf(d, approving, via, String(d.approver).trim());
      this.decision = r;
      return r;
    };
    const validator = (approving: boolean) => (d: ApprovalDecision) => {
      const why = this.refusal(d, approving);
      if (why) throw new Error(why);
    };
    const update = (approving: boolean) => async (d: ApprovalDecision): Promise<ApprovalRecord> =>
      this.verifying ? this.takeVerified(d, approving, 'update') : decide(approving, 'update')(d);
    setHandler(approveUpdate, update(true), { validator: validator(true), description: APPROVAL_DESCRIPTIONS.approve });
    setHandler(rejectUpdate, update(false), { validator: validator(false), description: APPROVAL_DESCRIPTIONS.reject });
    const signal = (approving: boolean) => async (d: ApprovalDecision) => {
      const why = this.refusal(d, approving);
      if (why) {
        const from = this.verifying ? 'someone' : String(d?.approver ?? 'nobody');
        this.record.step('approval-signal', 'refused', `Ignored ${approving ? 'an approval' : 'a rejection'} signal from ${from}: ${why}.`);
        return;
      }
      if (!this.verifying) {
        decide(approving, 'signal')(d);
        return;
      }
      // A signal has nobody to answer: a refusal is journaled by takeVerified and dropped here.
      await this.takeVerified(d, approving, 'signal').catch(() => undefined);
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
    const verified = !!a.approvers?.length && a.approvers.every((x) => x.authenticated);
    const by = verified ? `${a.approvers!.map(describeApprover).join(' and ')} (rule "${a.rule}")` : a.approver;
    this.record.step('approval', a.decision === 'approved' ? 'done' : 'refused',
      `${a.decision === 'approved' ? 'Approved' : 'Rejected'} by ${by} (ticket ${a.ticket}, via ${a.via})${a.comment ? `: "${a.comment}"` : ''}` +
      `${a.acknowledgedDataLoss ? '; data loss acknowledged' : ''}${a.acknowledgedUnconfirmedFence ? '; unconfirmed fence acknowledged' : ''}` +
      `${a.approvers?.length && !verified ? '; a typed name, NOT verified (the sites file accepts typed names)' : ''}.`,
      { ...a });
    if (a.decision === 'rejected') {
      await terms.undo?.(`rejected by ${a.approver}`);
      throw ApplicationFailure.nonRetryable(`${terms.what} rejected by ${a.approver} (ticket ${a.ticket}); ${terms.abortedMeans}`, 'ApprovalRejectedError');
    }
    return a;
  }

  private refusal(d: ApprovalDecision, approving: boolean): string | undefined {
    return refusal(this.open, this.decision !== null, d, approving, this.verifying) ?? (approving && this.open ? this.extraCheck?.(d) : undefined);
  }

  /**
   * Who started the run, verified (or "unauthenticated"), before anything changes: the approver must be someone
   * else. Runs started before the verified-approvals patch skip it and take typed names as they always did.
   */
  async identifyRequester(idToken: unknown): Promise<ApproverIdentity | null> {
    if (!patched(VERIFIED_APPROVALS_PATCH)) return null;
    this.verifying = true;
    this.requester = await identifyRequester(this.record, idToken);
    return this.requester;
  }

  /** A continued run (continue-as-new): the requester its first run identified; no second identification. */
  resumeWithRequester(requester: ApproverIdentity | null | undefined): void {
    if (!patched(VERIFIED_APPROVALS_PATCH)) return;
    this.verifying = true;
    this.requester = requester ?? null;
  }

  /**
   * A decision whose sender the identity check proved and the policy allows. An approval that needs a second
   * person is kept as the first signature and answered as such; the gate stays open.
   */
  private async takeVerified(d: ApprovalDecision, approving: boolean, via: 'update' | 'signal'): Promise<ApprovalRecord> {
    const gate = this.open!;
    const check = await checkDecision(gate, d, approving, this.requester, this.signatures.map((s) => s.approver));
    const kind = approving ? 'an approval' : 'a rejection';
    const reason = check.accepted ? this.lateRefusal(gate, d, approving, check.approver) : check.reason;
    if (reason || !check.accepted) {
      // Steps of their own: `approval` is the decision, once per gate, as the journal has always had it.
      this.record.step('approval-refused', 'refused', `Refused ${kind} (via ${via}): ${reason}.`, { policyVersion: check.policyVersion });
      throw ApplicationFailure.nonRetryable(reason ?? 'refused', 'ApprovalRefusedError');
    }
    // An approval that accepts data loss or an unconfirmed fence, asked for by the gate or offered (include), takes two.
    const needed = approving && check.approver.authenticated ? approversNeeded(gate.requires, d) : 1;
    if (approving) this.signatures.push({ approver: check.approver, rule: check.rule, policyVersion: check.policyVersion, terms: termsOf(d) });
    const approvers = approving ? this.signatures.map((s) => s.approver) : [check.approver];
    const r: ApprovalRecord = { ...recordOf(d, approving, via, check.approver.subject), approvers, rule: check.rule, policyVersion: check.policyVersion };
    if (approving && this.signatures.length < needed) {
      this.open = { ...gate, signedBy: approvers };
      this.record.step('approval-signature', 'waiting',
        `Approval ${this.signatures.length} of ${needed} by ${describeApprover(check.approver)} (rule "${check.rule}", ticket ${r.ticket}): ` +
        `${r.acknowledgedDataLoss ? 'accepting data loss' : 'trusting an unconfirmed fence'} takes ${needed} different people; waiting for the next.`,
        { approver: check.approver, rule: check.rule });
      return { ...r, awaitingApprovers: needed - this.signatures.length };
    }
    this.decision = r;
    return r;
  }

  /** What changed while the identity check ran: the gate decided or replaced, the same person signing twice, other terms. */
  private lateRefusal(gate: PendingApproval, d: ApprovalDecision, approving: boolean, who: ApproverIdentity): string | undefined {
    if (this.open?.challenge !== gate.challenge) return `gate "${gate.gate}" closed while the decision was checked`;
    const now = this.refusal(d, approving);
    if (now) return now;
    if (!approving || !this.signatures.length) return undefined;
    if (this.signatures.some((s) => s.approver.issuer === who.issuer && s.approver.subject === who.subject)) {
      return `${who.subject} has already approved this gate: the next approval must come from someone else`;
    }
    const first = this.signatures[0];
    if (JSON.stringify(first.terms) !== JSON.stringify(termsOf(d))) {
      return `the first approval (by ${first.approver.subject}) was for ${JSON.stringify(first.terms)}; a second approval must make the same ` +
        `decision, not ${JSON.stringify(termsOf(d))}`;
    }
    return undefined;
  }

  /**
   * An approval a parent runbook was given for this run (region-failover): it stands for the human's decision only
   * when it acknowledges everything this gate requires, judged exactly as a decision sent to the gate would be.
   */
  private acceptDelegated(gate: Omit<PendingApproval, 'openedAt' | 'expiresAt'>, delegated: ApprovalRecord): ApprovalRecord | null {
    const verified = (delegated.approvers ?? []).filter((a) => a.authenticated).length;
    const needed = approversNeeded(gate.requires);
    const why = delegated.decision !== 'approved'
      ? 'it is not an approval'
      : refusal({ ...gate, openedAt: '', expiresAt: '' }, false, decisionOf(delegated), true) ??
        (this.verifying && verified > 0 && verified < needed ? `it has ${verified} verified approver(s) and this gate needs ${needed}` : undefined);
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
    this.signatures = [];
    this.open = { ...gate, openedAt: new Date(now).toISOString(), expiresAt: new Date(now + timeoutSeconds * 1000).toISOString() };
    if (this.verifying) {
      // A fresh challenge per gate: a token signed for another gate, run or decision does not fit this one.
      this.open = { ...this.open, challenge: uuid4(), signedBy: [], requires: { ...gate.requires, approvers: approversNeeded(gate.requires) } };
    }
    upsertSearchAttributes([{ key: DR_APPROVAL_PENDING, value: true }]);
    this.record.waiting(`approval of gate "${gate.gate}" (update "approve"/"reject" or signal "approveSignal"/"rejectSignal") until ${this.open.expiresAt}`);
    const decided = await condition(() => this.decision !== null, timeoutSeconds * 1000);
    this.record.waiting(undefined);
    upsertSearchAttributes([{ key: DR_APPROVAL_PENDING, value: false }]);
    this.open = null;
    return decided && this.decision ? { kind: 'decided', record: this.decision } : { kind: 'timed-out' };
  }
}
