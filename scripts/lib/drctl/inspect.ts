// drctl status | report | list: what a run did and where it is, and which runs there are.
import { InvalidArgumentError, type Command } from 'commander';
import type { ApprovalRecord } from '../../../workflows/contracts/runbooks';
import type { JournalEntry } from '../../../workflows/contracts/journal';
import {
  DR_APPROVAL_PENDING, DR_CLUSTER, DR_OUTCOME, DR_PHASE, DR_RUNBOOK, DR_SITE,
} from '../../../workflows/contracts/search-attributes';
import { clusterRef, positiveInteger } from './options';
import type { Register } from './context';
import { formatGate, formatMs, formatStep } from './output';
import { knownRunbooks, parseRunRef, runbookName } from './run-ref';
import { runInfo, type RunInfo } from './run-info';
import { followRun } from './follow';
import { RUNBOOK_COMMANDS } from './runbooks';

const RUN_ARG = 'the run: <runbook>/<site>/<cluster> (e.g. force-backup/eu/acid-demo) or <runbook> <site>/<cluster>; ' +
  'region-failover/<lost site>; a scheduled drill by its workflow ID (drill/eu/acid-demo-2026-11-30T03:00:00Z)';

const specOf = (info: RunInfo) => RUNBOOK_COMMANDS.find((c) => c.runbook === info.runbook);

function summaryOf(info: RunInfo): string[] {
  if (info.result === null || info.result === undefined) return [];
  const spec = specOf(info);
  try {
    return spec ? spec.summarize(info.result) : [JSON.stringify(info.result)];
  } catch {
    return [JSON.stringify(info.result)];
  }
}

function statusText(info: RunInfo, progress: string | null): string {
  const lines = [
    `${info.workflowId}: ${info.runbook ?? info.workflowType} of ${info.cluster ?? '?'} (run ${info.runId}, queue ${info.taskQueue})`,
    `  execution: ${info.executionStatus}, started ${info.startTime}${info.closeTime ? `, closed ${info.closeTime} after ${formatMs(info.durationMs)}` : ''}`,
    `  phase:     ${info.phase ?? '?'} (${info.state})`,
    `  outcome:   ${info.outcome ?? '-'}`,
    ...(progress ? [`  ${progress}`] : []),
  ];
  if (info.pendingApproval) lines.push(...formatGate(info.workflowId, info.pendingApproval).map((l) => `  ${l}`));
  lines.push(info.journalError ? `  journal:   unavailable (${info.journalError})` : '  journal:');
  lines.push(...info.journal.map(formatStep));
  const summary = summaryOf(info);
  if (summary.length) lines.push('  result:', ...summary.map((l) => `    ${l}`));
  if (info.failure) lines.push(`  failure:   ${info.failure.type}: ${info.failure.message}`);
  return lines.join('\n');
}

interface PhaseRow {
  phase: string;
  durationMs: number | null;
  steps: number;
  /** The worst outcome of its steps. */
  outcome: string;
}

const SEVERITY = ['done', 'already', 'skipped', 'waiting', 'refused', 'failed'];

function phasesOf(info: RunInfo): PhaseRow[] {
  const names = [...Object.keys(info.phaseDurationsMs)];
  for (const e of info.journal) if (!names.includes(e.phase)) names.push(e.phase);
  return names.map((phase) => {
    const steps = info.journal.filter((e) => e.phase === phase);
    const worst = steps.reduce((w, e) => (SEVERITY.indexOf(e.outcome) > SEVERITY.indexOf(w) ? e.outcome : w), steps.length ? 'done' : '-');
    return { phase, durationMs: info.phaseDurationsMs[phase] ?? null, steps: steps.length, outcome: worst };
  });
}

interface ApprovalRow extends Partial<ApprovalRecord> {
  /** The runbook phase the decision was taken in (approve, or switch-back for a failback's child promote). */
  phase: string;
  workflowId: string;
  message: string;
}

function approvalsOf(info: RunInfo): ApprovalRow[] {
  const rows: ApprovalRow[] = info.journal
    .filter((e: JournalEntry) => e.step.startsWith('approval'))
    .map((e) => ({ phase: e.phase, workflowId: info.workflowId, message: e.message, ...(e.facts as Partial<ApprovalRecord> | undefined) }));
  const switchBack = (info.result as { switchBack?: { approval?: ApprovalRecord | null; cluster?: string } } | null)?.switchBack;
  if (switchBack?.approval) {
    const a = switchBack.approval;
    rows.push({ phase: 'switch-back', workflowId: `promote/${switchBack.cluster ?? '?'}`, message: `${a.decision} by ${a.approver} (ticket ${a.ticket})`, ...a });
  }
  return rows;
}

const cell = (v: unknown) => String(v ?? '-').replace(/\|/g, '\\|').replace(/\n/g, ' ');

function reportMarkdown(info: RunInfo, phases: PhaseRow[], approvals: ApprovalRow[]): string {
  const md = [
    `# ${info.runbook ?? info.workflowType} of ${info.cluster ?? '?'}`,
    '',
    '| | |',
    '| --- | --- |',
    `| run | \`${info.workflowId}\` (run id \`${info.runId}\`) |`,
    `| workflow type / task queue | ${info.workflowType} / ${info.taskQueue} |`,
    `| started | ${info.startTime} |`,
    `| closed | ${info.closeTime ?? 'still running'} |`,
    `| duration | ${formatMs(info.durationMs)} |`,
    `| status | ${info.executionStatus} (${info.state}) |`,
    `| outcome | ${info.outcome ?? '-'} |`,
    '',
    '## Phases',
    '',
    '| phase | duration | steps | outcome |',
    '| --- | ---: | ---: | --- |',
    ...phases.map((p) => `| ${p.phase} | ${p.durationMs === null ? (info.executionStatus === 'RUNNING' ? 'running' : '-') : formatMs(p.durationMs)} | ${p.steps} | ${p.outcome} |`),
    '',
    '## Steps',
    '',
  ];
  if (info.journalError) md.push(`The journal is unavailable: ${info.journalError}.`, '');
  md.push('| # | at | phase | step | outcome | what happened |', '| ---: | --- | --- | --- | --- | --- |');
  md.push(...info.journal.map((e) => `| ${e.seq} | ${e.at} | ${cell(e.phase)} | ${cell(e.step)} | ${e.outcome} | ${cell(e.message)} |`));
  md.push('', '## Approvals', '');
  if (!approvals.length && !info.pendingApproval) md.push('None asked for.');
  for (const a of approvals) md.push(`- **${a.decision ?? 'refused'}** in phase \`${a.phase}\` of \`${a.workflowId}\`${a.at ? ` at ${a.at}` : ''}: ${a.message}`);
  if (info.pendingApproval) {
    md.push(`- **pending**: gate \`${info.pendingApproval.gate}\`, until ${info.pendingApproval.expiresAt}: ${info.pendingApproval.plan}`);
  }
  md.push('', '## Result', '');
  if (info.failure) {
    md.push(`Failed: **${info.failure.type}**: ${info.failure.message}`);
  } else if (info.result !== null && info.result !== undefined) {
    md.push(...summaryOf(info).map((l) => `- ${l}`), '', '```json', JSON.stringify(info.result, null, 2), '```');
  } else {
    md.push('Still running.');
  }
  return md.join('\n');
}

/** Visibility query over the runbooks' search attributes. Values are quoted; refs were checked by the contracts. */
function listQuery(o: Record<string, any>, taskQueue: string | null): string {
  const q = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const terms = [`${DR_RUNBOOK.name} IS NOT NULL`];
  if (taskQueue) terms.push(`TaskQueue = ${q(taskQueue)}`);
  if (o.runbook) terms.push(`${DR_RUNBOOK.name} = ${q(o.runbook)}`);
  if (o.cluster) terms.push(`${DR_CLUSTER.name} = ${q(o.cluster)}`);
  if (o.site) terms.push(`${DR_SITE.name} = ${q(o.site)}`);
  if (o.outcome) terms.push(`${DR_OUTCOME.name} = ${q(o.outcome)}`);
  if (o.pendingApproval) terms.push(`${DR_APPROVAL_PENDING.name} = true`);
  if (o.running) terms.push(`ExecutionStatus = 'Running'`);
  return terms.join(' AND ');
}

export function defineInspectCommands(program: Command, register: Register): void {
  register(program.command('status').description('where a run is: phase, journal, pending approval, outcome').argument('<run...>', RUN_ARG)
    .option('--follow', 'follow a running run to its end first (steps and approval gates as they happen); then exit 1 if it failed'),
  async ({ out, opts, args, temporal }) => {
    const workflowId = parseRunRef(args[0] as string[]);
    const t = await temporal();
    let info = await runInfo(t, workflowId);
    if (opts.follow && info.executionStatus === 'RUNNING') {
      out.progress(`following ${workflowId} (run ${info.runId}); Ctrl-C stops following, not the run`);
      for (const e of info.journal) out.progress(formatStep(e));
      const handle = t.client.workflow.getHandle(workflowId, info.runId);
      await followRun(t, handle, out, [], { alreadyShown: info.journal.length, progress: specOf(info)?.progress });
      info = await runInfo(t, workflowId);
    }
    const failed = opts.follow === true && info.failure !== null;
    const spec = specOf(info);
    const progress = info.executionStatus === 'RUNNING' && spec?.progress
      ? await spec.progress(t, t.client.workflow.getHandle(workflowId, info.runId)).catch(() => null) : null;
    return {
      ok: !failed,
      data: { ...info, ...(progress ? { progress } : {}) },
      human: statusText(info, progress),
      ...(failed ? { error: { kind: info.outcome === 'refused' ? 'refused' as const : 'failed' as const, message: `${info.failure!.type}: ${info.failure!.message}`, type: info.failure!.type } } : {}),
    };
  });

  register(program.command('report').description('a Markdown report of a run: phases with durations, every step, approvals, result ' +
    '(a drill: its drill report; a region failover: its per-cluster table)')
    .argument('<run...>', RUN_ARG),
  async ({ args, temporal }) => {
    const workflowId = parseRunRef(args[0] as string[]);
    const info = await runInfo(await temporal(), workflowId);
    // A runbook with a report of its own (drill, region-failover) answers with it once it has a result.
    const own = info.result !== null && info.result !== undefined ? specOf(info)?.report?.(info.result) : undefined;
    if (own) {
      return {
        ok: true,
        data: { workflowId, runId: info.runId, runbook: info.runbook, cluster: info.cluster, executionStatus: info.executionStatus, report: own.json },
        human: own.markdown,
      };
    }
    const phases = phasesOf(info);
    const approvals = approvalsOf(info);
    return { ok: true, data: { ...info, phases, approvals }, human: reportMarkdown(info, phases, approvals) };
  });

  register(program.command('list').description('runs of the runbooks, newest first (a visibility query on their search attributes)')
    .option('--runbook <name>', `only this runbook (${knownRunbooks().join(', ')}; drctl command names work too)`, (v: string) => {
      const name = runbookName(v);
      if (!name) throw new InvalidArgumentError(`"${v}" is not one of ${knownRunbooks().join(', ')}`);
      return name;
    })
    .option('--cluster <site/cluster>', 'only runs about this cluster', clusterRef('--cluster'))
    .option('--site <site>', 'only runs about clusters at this site')
    .option('--outcome <outcome>', 'only runs that ended so: succeeded, already, refused, rejected, timed-out, failed')
    .option('--pending-approval', 'only runs waiting for a human')
    .option('--running', 'only runs still running')
    .option('--any-queue', 'also runs on other deployments\' control queues (default: only DR_TASK_QUEUE_PREFIX\'s)')
    .option('--limit <n>', 'at most this many (default 50)', positiveInteger, 50),
  async ({ opts, temporal }) => {
    const t = await temporal();
    const query = listQuery(opts, opts.anyQueue ? null : t.taskQueue);
    const runs = [];
    for await (const w of t.client.workflow.list({ query })) {
      const sa = w.typedSearchAttributes;
      runs.push({
        workflowId: w.workflowId, runId: w.runId, workflowType: w.type, taskQueue: w.taskQueue,
        runbook: sa.get(DR_RUNBOOK) ?? null, cluster: sa.get(DR_CLUSTER) ?? null, site: sa.get(DR_SITE) ?? null,
        executionStatus: w.status.name, phase: sa.get(DR_PHASE) ?? null, approvalPending: sa.get(DR_APPROVAL_PENDING) ?? false,
        outcome: sa.get(DR_OUTCOME) ?? null,
        startTime: w.startTime.toISOString(), closeTime: w.closeTime ? w.closeTime.toISOString() : null,
      });
      if (runs.length >= opts.limit) break;
    }
    // Scheduled drills carry their scheduled time in the ID: the column grows to fit.
    const width = Math.max(40, ...runs.map((r) => r.workflowId.length));
    const human = runs.length
      ? [
        `${'RUN'.padEnd(width)} ${'STATUS'.padEnd(10)} ${'PHASE'.padEnd(16)} ${'OUTCOME'.padEnd(10)} STARTED`,
        ...runs.map((r) => `${r.workflowId.padEnd(width)} ${r.executionStatus.padEnd(10)} ${(r.phase ?? '-').padEnd(16)} ${(r.approvalPending ? 'APPROVAL?' : r.outcome ?? '-').padEnd(10)} ${r.startTime}`),
      ].join('\n')
      : `no runs match: ${query}`;
    return { ok: true, data: { query, runs }, human };
  });
}
