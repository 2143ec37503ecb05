// drctl standby-lag [<site>/<cluster>...]: runs the standby-lag check and prints a table (or, --json, the rows).
// Exit 1 when a standby is over its threshold or could not be measured, so a cron job or a monitor can act on it.
// drctl standby-lag schedule --every 5m / unschedule: the same check on a Temporal Schedule (ID `standby-lag`).
import {
  ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleOptions,
} from '@temporalio/client';
import type { Command } from 'commander';
import { RUNBOOK_NAMES } from '../../../workflows/contracts/runbooks';
import { DR_CLUSTER, DR_RUNBOOK, DR_SITE } from '../../../workflows/contracts/search-attributes';
import {
  standbyLagWorkflowId, type StandbyLagInput, type StandbyLagResult, type StandbyLagRow,
} from '../../../workflows/contracts/standby-lag';
import { RunbookAlreadyRunningError, startRunbook } from '../runbook-client';
import type { Register } from './context';
import { followRun } from './follow';
import { clusterRef, compact, duration, formatDuration, nonNegativeNumber } from './options';
import { CliError, table } from './output';

export const STANDBY_LAG_SCHEDULE_ID = RUNBOOK_NAMES.standbyLag;

const collectRefs = (value: string, previous: string[] = []) => [...previous, clusterRef('cluster')(value)];

function lagInput(clusters: string[], o: Record<string, any>): StandbyLagInput {
  return compact({
    clusters: clusters.length ? clusters : undefined,
    threshold: compact({ maxBytes: o.maxBytes, maxSeconds: o.maxSeconds }),
    page: o.page === false ? false : undefined,
  });
}

const lagOptions = (cmd: Command) => cmd
  .option('--max-bytes <n>', 'threshold in bytes of WAL (runbook default 64 MiB; a standby\'s label dr-lag-max-bytes overrides it)', nonNegativeNumber)
  .option('--max-seconds <n>', 'threshold in seconds (runbook default 300; label dr-lag-max-seconds overrides it)', nonNegativeNumber)
  .option('--no-page', 'report only: do not page for standbys over their threshold');

const cell = (n: number | null) => (n === null ? null : String(n));

export function lagTable(rows: StandbyLagRow[]): string[] {
  return table([
    ['STANDBY', 'SOURCE', 'STATUS', 'BYTES', 'SECONDS', 'THRESHOLD', 'REPLAYED', 'ARCHIVE ENDS', 'REPLAY', 'PAGED'],
    ...rows.map((r) => [
      r.standby, r.source, r.status.toUpperCase(), cell(r.bytes), cell(r.seconds),
      `${r.threshold.maxBytes} B / ${r.threshold.maxSeconds} s${r.threshold.from === 'labels' ? ' (labels)' : ''}`,
      r.replayedLsn, r.archiveEndLsn ? `${r.archiveEndLsn} (${r.archivedSegment})` : null, r.replayPauseState, r.paged ? 'yes' : null,
    ]),
  ]);
}

export function defineStandbyLagCommands(program: Command, register: Register): void {
  const cmd = lagOptions(program.command('standby-lag')
    .description('how far each archive-fed standby is behind its source\'s archive (bytes, seconds); pages over the threshold')
    .argument('[clusters...]', 'standbys <site>/<cluster> to check (default: every standby of every site)', collectRefs))
    .enablePositionalOptions();
  register(cmd, async ({ out, opts, args, temporal }) => {
    const clusters = (args[0] ?? []) as string[];
    const input = lagInput(clusters, opts);
    const workflowId = standbyLagWorkflowId(input.clusters);
    const t = await temporal();
    let handle;
    try {
      handle = await startRunbook(t.client, {
        workflowType: 'standbyLag', runbook: RUNBOOK_NAMES.standbyLag, cluster: clusters.length === 1 ? clusters[0] : '*/*',
        input, taskQueue: t.taskQueue, workflowId,
      });
    } catch (err) {
      if (!(err instanceof RunbookAlreadyRunningError)) throw err;
      throw new CliError('already-running', `${err.message} (see: drctl status ${err.workflowId})`, { workflowId: err.workflowId });
    }
    out.progress(`started ${handle.workflowId} on ${t.taskQueue} at ${t.address}`);
    const f = await followRun(t, handle, out);
    if (f.failure) {
      return {
        ok: false, data: { workflowId, input, failure: f.failure, journal: f.journal },
        human: `${workflowId} ended: ${f.failure.type}: ${f.failure.message}`,
        error: { kind: 'failed', message: `${f.failure.type}: ${f.failure.message}`, type: f.failure.type },
      };
    }
    const r = f.result as StandbyLagResult;
    const bad = r.rows.filter((x) => x.status === 'over' || x.status === 'unknown');
    const human = [
      ...(r.rows.length ? lagTable(r.rows) : ['no archive-fed standbys found']),
      `${r.checked} measured, ${r.over} over threshold, ${r.unknown} not measurable${r.paged.length ? `; paged for ${r.paged.join(', ')}` : ''}.`,
    ].join('\n');
    const data = { workflowId, input, ...r };
    if (!bad.length) return { ok: true, data, human };
    return {
      ok: false, data, human,
      error: { kind: 'failed', message: `${bad.map((x) => `${x.standby} ${x.status}`).join(', ')}` },
    };
  });

  register(lagOptions(cmd.command('schedule')
    .description('run the check on a Temporal Schedule (ID standby-lag); scheduling again updates it')
    .requiredOption('--every <duration>', 'how often, e.g. 5m', duration('--every', 60_000))
    .option('--cluster <site/cluster>', 'only this standby (repeatable; default every standby)', collectRefs)),
  async ({ out, opts, temporal }) => {
    const input = lagInput(opts.cluster ?? [], opts);
    const t = await temporal();
    const attributes = [{ key: DR_RUNBOOK, value: RUNBOOK_NAMES.standbyLag }, { key: DR_CLUSTER, value: '*/*' }, { key: DR_SITE, value: '*' }];
    const options: ScheduleOptions = {
      scheduleId: STANDBY_LAG_SCHEDULE_ID,
      spec: { intervals: [{ every: opts.every }] },
      action: {
        type: 'startWorkflow', workflowType: 'standbyLag', workflowId: standbyLagWorkflowId(input.clusters), taskQueue: t.taskQueue,
        args: [input], typedSearchAttributes: attributes, staticSummary: 'standby-lag (scheduled)',
      },
      // A check still running makes the next skip; a missed one is not worth running late; a failed check
      // (e.g. a site listing that failed) must not stop the monitoring.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: 60_000, pauseOnFailure: false },
      typedSearchAttributes: attributes,
      state: { note: 'scheduled with drctl' },
    };
    let created = true;
    try {
      await t.client.schedule.create(options);
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      created = false;
      await t.client.schedule.getHandle(STANDBY_LAG_SCHEDULE_ID).update((prev) => ({ ...options, state: { paused: prev.state.paused, note: prev.state.note } }));
    }
    out.progress(`${created ? 'created' : 'updated'} schedule ${STANDBY_LAG_SCHEDULE_ID} on ${t.taskQueue}`);
    return {
      ok: true,
      data: { scheduleId: STANDBY_LAG_SCHEDULE_ID, created, everyMs: opts.every, input, taskQueue: t.taskQueue },
      human: `${created ? 'Scheduled' : 'Updated'} ${STANDBY_LAG_SCHEDULE_ID}: every ${formatDuration(opts.every)}, ${input.clusters ? input.clusters.join(', ') : 'every standby'}.`,
    };
  });

  register(cmd.command('unschedule').description('delete the standby-lag schedule (a check it started and still running goes on)'),
    async ({ temporal }) => {
      const t = await temporal();
      await t.client.schedule.getHandle(STANDBY_LAG_SCHEDULE_ID).delete().catch((err: unknown) => {
        if (err instanceof ScheduleNotFoundError) throw new CliError('not-found', `no schedule ${STANDBY_LAG_SCHEDULE_ID}`, { scheduleId: STANDBY_LAG_SCHEDULE_ID });
        throw err;
      });
      return { ok: true, data: { scheduleId: STANDBY_LAG_SCHEDULE_ID, deleted: true }, human: `Deleted ${STANDBY_LAG_SCHEDULE_ID}.` };
    });
}
