// The durable record of one runbook run: the step journal (a query), phase timings, the search attributes
// that make runs findable, and the UI's current-details line. Deterministic: time is the workflow clock.
import {
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  DR_APPROVAL_PENDING,
  DR_CLUSTER,
  DR_OUTCOME,
  DR_PHASE,
  DR_RUNBOOK,
  DR_SITE,
} from '../contracts/search-attributes';
import {
  getJournalQuery,
  getStatusQuery,
  type JournalEntry,
  type RunbookStatus,
  type StepOutcome,
} from '../contracts/journal';
import { failureFacts } from './failures';

// A human's "no" and a human's silence end a run with outcomes of their own, not "failed".
const OUTCOME_OF_FAILURE: Record<string, 'rejected' | 'timed-out'> = {
  ApprovalRejectedError: 'rejected',
  ApprovalTimedOutError: 'timed-out',
};

export class RunbookRecord {
  private readonly journal: JournalEntry[] = [];
  private readonly phaseDurationsMs: Record<string, number> = {};
  private currentPhase = 'starting';
  private phaseStartedAt = Date.now();
  private state: RunbookStatus['state'] = 'running';
  private waitingFor: string | undefined;
  private detailLines: string[] = [];

  constructor(
    private readonly runbook: string,
    private readonly clusterRef: string,
  ) {
    setHandler(getJournalQuery, () => this.journal);
    setHandler(getStatusQuery, () => this.status());
    const site = clusterRef.split('/')[0] ?? '';
    // Set here as well as at start, so runs started without them (UI form, schedules) are still findable.
    upsertSearchAttributes([
      { key: DR_RUNBOOK, value: runbook },
      { key: DR_CLUSTER, value: clusterRef },
      { key: DR_SITE, value: site },
      { key: DR_PHASE, value: this.currentPhase },
      { key: DR_APPROVAL_PENDING, value: false },
    ]);
  }

  /** Run one phase of the runbook: its time is measured and it shows in the UI and search attributes. */
  async phase<T>(name: string, work: () => Promise<T>): Promise<T> {
    this.currentPhase = name;
    this.phaseStartedAt = Date.now();
    upsertSearchAttributes([{ key: DR_PHASE, value: name }]);
    this.refreshDetails();
    try {
      return await work();
    } finally {
      this.phaseDurationsMs[name] = (this.phaseDurationsMs[name] ?? 0) + (Date.now() - this.phaseStartedAt);
    }
  }

  /** Append one step: a past-tense sentence that names the cluster and its numbers. */
  step(step: string, outcome: StepOutcome, message: string, facts?: Record<string, unknown>): void {
    this.journal.push({
      seq: this.journal.length + 1,
      at: new Date().toISOString(),
      phase: this.currentPhase,
      step,
      outcome,
      message,
      ...(facts ? { facts } : {}),
    });
    this.refreshDetails();
  }

  waiting(what: string | undefined): void {
    this.waitingFor = what;
    this.state = what ? 'waiting' : 'running';
    this.refreshDetails();
  }

  /** `lagging`: a check (standby-lag) that ran to its end and found something over its threshold. */
  finish(outcome: 'succeeded' | 'failed' | 'already' | 'refused' | 'rejected' | 'timed-out' | 'lagging'): void {
    this.state = outcome === 'failed' || outcome === 'refused' || outcome === 'rejected' || outcome === 'timed-out'
      ? 'failed'
      : 'succeeded';
    this.currentPhase = 'done';
    upsertSearchAttributes([
      { key: DR_OUTCOME, value: outcome },
      { key: DR_PHASE, value: 'done' },
      { key: DR_APPROVAL_PENDING, value: false },
    ]);
    this.refreshDetails();
  }

  /**
   * Records why the run ends and sets its outcome. A final error before anything changed is a refusal; once the
   * runbook has changed something, every error is a failure. The caller rethrows.
   */
  failed(err: unknown, opts: { changedAnything: boolean }): void {
    const f = failureFacts(err);
    const refused = f.refused && !opts.changedAnything;
    this.waiting(undefined);
    this.step('runbook', refused ? 'refused' : 'failed', f.message, { type: f.type });
    this.finish(OUTCOME_OF_FAILURE[f.type] ?? (refused ? 'refused' : 'failed'));
  }

  /** Picks up where an earlier run of the same runbook left off (continue-as-new carries journal and timings). */
  restore(journal: JournalEntry[], durations: Record<string, number>): void {
    this.journal.push(...journal);
    Object.assign(this.phaseDurationsMs, durations);
    this.refreshDetails();
  }

  /** Extra lines under the UI's current details (e.g. an evacuation's progress counts). */
  setDetailLines(lines: string[]): void {
    this.detailLines = lines;
    this.refreshDetails();
  }

  durations(): Record<string, number> {
    return { ...this.phaseDurationsMs };
  }

  status(): RunbookStatus {
    return {
      runbook: this.runbook,
      cluster: this.clusterRef,
      phase: this.currentPhase,
      state: this.state,
      journal: this.journal,
      phaseDurationsMs: this.durations(),
    };
  }

  private refreshDetails(): void {
    const last = this.journal[this.journal.length - 1];
    const lines = [
      `**${this.runbook}** of \`${this.clusterRef}\` (run ${workflowInfo().workflowId})`,
      `- phase: **${this.currentPhase}** (${this.state})`,
    ];
    if (this.waitingFor) lines.push(`- waiting for: ${this.waitingFor}`);
    lines.push(...this.detailLines);
    if (last) lines.push(`- last step: ${last.step} — ${last.outcome}: ${last.message}`);
    setCurrentDetails(lines.join('\n'));
  }
}
