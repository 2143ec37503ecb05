// drctl region-failover --lost eu --surviving us [--clusters a,b] [--label k=v] [--tier name=0] ...
// drctl region-failover decide <run> --continue|--skip|--stop --approver X --ticket Y: the failure-budget decision.
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  getRegionProgressQuery, getRegionTableQuery, regionFailoverWorkflowId, resolveFailureBudgetUpdate,
  type FailureBudgetDecision, type RegionClusterRow, type RegionFailoverInput, type RegionFailoverProgress, type RegionFailoverResult,
} from '../../../../workflows/contracts/region-failover';
import { RUNBOOK_NAMES } from '../../../../workflows/contracts/runbooks';
import { withDeadline, type Temporal } from '../connect';
import type { Register } from '../context';
import {
  clusterList, compact, integerAtLeast, keyValue, nonNegativeNumber, positiveInteger, positiveSeconds, siteName,
} from '../options';
import { CliError, formatMs, table } from '../output';
import { parseRunRef } from '../run-ref';
import type { RunbookCommandSpec } from './spec';

export function formatProgress(p: RegionFailoverProgress): string {
  return `${p.phase}${p.tier !== null ? ` tier ${p.tier}` : ''}: ${p.done}/${p.total} done, ${p.running} running, ${p.failed} failed, ` +
    `${p.pending} pending, ${p.notPromoted} not promoted` +
    `${p.slowest ? `; slowest ${p.slowest.cluster} (${formatMs(p.slowest.runningMs)})` : ''}${p.run > 1 ? ` [run ${p.run}]` : ''}`;
}

/** The evacuation table: one line per cluster of the lost site and what became of it. */
export function formatRegionTable(rows: RegionClusterRow[]): string[] {
  return table([
    ['cluster', 'standby', 'tier', 'outcome', 'RTO', 'loss bytes', 'backup', 'why'],
    ...rows.map((r) => [r.cluster, r.standby, r.tier, `${r.outcome}${r.joined ? ' (joined)' : ''}`, r.rtoMs === null ? null : formatMs(r.rtoMs),
      r.lossBytes, r.backup, r.reason]),
  ]);
}

export function regionMarkdown(r: RegionFailoverResult): string {
  const cell = (v: unknown) => String(v ?? '-').replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `# region-failover of ${r.lostSite} to ${r.survivingSite}: ${r.outcome}`,
    '',
    `${r.clusters.length} clusters, ${formatMs(r.totalMs)}, ${r.runs} workflow run(s).`,
    '',
    '| cluster | standby | tier | outcome | RTO | loss bytes | backup | why |',
    '| --- | --- | ---: | --- | ---: | ---: | --- | --- |',
    ...r.clusters.map((c) => `| ${c.cluster} | ${cell(c.standby)} | ${c.tier} | ${c.outcome}${c.joined ? ' (joined)' : ''} | ` +
      `${c.rtoMs === null ? '-' : formatMs(c.rtoMs)} | ${cell(c.lossBytes)} | ${cell(c.backup)} | ${cell(c.reason)} |`),
    '',
    '## Decisions',
    '',
    ...(r.approvals.length || r.budgetDecisions.length ? [] : ['None.']),
    ...r.approvals.map((a) => `- **${a.decision}** by ${a.approver} (ticket ${a.ticket}) at ${a.at}` +
      `${a.included?.length ? `; included over policy: ${a.included.join(', ')}` : ''}${a.comment ? `: ${a.comment}` : ''}`),
    ...r.budgetDecisions.map((d) => `- failure budget, tier ${d.tier} after ${d.failuresSoFar} failure(s): **${d.decision}** by ${d.approver} (ticket ${d.ticket}) at ${d.at}${d.comment ? `: ${d.comment}` : ''}`),
  ].join('\n');
}

/** The lost site's cluster names, as the selector takes them (`eu/acid-a` is accepted for `acid-a` at the lost site). */
function namesAtLostSite(names: string[] | undefined, lost: string, flag: string): string[] | undefined {
  return names?.map((n) => {
    const slash = n.indexOf('/');
    if (slash < 0) return n;
    if (n.slice(0, slash) !== lost) throw new CliError('usage', `${flag} "${n}" is not at the lost site "${lost}"`);
    return n.slice(slash + 1);
  });
}

async function progressLine(t: Temporal, handle: WorkflowHandle): Promise<string | null> {
  const p = await withDeadline(t, 5000, () => handle.query(getRegionProgressQuery)).catch(() => null);
  return p ? `progress: ${formatProgress(p)}` : null;
}

function defineDecide(parent: Command, register: Register): void {
  const cmd = parent.command('decide')
    .description('answer a region failover paused on its failure budget: --continue, --skip the rest of the tier, or --stop')
    .argument('<run...>', 'the run: region-failover/<lost site>, or the lost site alone (e.g. eu)')
    .option('--continue', 'allow as many failures again and go on')
    .option('--skip', 'leave the rest of this tier and go on with the next')
    .option('--stop', 'start no more promotions (running ones finish)')
    .requiredOption('--approver <name>', 'who decides')
    .requiredOption('--ticket <id>', 'the incident or change ticket this decision belongs to')
    .option('--comment <text>', 'why');
  register(cmd, async ({ out, opts, args, temporal }) => {
    const parts = args[0] as string[];
    const workflowId = parts.length === 1 && !parts[0].includes('/') ? parseRunRef([RUNBOOK_NAMES.regionFailover, parts[0]]) : parseRunRef(parts);
    const chosen = (['continue', 'skip', 'stop'] as const).filter((d) => opts[d] === true);
    if (chosen.length !== 1) throw new CliError('usage', `give exactly one of --continue, --skip, --stop (got ${chosen.length ? chosen.map((c) => `--${c}`).join(' ') : 'none'})`);
    const decision: FailureBudgetDecision = {
      decision: chosen[0], approver: opts.approver, ticket: opts.ticket, ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
    };
    const t = await temporal();
    const handle = t.client.workflow.getHandle(workflowId);
    const d = await handle.describe().catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) throw new CliError('not-found', `no run ${workflowId} in namespace ${t.namespace} (see: drctl list --runbook region-failover)`, { workflowId });
      throw err;
    });
    if (d.status.name !== 'RUNNING') {
      throw new CliError('refused', `${workflowId} is not running (${d.status.name.toLowerCase()}): no failure-budget decision to take`, { workflowId, decision });
    }
    const before = await progressLine(t, handle);
    if (before) out.progress(`${workflowId} ${before}`);
    let record;
    try {
      record = await handle.executeUpdate(resolveFailureBudgetUpdate, { args: [decision] });
    } catch (err) {
      if (!(err instanceof WorkflowUpdateFailedError)) throw err;
      // The validator's reason (no decision pending, missing ticket, ...) is the answer.
      throw new CliError('refused', `${workflowId}: ${err.cause?.message ?? err.message}`, { workflowId, decision });
    }
    const after = await progressLine(t, handle);
    return {
      ok: true,
      data: { workflowId, decision: record },
      human: [
        `${record.decision} decided for ${workflowId} (tier ${record.tier}, ${record.failuresSoFar} failure(s) so far) by ${record.approver} (ticket ${record.ticket}) at ${record.at}.`,
        ...(after ? [`  ${after}`] : []),
        `  follow: drctl status ${workflowId}`,
      ].join('\n'),
    };
  });
}

export const regionFailover: RunbookCommandSpec<RegionFailoverInput, RegionFailoverResult> = {
  command: 'region-failover',
  runbook: RUNBOOK_NAMES.regionFailover,
  workflowType: 'regionFailover',
  hasApprovalGate: true,
  identifiesRequester: true,
  description: 'evacuate a lost site: promote the standbys of its clusters at the surviving site, tier by tier, after one approval',
  define: (cmd) => cmd
    // `decide` takes its own options; without this the parent would try to read them.
    .enablePositionalOptions()
    // Required, but checked in input(): commander would demand a parent's mandatory options of `decide` too.
    .option('--lost <site>', 'required: the site that is lost or being evacuated, e.g. eu', siteName('--lost'))
    .option('--surviving <site>', 'required: the site whose standbys take over, e.g. us', siteName('--surviving'))
    .option('--clusters <names>', 'only these clusters of the lost site (a,b); default: every one with a standby', clusterList('--clusters'))
    .option('--label <key=value>', 'only standbys with this label (repeatable)', keyValue('--label'))
    .option('--tier <name=n>', 'the tier of a cluster, lower first (repeatable); default: its --tier-label label', keyValue('--tier', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--tier: "${v}" is not a tier number >= 0`);
      return n;
    }))
    .option('--tier-label <label>', 'the standby label read as its tier (runbook default dr-tier)')
    .option('--concurrency <n>', 'promotions at once (runbook default 4)', positiveInteger)
    .option('--assess-concurrency <n>', 'loss assessments at once (runbook default 8)', positiveInteger)
    .option('--max-failures <n>', 'failed promotions before the budget is spent (runbook default 1)', positiveInteger)
    .addOption(new Option('--on-budget <action>', 'when the budget is spent: pause and ask (decide), or stop').choices(['pause', 'stop']))
    .addOption(new Option('--approval <mode>', 'one approval for the whole evacuation, or one before each tier').choices(['once', 'per-tier']))
    .option('--max-loss-bytes <n>', 'largest acceptable loss in bytes per cluster (default 0); above it a cluster needs approve --include', nonNegativeNumber)
    .option('--max-loss-seconds <n>', 'largest acceptable loss in seconds per cluster (default 0)', nonNegativeNumber)
    .option('--approval-timeout <seconds>', 'how long a human has at each gate (runbook default 3600)', positiveSeconds)
    .option('--no-backup', 'promotions do not take their first backup')
    .option('--region-timeout <seconds>', 'how long the lost site may take to answer its reachability probe (default 15)', positiveSeconds)
    .option('--promotions-per-run <n>', 'promotions per workflow run before it continues as new (default 200)', integerAtLeast(1)),
  subcommands: defineDecide,
  input: (_args, o) => {
    for (const flag of ['lost', 'surviving']) if (!o[flag]) throw new CliError('usage', `required option '--${flag} <site>' not specified`);
    if (o.lost === o.surviving) throw new CliError('usage', `--lost and --surviving are both "${o.lost}": the standbys are at another site`);
    return {
      cluster: `${o.lost}/*`,
      input: compact({
        lostSite: o.lost, survivingSite: o.surviving,
        selector: { clusters: namesAtLostSite(o.clusters, o.lost, '--clusters'), labels: o.label },
        tiers: { clusters: o.tier, label: o.tierLabel },
        concurrency: o.concurrency, assessConcurrency: o.assessConcurrency,
        failureBudget: { maxFailures: o.maxFailures, onExceeded: o.onBudget },
        approvalMode: o.approval,
        dataLossPolicy: { maxBytes: o.maxLossBytes, maxSeconds: o.maxLossSeconds },
        approvalTimeoutSeconds: o.approvalTimeout,
        takeBackup: o.backup === false ? false : undefined,
        limits: { regionTimeoutSeconds: o.regionTimeout, promotionsPerRun: o.promotionsPerRun },
      }),
    };
  },
  workflowId: (input) => regionFailoverWorkflowId(input.lostSite),
  progress: progressLine,
  summarize: (r) => [
    `${r.lostSite} -> ${r.survivingSite}: ${r.outcome}; ${r.clusters.filter((c) => c.outcome === 'promoted' || c.outcome === 'already-promoted').length}/${r.clusters.length} promoted ` +
      `in ${formatMs(r.totalMs)} (${r.runs} workflow run(s))`,
    ...formatRegionTable(r.clusters),
  ],
  report: (r) => ({ markdown: regionMarkdown(r), json: r }),
};

/** The live table of a running evacuation (status shows it while the run goes on). */
export async function regionTableOf(t: Temporal, handle: WorkflowHandle): Promise<RegionClusterRow[] | null> {
  return withDeadline(t, 5000, () => handle.query(getRegionTableQuery)).catch(() => null);
}
