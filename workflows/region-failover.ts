// region-failover: a site is lost; promote the standby of every one of its clusters at the surviving site, the
// way an incident commander would run it: find the standbys, measure what each would lose, ask ONE decision
// with the whole table in front of the human, then promote tier by tier with a bounded number at once, stopping
// to ask again when too many fail. Each promotion is the ordinary promote runbook as a child workflow.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ApplicationFailure, condition, continueAsNew, ParentClosePolicy, patched, proxyActivities, setHandler, startChild, workflowInfo,
} from '@temporalio/workflow';
import type { ControlActivities } from '../activities';
import { control, siteActivities, siteProbeActivities } from './activity-proxies';
import { decisionOf, delegatedApprovalQuery, NO_PUBLIC_DELEGATION_PATCH } from './contracts/approvals';
import { parseClusterRef, zalandoClusterNameProblem } from './contracts/clusters';
import { BadInputError, NON_RETRYABLE_ERROR_TYPES } from './contracts/errors';
import { rejectUnknownFields } from './contracts/input-fields';
import {
  getRegionProgressQuery, getRegionTableQuery, REGION_FAILOVER_DEFAULTS, resolveFailureBudgetUpdate,
  type FailureBudgetDecision, type FailureBudgetRecord, type RegionClusterRow, type RegionFailoverInput,
  type RegionFailoverProgress, type RegionFailoverResult,
} from './contracts/region-failover';
import { RUNBOOK_NAMES, runbookWorkflowId, type ApprovalRecord, type PromoteInput, type PromoteResult } from './contracts/runbooks';
import type { JournalEntry } from './contracts/journal';
import type { ApproverIdentity } from './contracts/identity';
import { ApprovalGate } from './phases/approval-gate';
import { check, failureFacts } from './phases/failures';
import { RunbookRecord } from './phases/runbook-record';
import type { promote } from './promote';

interface Plan {
  lostSite: string;
  survivingSite: string;
  concurrency: number;
  assessConcurrency: number;
  maxFailures: number;
  onExceeded: 'pause' | 'stop';
  approvalMode: 'once' | 'per-tier';
  maxBytes: number;
  maxSeconds: number;
  approvalTimeoutSeconds: number;
  takeBackup: boolean;
  regionTimeoutSeconds: number;
  promotionsPerRun: number;
}

/** What one workflow run hands the next when it continues as new. */
export interface RegionFailoverCarry {
  run: number;
  startedAt: number;
  lostSiteReachable: boolean;
  rows: RegionClusterRow[];
  approvals: ApprovalRecord[];
  approvedTiers: number[];
  budgetDecisions: FailureBudgetRecord[];
  /** Failures the budget allows before the next pause (raised by "continue"). */
  failureAllowance: number;
  stopped: boolean;
  journal: JournalEntry[];
  phaseDurationsMs: Record<string, number>;
  /** Who started the evacuation, as verified when it started (carried into each continued run). */
  requester?: ApproverIdentity | null;
}

// Waiting for a promotion someone else started: it may sit at its own approval gate for a long time.
const joining = proxyActivities<ControlActivities>({
  startToCloseTimeout: '6h',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '2s', maximumInterval: '30s', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

export async function regionFailover(input: RegionFailoverInput, carry?: RegionFailoverCarry): Promise<RegionFailoverResult> {
  const lost = typeof input?.lostSite === 'string' ? input.lostSite : 'unknown';
  const record = new RunbookRecord(RUNBOOK_NAMES.regionFailover, `${lost}/*`);
  const gate = new ApprovalGate(record);
  let plan: Plan;
  try {
    plan = check(() => validateInput(input));
  } catch (err) {
    record.failed(err, { changedAnything: false });
    throw err;
  }
  const state: RegionFailoverCarry = carry ?? {
    run: 1, startedAt: Date.now(), lostSiteReachable: false, rows: [], approvals: [], approvedTiers: [], budgetDecisions: [],
    failureAllowance: plan.maxFailures, stopped: false, journal: [], phaseDurationsMs: {},
  };
  if (carry) {
    record.restore(carry.journal, carry.phaseDurationsMs);
    gate.resumeWithRequester(carry.requester);
  }
  const evacuation = new Evacuation(record, plan, state);
  setHandler(getRegionProgressQuery, () => evacuation.progress());
  setHandler(getRegionTableQuery, () => state.rows);
  let changing = false;
  try {
    if (!carry) {
      await record.phase('validate', async () => {
        await checkSites(record, plan);
        state.requester = await gate.identifyRequester(input.requesterIdToken);
      });
      await record.phase('discover', () => discoverStandbys(record, plan, state, input));
      await record.phase('assess', () => assessStandbys(record, plan, state));
      if (plan.approvalMode === 'once') await record.phase('approve', () => approveEvacuation(record, gate, plan, state, null));
    } else {
      record.step('continue', 'done', `Run ${state.run} of the evacuation picks up ${state.rows.filter((r) => r.outcome === 'pending').length} clusters still to promote.`);
    }
    changing = true;
    for (const tier of tiersToRun(state)) {
      if (state.stopped) break;
      if (plan.approvalMode === 'per-tier' && !state.approvedTiers.includes(tier)) {
        await record.phase(`approve-tier-${tier}`, () => approveEvacuation(record, gate, plan, state, tier));
      }
      const next = await record.phase(`promote-tier-${tier}`, () => evacuation.promoteTier(tier));
      if (next === 'continue-as-new') {
        record.step('continue-as-new', 'done', `Finished ${evacuation.finishedThisRun} promotions in run ${state.run} (history ${workflowInfo().historyLength} events): continuing as a new run so the history stays small.`);
        await continueAsNew<typeof regionFailover>(input, { ...state, run: state.run + 1, journal: record.status().journal, phaseDurationsMs: record.durations() });
      }
    }
    for (const row of state.rows) if (row.outcome === 'pending') finishRow(row, 'stopped', 'the evacuation was stopped before its turn');
    return finish(record, plan, state);
  } catch (err) {
    record.failed(err, { changedAnything: changing });
    throw err;
  }
}

function validateInput(input: RegionFailoverInput): Plan {
  if (!input || typeof input !== 'object') {
    throw new BadInputError('input must be a JSON object: {"lostSite": "eu", "survivingSite": "us"}');
  }
  rejectUnknownFields<RegionFailoverInput>(input, {
    lostSite: true, survivingSite: true, selector: true, tiers: true, concurrency: true, assessConcurrency: true, failureBudget: true,
    approvalMode: true, dataLossPolicy: true, approvalTimeoutSeconds: true, takeBackup: true, limits: true, requesterIdToken: true,
  });
  const site = (v: unknown, field: string): string => {
    if (typeof v !== 'string' || !/^[a-z][a-z0-9-]{0,30}$/.test(v)) throw new BadInputError(`${field} must be a site name from the sites file, e.g. "eu"`);
    return v;
  };
  const lostSite = site(input.lostSite, 'lostSite');
  const survivingSite = site(input.survivingSite, 'survivingSite');
  if (lostSite === survivingSite) throw new BadInputError(`lostSite and survivingSite are both "${lostSite}": name the site that is lost and the one that takes over`);
  const count = (v: unknown, field: string, dflt: number, min: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new BadInputError(`${field} must be a whole number >= ${min}`);
    return v;
  };
  // Not a list would fail the workflow task (a TypeError), which Temporal retries forever instead of refusing.
  if (input.selector?.clusters !== undefined && !Array.isArray(input.selector.clusters)) {
    throw new BadInputError('selector.clusters must be a list of cluster names at the lost site, e.g. ["acid-demo"]');
  }
  for (const name of input.selector?.clusters ?? []) {
    const problem = typeof name === 'string' ? zalandoClusterNameProblem(name.includes('/') ? name.split('/')[1] : name) : 'not a string';
    if (problem) throw new BadInputError(`selector.clusters: "${String(name)}": ${problem}`);
    if (typeof name === 'string' && name.includes('/')) parseClusterRef(name, 'selector.clusters');
  }
  for (const [name, tier] of Object.entries(input.tiers?.clusters ?? {})) {
    if (typeof tier !== 'number' || !Number.isInteger(tier) || tier < 0) throw new BadInputError(`tiers.clusters.${name} must be a whole number >= 0 (0 goes first)`);
  }
  const onExceeded = input.failureBudget?.onExceeded ?? 'pause';
  if (onExceeded !== 'pause' && onExceeded !== 'stop') throw new BadInputError('failureBudget.onExceeded must be "pause" (ask a human) or "stop"');
  const approvalMode = input.approvalMode ?? 'once';
  if (approvalMode !== 'once' && approvalMode !== 'per-tier') throw new BadInputError('approvalMode must be "once" or "per-tier"');
  const nonNegative = (v: unknown, field: string): number => {
    if (v === undefined) return 0;
    if (typeof v !== 'number' || !(v >= 0)) throw new BadInputError(`${field} must be a number >= 0`);
    return v;
  };
  const d = REGION_FAILOVER_DEFAULTS;
  return {
    lostSite, survivingSite, onExceeded, approvalMode,
    concurrency: count(input.concurrency, 'concurrency', d.concurrency, 1),
    assessConcurrency: count(input.assessConcurrency, 'assessConcurrency', d.assessConcurrency, 1),
    maxFailures: count(input.failureBudget?.maxFailures, 'failureBudget.maxFailures', d.maxFailures, 1),
    maxBytes: nonNegative(input.dataLossPolicy?.maxBytes, 'dataLossPolicy.maxBytes'),
    maxSeconds: nonNegative(input.dataLossPolicy?.maxSeconds, 'dataLossPolicy.maxSeconds'),
    approvalTimeoutSeconds: count(input.approvalTimeoutSeconds, 'approvalTimeoutSeconds', d.approvalTimeoutSeconds, 1),
    takeBackup: input.takeBackup !== false,
    regionTimeoutSeconds: count(input.limits?.regionTimeoutSeconds, 'limits.regionTimeoutSeconds', d.regionTimeoutSeconds, 1),
    promotionsPerRun: count(input.limits?.promotionsPerRun, 'limits.promotionsPerRun', d.promotionsPerRun, 1),
  };
}

async function checkSites(record: RunbookRecord, plan: Plan): Promise<void> {
  const r = await control.siteResolveSites({ sites: { lostSite: plan.lostSite, survivingSite: plan.survivingSite } });
  record.step('validate-request', 'done',
    `Evacuate ${plan.lostSite} (${r.lostSite.kind}) to ${plan.survivingSite} (${r.survivingSite.kind}): ${plan.concurrency} promotions at once, ` +
    `${plan.onExceeded} after ${plan.maxFailures} failure(s), approval ${plan.approvalMode === 'once' ? 'once for all' : 'per tier'}.`);
}

function tierOf(input: RegionFailoverInput, name: string, labels: Record<string, string>): number {
  const byName = input.tiers?.clusters?.[name];
  if (byName !== undefined) return byName;
  const label = labels[input.tiers?.label ?? REGION_FAILOVER_DEFAULTS.tierLabel];
  const n = label === undefined ? NaN : Number(label);
  return Number.isInteger(n) && n >= 0 ? n : (input.tiers?.defaultTier ?? REGION_FAILOVER_DEFAULTS.defaultTier);
}

const newRow = (cluster: string, standby: string | null, tier: number, labels: Record<string, string>): RegionClusterRow => ({
  cluster, standby, tier, labels, estimate: null, fence: null, outcome: 'pending', workflowId: null, joined: false,
  rtoMs: null, lossBytes: null, backup: null, reason: null, startedAt: null, durationMs: null,
});

function finishRow(row: RegionClusterRow, outcome: RegionClusterRow['outcome'], reason: string | null): void {
  row.outcome = outcome;
  row.reason = reason;
}

async function discoverStandbys(record: RunbookRecord, plan: Plan, state: RegionFailoverCarry, input: RegionFailoverInput): Promise<void> {
  // The lost site is asked once, briefly: when it answers (a drill, a partial outage) its clusters without a
  // standby are reported too; when it does not, only the selector can name them.
  let lostClusters: string[] | null = null;
  try {
    lostClusters = (await siteProbeActivities(plan.lostSite, plan.regionTimeoutSeconds).siteListClusters({ site: plan.lostSite })).map((c) => c.cluster);
  } catch (err) {
    record.step('probe-lost-site', 'done', `${plan.lostSite} does not answer (${failureFacts(err).message}): every old primary counts as NOT confirmed fenced.`);
  }
  state.lostSiteReachable = lostClusters !== null;
  if (lostClusters) record.step('probe-lost-site', 'done', `${plan.lostSite} still answers (${lostClusters.length} clusters): each promotion fences its old primary first.`);

  const survivors = await siteActivities(plan.survivingSite).siteListClusters({ site: plan.survivingSite });
  const wanted = input.selector?.clusters?.map((n) => (n.includes('/') ? n.split('/')[1] : n));
  const labelsMatch = (labels: Record<string, string>) => Object.entries(input.selector?.labels ?? {}).every(([k, v]) => labels[k] === v);
  // A drill's throwaway copy records the real cluster as its source, but it is not the standby that protects it.
  const standbys = survivors.filter((c) => !c.drill && c.recordedSourceRef?.startsWith(`${plan.lostSite}/`)
    && (!wanted || wanted.includes(c.recordedSourceRef.split('/')[1])) && labelsMatch(c.labels));
  for (const s of standbys) {
    const name = s.recordedSourceRef!.split('/')[1];
    state.rows.push(newRow(s.recordedSourceRef!, `${plan.survivingSite}/${s.cluster}`, tierOf(input, name, s.labels), s.labels));
  }
  const covered = new Set(state.rows.map((r) => r.cluster.split('/')[1]));
  const unprotected = [...new Set([...(wanted ?? []), ...(input.selector?.labels ? [] : lostClusters ?? [])])].filter((n) => !covered.has(n)).sort();
  for (const name of unprotected) {
    const row = newRow(`${plan.lostSite}/${name}`, null, tierOf(input, name, {}), {});
    finishRow(row, 'no-standby', `no standby of ${plan.lostSite}/${name} at ${plan.survivingSite}`);
    state.rows.push(row);
  }
  state.rows.sort((a, b) => a.tier - b.tier || a.cluster.localeCompare(b.cluster));
  const tiers = tiersToRun(state);
  record.step('discover-standbys', standbys.length > 0 ? 'done' : 'failed',
    `Found ${standbys.length} standbys of ${plan.lostSite} at ${plan.survivingSite}` +
    `${standbys.length ? ` in tier(s) ${tiers.join(', ')}` : ''}; ${unprotected.length} cluster(s) without a standby` +
    `${unprotected.length ? `: ${unprotected.join(', ')}` : ''}.`, { standbys: standbys.length, noStandby: unprotected, tiers });
  if (standbys.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `no standby of a ${plan.lostSite} cluster at ${plan.survivingSite} matches the selector: nothing to promote (check lostSite, survivingSite and selector)`,
      'PreconditionFailedError');
  }
}

/** Runs `work` over `items` with at most `limit` at once (workflow promises: deterministic). */
async function boundedAll<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const lanes = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  });
  await Promise.all(lanes);
}

async function assessStandbys(record: RunbookRecord, plan: Plan, state: RegionFailoverCarry): Promise<void> {
  const site = siteActivities(plan.survivingSite);
  const policy = { maxBytes: plan.maxBytes, maxSeconds: plan.maxSeconds };
  await boundedAll(state.rows.filter((r) => r.outcome === 'pending'), plan.assessConcurrency, async (row) => {
    const a = await site.siteAssessStandby({ ref: row.standby!, policy });
    row.estimate = a.estimate;
    row.fence = state.lostSiteReachable ? 'PENDING' : 'UNCONFIRMED';
    if (!a.isStandby && a.leaderRole === 'primary') {
      finishRow(row, 'already-promoted', `${row.standby} already is a primary`);
    } else if (a.problem) {
      finishRow(row, a.isStandby ? 'unhealthy' : 'not-a-standby', a.problem);
    } else if (a.sourceRef !== row.cluster) {
      finishRow(row, 'not-a-standby', `${row.standby} replays from ${a.sourceRef}, not ${row.cluster}`);
    } else if (!a.estimate?.withinPolicy) {
      finishRow(row, 'excluded-over-policy',
        `estimated loss ${a.estimate?.bytes ?? 'unknown'} bytes / ${a.estimate?.seconds ?? '?'} s exceeds the policy (${plan.maxBytes} bytes / ${plan.maxSeconds} s): include it by name to promote it`);
    }
  });
  const count = (o: RegionClusterRow['outcome']) => state.rows.filter((r) => r.outcome === o).length;
  const known = state.rows.map((r) => r.estimate?.bytes).filter((b): b is number => typeof b === 'number');
  record.step('assess-loss', 'done',
    `Assessed ${state.rows.filter((r) => r.standby).length} standbys against their sources' archives: ${count('pending')} within the loss policy, ` +
    `${count('excluded-over-policy')} over it, ${count('already-promoted')} already promoted, ${count('unhealthy') + count('not-a-standby')} not promotable; ` +
    `largest estimated loss ${known.length ? Math.max(...known) : 'unknown'} bytes.`,
    { pending: count('pending'), overPolicy: count('excluded-over-policy'), alreadyPromoted: count('already-promoted') });
}

async function approveEvacuation(record: RunbookRecord, gate: ApprovalGate, plan: Plan, state: RegionFailoverCarry, tier: number | null): Promise<void> {
  const inScope = state.rows.filter((r) => tier === null || r.tier === tier);
  const candidates = inScope.filter((r) => r.outcome === 'pending');
  const overPolicy = inScope.filter((r) => r.outcome === 'excluded-over-policy');
  const mayInclude = new Map(overPolicy.flatMap((r) => [[r.cluster, r], [r.cluster.split('/')[1], r], [r.standby!, r]]));
  const scope = tier === null ? 'the evacuation' : `tier ${tier}`;
  const approval = await gate.decide({
    gate: tier === null ? 'region-failover' : `region-failover-tier-${tier}`,
    runbook: RUNBOOK_NAMES.regionFailover,
    cluster: `${plan.lostSite}/*`,
    plan: `Promote ${candidates.length} standbys at ${plan.survivingSite} for ${scope} of ${plan.lostSite} ` +
      `(${plan.concurrency} at once, lower tiers first${plan.takeBackup ? ', each with a proven first backup' : ''}); ` +
      `${overPolicy.length} over the loss policy are left out unless included by name ("include" + acknowledgeDataLoss). ` +
      `${state.lostSiteReachable ? `Each old primary at ${plan.lostSite} is fenced first.` : `${plan.lostSite} does not answer: no old primary can be confirmed fenced.`}`,
    estimate: null,
    fence: state.lostSiteReachable ? 'PENDING' : 'UNCONFIRMED',
    requires: { acknowledgeDataLoss: false, acknowledgeUnconfirmedFence: !state.lostSiteReachable },
    clusters: inScope,
  }, plan.approvalTimeoutSeconds, {
    what: `evacuating ${plan.lostSite} to ${plan.survivingSite}`,
    abortedMeans: tier === null || state.approvedTiers.length === 0 ? 'nothing was promoted' : `tiers ${state.approvedTiers.join(', ')} were promoted, the rest were not`,
    nextStep: `start region-failover ${plan.lostSite} -> ${plan.survivingSite} again and approve it, or promote clusters one by one`,
    check: (d) => {
      const include = d.include ?? [];
      if (!Array.isArray(include)) return 'include must be a list of cluster names';
      const unknown = include.filter((n) => !mayInclude.has(String(n)));
      if (unknown.length) {
        return `include names ${unknown.join(', ')}, which ${unknown.length === 1 ? 'is' : 'are'} not over the loss policy in ${scope} ` +
          `(over policy: ${overPolicy.map((r) => r.cluster).join(', ') || 'none'})`;
      }
      if (include.length && d.acknowledgeDataLoss !== true) return 'including clusters over the loss policy needs "acknowledgeDataLoss": true';
      return undefined;
    },
  });
  for (const name of approval.included ?? []) {
    const row = mayInclude.get(name);
    if (row && row.outcome === 'excluded-over-policy') finishRow(row, 'pending', null);
  }
  state.approvals.push(approval);
  if (tier !== null) state.approvedTiers.push(tier);
  record.step('approved-scope', 'done',
    `${approval.approver} approved ${state.rows.filter((r) => r.outcome === 'pending' && (tier === null || r.tier === tier)).length} promotions for ${scope}` +
    `${approval.included?.length ? `, including over-policy ${approval.included.join(', ')}` : ''}.`);
}

function tiersToRun(state: RegionFailoverCarry): number[] {
  return [...new Set(state.rows.filter((r) => r.outcome === 'pending').map((r) => r.tier))].sort((a, b) => a - b);
}

/** The promotions of one evacuation run: concurrency, the failure budget, and when to continue as new. */
class Evacuation {
  finishedThisRun = 0;
  private running = new Map<string, number>();
  private budgetDecision: FailureBudgetDecision | null = null;
  private budgetOpen = false;
  private currentTier: number | null = null;
  /** Per standby, the approval its promotion asks this run for (delegatedApprovalQuery); never put in its input. */
  private handedDown = new Map<string, ApprovalRecord>();

  constructor(private readonly record: RunbookRecord, private readonly plan: Plan, private readonly state: RegionFailoverCarry) {
    setHandler(delegatedApprovalQuery, (cluster) => this.handedDown.get(cluster) ?? null);
    setHandler(resolveFailureBudgetUpdate, (d) => this.acceptBudgetDecision(d), {
      validator: (d) => {
        if (!this.budgetOpen) throw new Error('no failure-budget decision is pending in this evacuation');
        if (!d || !['continue', 'skip', 'stop'].includes(d.decision)) throw new Error('decision must be "continue", "skip" or "stop"');
        if (typeof d.approver !== 'string' || !d.approver.trim()) throw new Error('approver is missing: say who decides');
        if (typeof d.ticket !== 'string' || !d.ticket.trim()) throw new Error('ticket is missing: name the incident ticket');
      },
      description: 'When the failure budget is spent: {"decision": "continue"|"skip"|"stop", "approver": "alice", "ticket": "INC-1"}. ' +
        'continue allows as many failures again; skip leaves the rest of this tier; stop starts nothing more.',
    });
  }

  private failures(): number {
    return this.state.rows.filter((r) => r.outcome === 'failed').length;
  }

  progress(): RegionFailoverProgress {
    const rows = this.state.rows;
    const now = Date.now();
    let slowest: RegionFailoverProgress['slowest'] = null;
    for (const [cluster, startedAt] of this.running) {
      if (!slowest || now - startedAt > slowest.runningMs) slowest = { cluster, runningMs: now - startedAt };
    }
    const done = rows.filter((r) => r.outcome === 'promoted' || r.outcome === 'already-promoted').length;
    const pending = rows.filter((r) => r.outcome === 'pending').length;
    return {
      lostSite: this.plan.lostSite, survivingSite: this.plan.survivingSite,
      phase: this.budgetOpen ? 'paused' : this.record.status().phase, tier: this.currentTier, total: rows.length, done,
      running: this.running.size, failed: this.failures(), pending,
      notPromoted: rows.length - done - this.running.size - this.failures() - pending, slowest, run: this.state.run,
    };
  }

  private showProgress(): void {
    const p = this.progress();
    this.record.setDetailLines([
      `- tier ${p.tier ?? '-'}: **${p.done}** promoted, **${p.running}** running, **${p.failed}** failed, ${p.pending} pending, ${p.notPromoted} left out (of ${p.total})`,
      ...(p.slowest ? [`- slowest: ${p.slowest.cluster} (${Math.round(p.slowest.runningMs / 1000)} s)`] : []),
      ...(this.budgetOpen ? ['- **paused**: failure budget spent, update "resolveFailureBudget" with continue | skip | stop'] : []),
    ]);
  }

  async promoteTier(tier: number): Promise<'tier-done' | 'continue-as-new'> {
    this.currentTier = tier;
    const inFlight = new Set<Promise<void>>();
    const queue = () => this.state.rows.filter((r) => r.tier === tier && r.outcome === 'pending');
    const rollOver = () => this.finishedThisRun >= this.plan.promotionsPerRun || workflowInfo().continueAsNewSuggested;
    this.showProgress();
    for (;;) {
      // The budget is checked before anything new starts: the failure that spends it stops the next launch.
      const anyLeft = this.state.rows.some((r) => r.outcome === 'pending');
      if (anyLeft && this.failures() >= this.state.failureAllowance && !this.state.stopped) await this.spendBudget(tier, inFlight);
      if (!this.state.stopped && !rollOver()) {
        for (const row of queue().slice(0, Math.max(0, this.plan.concurrency - inFlight.size))) {
          const p: Promise<void> = this.promoteOne(row).finally(() => inFlight.delete(p));
          inFlight.add(p);
        }
      }
      if (inFlight.size === 0) {
        if (this.state.stopped || queue().length === 0) return 'tier-done';
        if (rollOver()) return 'continue-as-new';
        continue;
      }
      await Promise.race(inFlight);
      this.showProgress();
    }
  }

  /** The budget is spent: stop, or pause starting promotions (running ones go on) until a human decides. */
  private async spendBudget(tier: number, inFlight: Set<Promise<void>>): Promise<void> {
    const failed = this.failures();
    if (this.plan.onExceeded === 'stop') {
      this.state.stopped = true;
      this.record.step('failure-budget', 'failed', `${failed} promotion(s) failed (budget ${this.state.failureAllowance}): stopped starting promotions, as the budget says.`);
      return;
    }
    this.budgetOpen = true;
    this.budgetDecision = null;
    this.record.step('failure-budget', 'waiting', `${failed} promotion(s) failed (budget ${this.state.failureAllowance}): paused; ${inFlight.size} running promotion(s) go on. ` +
      'Decide with update "resolveFailureBudget": continue, skip (the rest of this tier) or stop.');
    this.record.waiting(`a decision on the failure budget (update "resolveFailureBudget": continue | skip | stop) until ${new Date(Date.now() + this.plan.approvalTimeoutSeconds * 1000).toISOString()}`);
    this.showProgress();
    const decided = await condition(() => this.budgetDecision !== null, this.plan.approvalTimeoutSeconds * 1000);
    this.record.waiting(undefined);
    this.budgetOpen = false;
    // Set by the update handler while this method waited (TypeScript cannot see that).
    const d = this.budgetDecision as FailureBudgetDecision | null;
    if (!decided || !d) {
      this.state.stopped = true;
      this.record.step('failure-budget', 'failed', `Nobody decided within ${this.plan.approvalTimeoutSeconds}s: stopped starting promotions (the safe default); escalated.`);
      await control.notifyEscalation({
        runbook: RUNBOOK_NAMES.regionFailover, workflowId: workflowInfo().workflowId, cluster: `${this.plan.lostSite}/*`,
        reason: `the failure budget of the evacuation of ${this.plan.lostSite} was spent and nobody decided`,
        action: 'look at the failed promotions (drctl status), then promote the rest one by one or start region-failover again',
      });
      return;
    }
    const rec: FailureBudgetRecord = { ...d, at: new Date().toISOString(), failuresSoFar: failed, tier };
    this.state.budgetDecisions.push(rec);
    // Counted now: promotions that kept running during the pause may have failed too.
    if (d.decision !== 'stop') this.state.failureAllowance = this.failures() + this.plan.maxFailures;
    if (d.decision === 'skip') {
      for (const row of this.state.rows) if (row.tier === tier && row.outcome === 'pending') finishRow(row, 'skipped', `tier ${tier} skipped by ${d.approver} (ticket ${d.ticket})`);
    }
    if (d.decision === 'stop') this.state.stopped = true;
    this.record.step('failure-budget', 'done', `${d.approver} (ticket ${d.ticket}) decided to ${d.decision === 'skip' ? `skip the rest of tier ${tier}` : d.decision}` +
      `${d.comment ? `: "${d.comment}"` : ''}.`, { ...rec });
  }

  private acceptBudgetDecision(d: FailureBudgetDecision): FailureBudgetRecord {
    this.budgetDecision = { decision: d.decision, approver: d.approver.trim(), ticket: d.ticket.trim(), ...(d.comment ? { comment: d.comment } : {}) };
    return { ...this.budgetDecision, at: new Date().toISOString(), failuresSoFar: this.failures(), tier: this.currentTier ?? -1 };
  }

  /** The approval each promotion receives: the human's decision, acknowledging loss only for included clusters. */
  private delegatedApproval(row: RegionClusterRow): ApprovalRecord {
    // Tiers run in order and each per-tier approval comes right before its tier: the latest one is this row's.
    const last = this.state.approvals[this.state.approvals.length - 1];
    const included = this.state.approvals.some((x) => x.included?.some((n) => n === row.cluster || n === row.standby || n === row.cluster.split('/')[1]));
    return {
      ...last, included: undefined, acknowledgedDataLoss: included, delegatedBy: workflowInfo().workflowId,
      comment: `region-failover of ${this.plan.lostSite}${last.comment ? `: ${last.comment}` : ''}`,
    };
  }

  private async promoteOne(row: RegionClusterRow): Promise<void> {
    const workflowId = runbookWorkflowId(RUNBOOK_NAMES.promote, row.standby!);
    const started = Date.now();
    row.outcome = 'running';
    row.workflowId = workflowId;
    row.startedAt = new Date(started).toISOString();
    this.running.set(row.cluster, started);
    const approval = this.delegatedApproval(row);
    try {
      const result = await this.startOrJoin(row, workflowId, approval);
      finishRow(row, result.alreadyPromoted ? 'already-promoted' : 'promoted', null);
      row.rtoMs = result.rtoMs;
      row.lossBytes = result.measuredRpoBytes ?? result.estimate?.bytes ?? null;
      row.backup = result.backup?.backupName ?? null;
      row.fence = result.fence;
    } catch (err) {
      finishRow(row, 'failed', failureFacts(err).message);
    }
    this.running.delete(row.cluster);
    this.finishedThisRun++;
    row.durationMs = Date.now() - started;
    const outcome = row.outcome as RegionClusterRow['outcome'];
    this.record.step('promote-cluster', outcome === 'failed' ? 'failed' : outcome === 'already-promoted' ? 'already' : 'done',
      outcome === 'failed'
        ? `Promotion of ${row.standby} (for ${row.cluster}, tier ${row.tier}) failed after ${row.durationMs} ms: ${row.reason}`
        : `${row.standby} took over ${row.cluster} (tier ${row.tier}${row.joined ? ', joined a running promotion' : ''}): ` +
          `${outcome === 'already-promoted' ? 'already a primary' : `writable ${row.rtoMs ?? '?'} ms after approval, loss ${row.lossBytes ?? 'unknown'} bytes`}` +
          `${row.backup ? `, first backup ${row.backup}` : ''}.`,
      { cluster: row.cluster, standby: row.standby, workflowId, outcome });
  }

  private async startOrJoin(row: RegionClusterRow, workflowId: string, approval: ApprovalRecord): Promise<PromoteResult> {
    const handDown = patched(NO_PUBLIC_DELEGATION_PATCH);
    if (handDown) this.handedDown.set(row.standby!, approval);
    const promoteInput: PromoteInput = {
      cluster: row.standby!, mode: 'unplanned', source: row.cluster,
      dataLossPolicy: { maxBytes: this.plan.maxBytes, maxSeconds: this.plan.maxSeconds },
      approvalTimeoutSeconds: this.plan.approvalTimeoutSeconds, takeBackup: this.plan.takeBackup, ...(handDown ? {} : { preApproval: approval }),
      limits: { regionTimeoutSeconds: this.state.lostSiteReachable ? 30 : this.plan.regionTimeoutSeconds },
    };
    try {
      // ABANDON: ending the evacuation (or continuing it as new) never cuts a promotion off half-way.
      const child = await startChild<typeof promote>('promote', {
        workflowId, taskQueue: workflowInfo().taskQueue, args: [promoteInput], parentClosePolicy: ParentClosePolicy.ABANDON,
        staticSummary: `promote ${row.standby} (region-failover of ${this.plan.lostSite})`,
      });
      return await child.result();
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    row.joined = true;
    this.record.step('join-promotion', 'done', `A promotion of ${row.standby} was already running (${workflowId}): waiting for it instead of starting another.`);
    const joined = await joining.temporalJoinPromotion({
      workflowId,
      approval: decisionOf(approval),
    });
    if (joined.kind === 'failed') throw ApplicationFailure.nonRetryable(joined.message, joined.type);
    return joined.result;
  }
}

function finish(record: RunbookRecord, plan: Plan, state: RegionFailoverCarry): RegionFailoverResult {
  const rows = state.rows;
  const failed = rows.filter((r) => r.outcome === 'failed').length;
  const promoted = rows.filter((r) => r.outcome === 'promoted' || r.outcome === 'already-promoted').length;
  const outcome: RegionFailoverResult['outcome'] = state.stopped ? 'stopped' : failed > 0 ? 'completed-with-failures' : 'completed';
  const totalMs = Date.now() - state.startedAt;
  const rtos = rows.map((r) => r.rtoMs).filter((n): n is number => typeof n === 'number');
  record.step('report', failed > 0 || state.stopped ? 'failed' : 'done',
    `Evacuation of ${plan.lostSite} to ${plan.survivingSite} ${outcome}: ${promoted} promoted, ${failed} failed, ` +
    `${rows.length - promoted - failed} not promoted, in ${Math.round(totalMs / 1000)} s over ${state.run} run(s)` +
    `${rtos.length ? `; slowest RTO ${Math.max(...rtos)} ms` : ''}.`);
  record.finish(outcome === 'completed' ? 'succeeded' : 'failed');
  return {
    lostSite: plan.lostSite, survivingSite: plan.survivingSite, outcome, approvals: state.approvals,
    budgetDecisions: state.budgetDecisions, clusters: rows, runs: state.run, totalMs,
  };
}
