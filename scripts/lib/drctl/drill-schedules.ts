// drctl drill schedule|list|pause|unpause|trigger|delete: drills on Temporal Schedules. One schedule per protected
// cluster, `drill/<site>/<cluster>`, starting the `drill` runbook on the control queue with the runbooks' search
// attributes; Temporal appends the scheduled time to each run's workflow ID. Policies: overlap SKIP (a drill still
// running makes the next one skip, never two throwaways at once), a short catch-up window (a drill missed while
// Temporal was down is not run hours late), pause on failure (a failed drill stops the schedule until a human has
// looked; the server writes why in the schedule's note), and jitter (many clusters on one cron do not all start
// at once).
import {
  ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, WorkflowNotFoundError,
  type ScheduleDescription, type ScheduleHandle, type ScheduleOptions,
} from '@temporalio/client';
import type { Command } from 'commander';
import type { DrillInput } from '../../../workflows/contracts/drills';
import { parseClusterRef } from '../../../workflows/contracts/clusters';
import { RUNBOOK_NAMES, runbookWorkflowId } from '../../../workflows/contracts/runbooks';
import { DR_CLUSTER, DR_OUTCOME, DR_RUNBOOK, DR_SITE } from '../../../workflows/contracts/search-attributes';
import type { Temporal } from './connect';
import type { Register } from './context';
import { clusterRef, cronExpression, duration, formatDuration } from './options';
import { CliError, table } from './output';
import { drillInput, drillOptions } from './runbooks/drill';

const DEFAULT_CATCHUP_MS = 10 * 60_000;
// Temporal refuses a shorter catch-up window.
const MIN_CATCHUP_MS = 10_000;
// drctl keeps the cron text the operator gave in the calendar's comment: the server stores the compiled calendar.
const CRON_COMMENT = 'cron: ';
// What the server writes when pauseOnFailure pauses a schedule (temporal service/worker/scheduler).
const FAILURE_NOTE = /^paused due to workflow (failure|timeout): (\S+?)(?:: (.*))?$/s;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SCHEDULE_ARG = 'the drilled cluster <site>/<cluster>, or the schedule ID drill/<site>/<cluster>';

/** `eu/acid-demo` or `drill/eu/acid-demo` -> `drill/eu/acid-demo`. */
export function scheduleIdOf(ref: string): string {
  const cluster = ref.startsWith(`${RUNBOOK_NAMES.drill}/`) ? ref.slice(RUNBOOK_NAMES.drill.length + 1) : ref;
  try {
    parseClusterRef(cluster, 'schedule');
  } catch (err) {
    throw new CliError('usage', `${(err as Error).message} (or the schedule ID, drill/<site>/<cluster>)`);
  }
  return runbookWorkflowId(RUNBOOK_NAMES.drill, cluster);
}

export interface PausedByFailure {
  workflowId: string;
  kind: 'failure' | 'timeout';
  message: string | null;
}

export function pausedByFailure(note: string | undefined): PausedByFailure | null {
  const m = note ? FAILURE_NOTE.exec(note) : null;
  return m ? { kind: m[1] as 'failure' | 'timeout', workflowId: m[2], message: m[3] ?? null } : null;
}

export interface ScheduleView {
  scheduleId: string;
  cluster: string | null;
  drSite: string | null;
  input: DrillInput | null;
  taskQueue: string | null;
  /** `cron 0 3 * * 1` or `every 1d`, as given. */
  spec: string;
  jitterMs: number;
  catchupWindowMs: number;
  overlap: string | undefined;
  pauseOnFailure: boolean;
  paused: boolean;
  note: string | null;
  /** When the note is the server's pause-on-failure note: the drill that failed. */
  pausedByFailure: PausedByFailure | null;
  nextRunAt: string | null;
  running: string[];
  lastRun: { workflowId: string; runId: string; scheduledAt: string; takenAt: string; status: string; outcome: string | null } | null;
  actionsTaken: number;
}

function specText(d: ScheduleDescription): string {
  const parts: string[] = [];
  for (const c of d.spec.calendars ?? []) parts.push(c.comment?.startsWith(CRON_COMMENT) ? `cron ${c.comment.slice(CRON_COMMENT.length)}` : 'calendar');
  for (const i of d.spec.intervals ?? []) parts.push(`every ${formatDuration(i.every)}${i.offset ? ` (offset ${formatDuration(i.offset)})` : ''}`);
  return parts.join(', ') || 'none';
}

async function lastRunOf(t: Temporal, d: ScheduleDescription): Promise<ScheduleView['lastRun']> {
  const last = d.info.recentActions.at(-1);
  if (!last) return null;
  const { workflowId, firstExecutionRunId: runId } = last.action.workflow;
  const run = await t.client.workflow.getHandle(workflowId, runId).describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  });
  return {
    workflowId, runId, scheduledAt: last.scheduledAt.toISOString(), takenAt: last.takenAt.toISOString(),
    status: run?.status.name ?? 'NOT_FOUND', outcome: run?.typedSearchAttributes.get(DR_OUTCOME) ?? null,
  };
}

export async function viewOf(t: Temporal, d: ScheduleDescription): Promise<ScheduleView> {
  const input = (d.action.args?.[0] ?? null) as DrillInput | null;
  return {
    scheduleId: d.scheduleId,
    cluster: input?.cluster ?? null,
    drSite: input?.drSite ?? null,
    input,
    taskQueue: d.action.taskQueue ?? null,
    spec: specText(d),
    jitterMs: d.spec.jitter ?? 0,
    catchupWindowMs: d.policies.catchupWindow,
    overlap: d.policies.overlap,
    pauseOnFailure: d.policies.pauseOnFailure,
    paused: d.state.paused,
    note: d.state.note || null,
    pausedByFailure: d.state.paused ? pausedByFailure(d.state.note) : null,
    nextRunAt: d.info.nextActionTimes[0]?.toISOString() ?? null,
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    lastRun: await lastRunOf(t, d),
    actionsTaken: d.info.numActionsTaken,
  };
}

async function describe(handle: ScheduleHandle): Promise<ScheduleDescription> {
  return handle.describe().catch((err: unknown) => {
    if (err instanceof ScheduleNotFoundError) {
      throw new CliError('not-found', `no drill schedule ${handle.scheduleId} (see: drctl drill list)`, { scheduleId: handle.scheduleId });
    }
    throw err;
  });
}

/** The server's own refusal of a spec (INVALID_ARGUMENT) is a usage error too: nothing was created. */
function invalidArgument(err: unknown): boolean {
  const code = (err as { code?: number })?.code ?? (err as { cause?: { code?: number } })?.cause?.code;
  return code === 3;
}

function pausedLine(v: ScheduleView): string {
  if (!v.paused) return 'active';
  if (v.pausedByFailure) return `PAUSED by the failed drill ${v.pausedByFailure.workflowId}${v.pausedByFailure.message ? `: ${v.pausedByFailure.message}` : ''}`;
  return `PAUSED${v.note ? `: ${v.note}` : ''}`;
}

function viewText(v: ScheduleView): string[] {
  return [
    `${v.scheduleId}: drill of ${v.cluster ?? '?'} at ${v.drSite ?? '?'}, ${v.spec}${v.jitterMs ? ` (jitter ${formatDuration(v.jitterMs)})` : ''}, on ${v.taskQueue ?? '?'}`,
    `  state:    ${pausedLine(v)}`,
    // A paused schedule's note is on its state line already.
    ...(v.note && !v.paused ? [`  note:     ${v.note}`] : []),
    `  next run: ${v.paused ? `none while paused (would be ${v.nextRunAt ?? '-'})` : v.nextRunAt ?? '-'}`,
    `  policies: overlap ${String(v.overlap ?? 'SKIP').toLowerCase()}, catch-up window ${formatDuration(v.catchupWindowMs)}, ${v.pauseOnFailure ? 'pauses on failure' : 'does NOT pause on failure'}`,
    `  last run: ${v.lastRun ? `${v.lastRun.workflowId} ${v.lastRun.status}${v.lastRun.outcome ? ` (${v.lastRun.outcome})` : ''}` : 'none yet'}` +
      `${v.running.length ? `; running: ${v.running.join(', ')}` : ''}`,
  ];
}

export function defineDrillScheduleCommands(drill: Command, register: Register): void {
  register(drillOptions(drill.command('schedule')
    .description('run drills of a cluster on a schedule (a Temporal Schedule; scheduling it again updates it)'))
    .option('--cron <expr>', 'when, as cron in UTC, e.g. "0 3 * * 1" (Mondays 03:00); 5-7 fields, @daily, @every 24h', cronExpression)
    .option('--every <duration>', 'or every this long, e.g. 24h, 7d', duration('--every', 60_000))
    .option('--jitter <duration>', 'start up to this much later, at random, e.g. 30m (spreads many clusters on one cron)', duration('--jitter', 0))
    .option('--catchup-window <duration>', `a drill missed while Temporal was down still runs if at most this late (default 10m, at least ${MIN_CATCHUP_MS / 1000}s)`,
      duration('--catchup-window', MIN_CATCHUP_MS))
    .option('--note <text>', 'a note on the schedule, e.g. who asked for it'),
  async ({ out, opts, args, temporal }) => {
    const cluster = args[0] as string;
    if ((opts.cron === undefined) === (opts.every === undefined)) throw new CliError('usage', 'give exactly one of --cron "<expr>" and --every <duration>');
    const input = drillInput(cluster, opts);
    const scheduleId = scheduleIdOf(cluster);
    const t = await temporal();
    const site = parseClusterRef(cluster).site;
    const attributes = [
      { key: DR_RUNBOOK, value: RUNBOOK_NAMES.drill }, { key: DR_CLUSTER, value: cluster }, { key: DR_SITE, value: site },
    ];
    const options: ScheduleOptions = {
      scheduleId,
      spec: {
        ...(opts.cron !== undefined ? { cronExpressions: [`${opts.cron} # ${CRON_COMMENT}${opts.cron}`] } : { intervals: [{ every: opts.every }] }),
        ...(opts.jitter ? { jitter: opts.jitter } : {}),
      },
      action: {
        type: 'startWorkflow', workflowType: 'drill', workflowId: runbookWorkflowId(RUNBOOK_NAMES.drill, cluster), taskQueue: t.taskQueue,
        args: [input], typedSearchAttributes: attributes, staticSummary: `drill ${cluster} at ${input.drSite} (scheduled)`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: opts.catchupWindow ?? DEFAULT_CATCHUP_MS, pauseOnFailure: true },
      typedSearchAttributes: attributes,
      state: { note: opts.note ?? 'scheduled with drctl' },
    };
    let created = true;
    let previous: ScheduleDescription | null = null;
    const handle = t.client.schedule.getHandle(scheduleId);
    try {
      try {
        await t.client.schedule.create(options);
      } catch (err) {
        if (!(err instanceof ScheduleAlreadyRunning)) throw err;
        created = false;
        // Scheduling a cluster again replaces its spec, input and policies; a pause (maybe a failed drill) stays.
        await handle.update((prev) => {
          previous = prev;
          return { ...options, state: { paused: prev.state.paused, note: opts.note ?? prev.state.note } };
        });
      }
    } catch (err) {
      if (invalidArgument(err)) throw new CliError('usage', `Temporal refused the schedule: ${(err as Error).message}`, { scheduleId });
      throw err;
    }
    const view = await viewOf(t, await describe(handle));
    out.progress(`${created ? 'created' : 'updated'} schedule ${scheduleId} on ${t.taskQueue} at ${t.address}`);
    const was = previous as ScheduleDescription | null;
    return {
      ok: true,
      data: { scheduleId, created, updated: !created, schedule: view },
      human: [
        created
          ? `Scheduled drills of ${cluster} at ${input.drSite}: ${scheduleId}.`
          : `${scheduleId} already existed: updated it (was ${was ? specText(was) : '?'}; now ${view.spec}).`,
        ...viewText(view),
        ...(view.paused ? [`  it stays paused: drctl drill unpause ${cluster}`] : []),
      ].join('\n'),
    };
  });

  register(drill.command('list').description('the drill schedules: cluster, spec, paused and why, next run, last result')
    .option('--cluster <site/cluster>', 'only this cluster\'s schedule', clusterRef('--cluster'))
    .option('--any-queue', 'also schedules of other deployments (default: only those on DR_TASK_QUEUE_PREFIX\'s control queue)'),
  async ({ opts, temporal }) => {
    const t = await temporal();
    const schedules: ScheduleView[] = [];
    // Listing is a visibility query (eventually consistent); each schedule's own description is current.
    for await (const s of t.client.schedule.list()) {
      if (!s.scheduleId.startsWith(`${RUNBOOK_NAMES.drill}/`) || (s.action && s.action.workflowType !== 'drill')) continue;
      if (opts.cluster && s.scheduleId !== scheduleIdOf(opts.cluster)) continue;
      const d = await t.client.schedule.getHandle(s.scheduleId).describe().catch((err: unknown) => {
        if (err instanceof ScheduleNotFoundError) return null;
        throw err;
      });
      if (!d || (!opts.anyQueue && d.action.taskQueue !== t.taskQueue)) continue;
      schedules.push(await viewOf(t, d));
    }
    schedules.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
    const human = schedules.length
      ? table([
        ['SCHEDULE', 'CLUSTER', 'DR SITE', 'SPEC', 'JITTER', 'STATE', 'NEXT RUN', 'LAST RUN'],
        ...schedules.map((v) => [v.scheduleId, v.cluster, v.drSite, v.spec, v.jitterMs ? formatDuration(v.jitterMs) : null, pausedLine(v),
          v.paused ? null : v.nextRunAt,
          v.lastRun ? `${v.lastRun.status}${v.lastRun.outcome ? ` (${v.lastRun.outcome})` : ''} ${v.lastRun.workflowId}` : null]),
      ]).join('\n')
      : `no drill schedules on ${t.taskQueue}${opts.cluster ? ` for ${opts.cluster}` : ''} (create one: drctl drill schedule <site>/<cluster> --dr-site <site> --cron "0 3 * * 1")`;
    return { ok: true, data: { taskQueue: opts.anyQueue ? null : t.taskQueue, schedules }, human };
  });

  register(drill.command('pause').description('pause a drill schedule (no drill starts until unpaused)')
    .argument('<schedule>', SCHEDULE_ARG)
    .option('--note <text>', 'why, for whoever looks next (default "paused with drctl")'),
  async ({ opts, args, temporal }) => {
    const scheduleId = scheduleIdOf(args[0] as string);
    const t = await temporal();
    const handle = t.client.schedule.getHandle(scheduleId);
    const before = await describe(handle);
    const note = opts.note ?? 'paused with drctl';
    await handle.pause(note);
    const view = await viewOf(t, await describe(handle));
    return {
      ok: true,
      data: { scheduleId: handle.scheduleId, wasPaused: before.state.paused, previousNote: before.state.note || null, schedule: view },
      human: [
        before.state.paused ? `${handle.scheduleId} was already paused; its note is now "${note}" (was "${before.state.note ?? ''}").` : `Paused ${handle.scheduleId}: ${note}.`,
        ...viewText(view),
      ].join('\n'),
    };
  });

  register(drill.command('unpause').description('unpause a drill schedule; this clears its note (after a failed drill: the server\'s note naming it)')
    .argument('<schedule>', SCHEDULE_ARG)
    .option('--note <text>', 'the new note, e.g. what was fixed (default "unpaused with drctl")'),
  async ({ opts, args, temporal }) => {
    const scheduleId = scheduleIdOf(args[0] as string);
    const t = await temporal();
    const handle = t.client.schedule.getHandle(scheduleId);
    const before = await describe(handle);
    const cleared = before.state.note || null;
    const failed = before.state.paused ? pausedByFailure(before.state.note) : null;
    if (before.state.paused) await handle.unpause(opts.note ?? 'unpaused with drctl');
    const view = await viewOf(t, await describe(handle));
    return {
      ok: true,
      data: { scheduleId: handle.scheduleId, wasPaused: before.state.paused, clearedNote: before.state.paused ? cleared : null, pausedByFailure: failed, schedule: view },
      human: [
        before.state.paused
          ? `Unpaused ${handle.scheduleId}; cleared its note "${cleared ?? ''}".` +
            `${failed ? `\n  it had paused after the failed drill ${failed.workflowId} (drctl report ${failed.workflowId})` : ''}`
          : `${handle.scheduleId} was not paused: nothing changed.`,
        ...viewText(view),
      ].join('\n'),
    };
  });

  register(drill.command('trigger').description('start a scheduled drill now (refused while one of this schedule is running: overlap skip)')
    .argument('<schedule>', SCHEDULE_ARG),
  async ({ out, args, temporal }) => {
    const scheduleId = scheduleIdOf(args[0] as string);
    const t = await temporal();
    const handle = t.client.schedule.getHandle(scheduleId);
    const before = await describe(handle);
    const running = before.info.runningActions.map((a) => a.workflow.workflowId);
    if (running.length) {
      throw new CliError('refused', `a drill of ${handle.scheduleId} is running: ${running.join(', ')}; wait for it (drctl status ${running[0]})`,
        { scheduleId: handle.scheduleId, running });
    }
    await handle.trigger(ScheduleOverlapPolicy.SKIP);
    // The schedule takes the action asynchronously: wait until it shows as taken.
    const deadline = Date.now() + 30_000;
    let after = await describe(handle);
    while (after.info.numActionsTaken <= before.info.numActionsTaken && Date.now() < deadline) {
      await sleep(250);
      after = await describe(handle);
    }
    const action = after.info.numActionsTaken > before.info.numActionsTaken ? after.info.recentActions.at(-1) : undefined;
    if (!action) throw new CliError('failed', `${handle.scheduleId} was triggered but no drill started within 30 s (see: drctl drill list)`, { scheduleId: handle.scheduleId });
    const { workflowId, firstExecutionRunId: runId } = action.action.workflow;
    out.progress(`${handle.scheduleId} started ${workflowId} (run ${runId})`);
    return {
      ok: true,
      data: { scheduleId: handle.scheduleId, workflowId, runId, paused: after.state.paused },
      human: [
        `Triggered ${handle.scheduleId}: started ${workflowId} (run ${runId}).`,
        ...(after.state.paused ? ['  (the schedule itself stays paused: only this drill runs)'] : []),
        `  follow: drctl status ${workflowId} --follow`,
        `  report: drctl report ${workflowId}   (when it has ended)`,
      ].join('\n'),
    };
  });

  register(drill.command('delete').description('delete a drill schedule (a drill it started and still running goes on)')
    .argument('<schedule>', SCHEDULE_ARG),
  async ({ args, temporal }) => {
    const scheduleId = scheduleIdOf(args[0] as string);
    const t = await temporal();
    const handle = t.client.schedule.getHandle(scheduleId);
    const view = await viewOf(t, await describe(handle));
    await handle.delete().catch((err: unknown) => {
      if (err instanceof ScheduleNotFoundError) throw new CliError('not-found', `no drill schedule ${handle.scheduleId}`, { scheduleId: handle.scheduleId });
      throw err;
    });
    return {
      ok: true,
      data: { scheduleId: handle.scheduleId, deleted: true, schedule: view },
      human: `Deleted ${handle.scheduleId} (${view.spec}).${view.running.length ? ` Still running: ${view.running.join(', ')}.` : ''}`,
    };
  });
}
