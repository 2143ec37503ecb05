// drctl drill ...: drills now (drill run) and on Temporal Schedules (schedule, list, pause, unpause, trigger,
// delete), run as an operator runs them against the suite's real Temporal server, with the real drill runbook on
// this process's workers.
import { ScheduleNotFoundError, WorkflowFailedError } from '@temporalio/client';
import type { TypedSearchAttributes } from '@temporalio/common';
import { renderDrillReport } from '../../workflows/contracts/drill-report';
import type { DrillReport } from '../../workflows/contracts/drills';
import { DR_CLUSTER, DR_RUNBOOK, DR_SITE } from '../../workflows/contracts/search-attributes';
import { deleteCluster, sql } from '../helpers/clusters';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createSource } from '../helpers/standby-pair';
import { drctl, eventually } from './drctl-process';

/** The schedule's current definition, as Temporal has it (not as drctl reports it). */
const describeSchedule = (h: RunbookHarness, id: string) => h.client.schedule.getHandle(id).describe();

async function listed(h: RunbookHarness, scheduleId: string, ok: (s: any) => boolean = () => true): Promise<any> {
  // Schedule listing is a visibility query: a change shows there shortly after it is made.
  return eventually(`drctl drill list to show ${scheduleId}`, async () => {
    const l = await drctl(h, ['drill', 'list', '--json']);
    expect(l.code).toBe(0);
    const s = l.json.schedules.find((x: { scheduleId: string }) => x.scheduleId === scheduleId);
    return s && ok(s) ? s : undefined;
  }, 60_000);
}

describe('drctl drill', () => {
  it('schedule: cron with jitter, a short catch-up window, overlap skip and pause on failure; scheduling again updates it; list; pause with a note, unpause clears it; delete', async () => {
    await withRunbookWorkers(async (h) => {
      const cluster = 'eu/acid-sched';
      const id = 'drill/eu/acid-sched';
      const created = await drctl(h, ['drill', 'schedule', cluster, '--dr-site', 'us', '--cron', '0 3 * * 1', '--jitter', '30m',
        '--verify-table', 'public.writes', '--note', 'weekly drill, CHG-1', '--json']);
      expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: '' });
      expect(created.json).toMatchObject({
        ok: true, command: 'drill schedule', scheduleId: id, created: true, updated: false,
        schedule: {
          cluster, drSite: 'us', spec: 'cron 0 3 * * 1', jitterMs: 1_800_000, catchupWindowMs: 600_000, overlap: 'SKIP',
          pauseOnFailure: true, paused: false, note: 'weekly drill, CHG-1', taskQueue: h.taskQueue, lastRun: null, running: [],
        },
      });

      const d = await describeSchedule(h, id);
      expect(d.policies).toEqual({ overlap: 'SKIP', catchupWindow: 600_000, pauseOnFailure: true });
      expect(d.spec.jitter).toBe(1_800_000);
      expect(d.spec.calendars).toHaveLength(1);
      expect(d.spec.calendars![0]).toMatchObject({
        comment: 'cron: 0 3 * * 1', minute: [{ start: 0, end: 0 }], hour: [{ start: 3, end: 3 }], dayOfWeek: [{ start: 'MONDAY', end: 'MONDAY' }],
      });
      expect(d.action).toMatchObject({
        type: 'startWorkflow', workflowType: 'drill', workflowId: id, taskQueue: h.taskQueue,
        args: [{ cluster, drSite: 'us', verifyTables: ['public.writes'] }],
      });
      // A description carries TypedSearchAttributes (the option type also allows a list of pairs).
      const attrs = d.action.typedSearchAttributes as TypedSearchAttributes;
      expect([attrs.get(DR_RUNBOOK), attrs.get(DR_CLUSTER), attrs.get(DR_SITE)]).toEqual(['drill', cluster, 'eu']);
      expect(d.state).toMatchObject({ paused: false, note: 'weekly drill, CHG-1' });
      // The next run: a Monday at 03:00 UTC plus at most the jitter.
      const next = d.info.nextActionTimes[0];
      expect(next.getUTCDay()).toBe(1);
      expect(next.getUTCHours()).toBe(3);
      expect(next.getUTCMinutes()).toBeLessThan(30);

      // The same cluster again: the schedule is updated, not refused; the note stays unless a new one is given.
      const again = await drctl(h, ['drill', 'schedule', cluster, '--dr-site', 'us', '--every', '12h', '--catchup-window', '2m', '--json']);
      expect(again.code).toBe(0);
      expect(again.json).toMatchObject({ created: false, updated: true, schedule: { spec: 'every 12h', jitterMs: 0, catchupWindowMs: 120_000, note: 'weekly drill, CHG-1' } });
      const d2 = await describeSchedule(h, id);
      expect(d2.spec.intervals).toMatchObject([{ every: 43_200_000 }]);
      expect(d2.spec.calendars ?? []).toEqual([]);
      expect(d2.policies).toEqual({ overlap: 'SKIP', catchupWindow: 120_000, pauseOnFailure: true });
      expect(d2.action.args).toEqual([{ cluster, drSite: 'us' }]);
      const againHuman = await drctl(h, ['drill', 'schedule', cluster, '--dr-site', 'us', '--every', '12h', '--catchup-window', '2m']);
      expect(againHuman.code).toBe(0);
      expect(againHuman.stdout).toContain(`${id} already existed: updated it (was every 12h; now every 12h)`);

      const row = await listed(h, id, (s) => s.spec === 'every 12h');
      expect(row).toMatchObject({ cluster, drSite: 'us', paused: false, pausedByFailure: null, lastRun: null, taskQueue: h.taskQueue });
      expect(row.nextRunAt).toEqual(expect.any(String));
      // Another deployment's list (another queue prefix) does not show it.
      const other = await drctl(null, ['drill', 'list', '--json'], { DR_TASK_QUEUE_PREFIX: `${h.prefix}other-` });
      expect(other.json.schedules.find((s: { scheduleId: string }) => s.scheduleId === id)).toBeUndefined();

      const paused = await drctl(h, ['drill', 'pause', cluster, '--note', 'change freeze CHG-2', '--json']);
      expect(paused.code).toBe(0);
      expect(paused.json).toMatchObject({ scheduleId: id, wasPaused: false, schedule: { paused: true, note: 'change freeze CHG-2', pausedByFailure: null } });
      expect((await describeSchedule(h, id)).state).toMatchObject({ paused: true, note: 'change freeze CHG-2' });
      const pausedList = await drctl(h, ['drill', 'list']);
      expect(pausedList.stdout).toMatch(new RegExp(`${id} .*PAUSED: change freeze CHG-2`));

      // Scheduling a paused cluster again keeps it paused, and says so.
      const whilePaused = await drctl(h, ['drill', 'schedule', cluster, '--dr-site', 'us', '--every', '1d']);
      expect(whilePaused.code).toBe(0);
      expect(whilePaused.stdout).toContain(`it stays paused: drctl drill unpause ${cluster}`);
      expect((await describeSchedule(h, id)).state).toMatchObject({ paused: true, note: 'change freeze CHG-2' });

      const unpaused = await drctl(h, ['drill', 'unpause', id, '--json']);
      expect(unpaused.code).toBe(0);
      expect(unpaused.json).toMatchObject({ wasPaused: true, clearedNote: 'change freeze CHG-2', pausedByFailure: null, schedule: { paused: false, note: 'unpaused with drctl' } });
      const unpausedHuman = await drctl(h, ['drill', 'unpause', cluster]);
      expect(unpausedHuman.code).toBe(0);
      expect(unpausedHuman.stdout).toContain(`${id} was not paused: nothing changed.`);

      const deleted = await drctl(h, ['drill', 'delete', cluster, '--json']);
      expect(deleted.code).toBe(0);
      expect(deleted.json).toMatchObject({ scheduleId: id, deleted: true });
      await expect(describeSchedule(h, id)).rejects.toThrow(ScheduleNotFoundError);
      const gone = await drctl(h, ['drill', 'pause', cluster, '--json']);
      expect(gone.code).toBe(1);
      expect(gone.json).toMatchObject({ ok: false, scheduleId: id, error: { kind: 'not-found' } });
    });
  });

  it('trigger starts a drill run; a drill that fails pauses its schedule with the server\'s note naming the run, list shows it, unpause says what it clears', async () => {
    await withRunbookWorkers(async (h) => {
      // No such cluster: the drill refuses it, so the run fails.
      const cluster = 'eu/acid-nope';
      const id = 'drill/eu/acid-nope';
      const scheduled = await drctl(h, ['drill', 'schedule', cluster, '--dr-site', 'us', '--cron', '0 3 * * 1', '--json']);
      expect(scheduled.code).toBe(0);

      const triggered = await drctl(h, ['drill', 'trigger', cluster, '--json']);
      expect({ code: triggered.code, stderr: triggered.stderr }).toEqual({ code: 0, stderr: '' });
      const workflowId: string = triggered.json.workflowId;
      // Temporal appends the scheduled time to the action's workflow ID.
      expect(workflowId).toMatch(/^drill\/eu\/acid-nope-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const run = h.client.workflow.getHandle(workflowId, triggered.json.runId);
      const desc = await run.describe();
      expect({ type: desc.type, taskQueue: desc.taskQueue }).toEqual({ type: 'drill', taskQueue: h.taskQueue });
      expect(desc.typedSearchAttributes.get(DR_RUNBOOK)).toBe('drill');
      expect(desc.typedSearchAttributes.get(DR_CLUSTER)).toBe(cluster);
      expect(desc.typedSearchAttributes.get(DR_SITE)).toBe('eu');
      await expect(run.result()).rejects.toThrow(WorkflowFailedError);

      // The schedule learns of the failure asynchronously; then it is paused with the note the server writes.
      const d = await eventually('the schedule to pause on the failure', async () => {
        const s = await describeSchedule(h, id);
        return s.state.paused ? s : undefined;
      });
      expect(d.state.note).toBe(`paused due to workflow failure: ${workflowId}: ${cluster} does not exist at site eu`);

      const row = await listed(h, id, (s) => s.paused && s.lastRun?.status === 'FAILED');
      expect(row).toMatchObject({
        paused: true, note: d.state.note,
        pausedByFailure: { kind: 'failure', workflowId, message: `${cluster} does not exist at site eu` },
        lastRun: { workflowId, runId: triggered.json.runId, status: 'FAILED' },
      });
      const human = await drctl(h, ['drill', 'list']);
      expect(human.stdout).toContain(`PAUSED by the failed drill ${workflowId}: ${cluster} does not exist at site eu`);

      // The scheduled run is a run like any other for status and report.
      const status = await drctl(h, ['status', workflowId, '--json']);
      expect(status.json).toMatchObject({ workflowId, runbook: 'drill', cluster, executionStatus: 'FAILED', failure: { type: 'ClusterNotFoundError' } });
      const report = await drctl(h, ['report', workflowId]);
      expect(report.code).toBe(0);
      expect(report.stdout).toContain('Failed: **ClusterNotFoundError**');

      const unpaused = await drctl(h, ['drill', 'unpause', cluster, '--note', 'cluster name fixed']);
      expect(unpaused.code).toBe(0);
      expect(unpaused.stdout).toContain(`Unpaused ${id}; cleared its note "paused due to workflow failure: ${workflowId}: `);
      expect(unpaused.stdout).toContain(`it had paused after the failed drill ${workflowId} (drctl report ${workflowId})`);
      expect((await describeSchedule(h, id)).state).toMatchObject({ paused: false, note: 'cluster name fixed' });

      expect((await drctl(h, ['drill', 'delete', id])).code).toBe(0);
    });
  });

  it('drill run: a real non-disruptive drill followed to its passed report; report prints the drill\'s Markdown, --json its DrillReport', async () => {
    const source = 'eu/acid-clidrill';
    await createSource(source);
    await sql(source, 'INSERT INTO public.writes (id) SELECT g FROM generate_series(1, 50) g ON CONFLICT DO NOTHING');
    try {
      await withRunbookWorkers(async (h) => {
        const run = await drctl(h, ['drill', 'run', source, '--dr-site', 'us', '--verify-table', 'public.writes', '--replay-timeout', '300', '--json']);
        expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
        expect(run.json).toMatchObject({
          ok: true, command: 'drill run', workflowId: `drill/${source}`, runbook: 'drill', cluster: source, status: 'COMPLETED',
          input: { cluster: source, drSite: 'us', verifyTables: ['public.writes'], limits: { replayTimeoutSeconds: 300 } },
          result: { cluster: source, outcome: 'passed', markerFound: true, tables: [{ table: 'public.writes', sourceRows: 50, drillRows: 50, matches: true }] },
        });
        const drillReport = run.json.result as DrillReport;

        const md = await drctl(h, ['report', `drill/${source}`]);
        expect(md.code).toBe(0);
        expect(md.stdout).toBe(renderDrillReport(drillReport));
        const json = await drctl(h, ['report', 'drill', source, '--json']);
        expect(json.json).toMatchObject({ ok: true, workflowId: `drill/${source}`, runbook: 'drill', report: drillReport });

        const status = await drctl(h, ['status', `drill/${source}`]);
        expect(status.stdout).toContain(`drill of ${source} at us (non-disruptive, on us/acid-clidrill-drill): PASSED`);
      });
    } finally {
      await deleteCluster('us/acid-clidrill-drill').catch(() => undefined);
      await deleteCluster(source);
    }
  });

  it('usage errors exit 2 before contacting Temporal: bad cron, a cluster without its site, no --dr-site, the cluster\'s own site, no spec, a too short catch-up window', async () => {
    // An address nothing listens on: contacting Temporal would exit 3.
    const offline = { TEMPORAL_ADDRESS: '127.0.0.1:1' };
    const cases: Array<[string[], RegExp]> = [
      [['drill', 'schedule', 'eu/acid-x', '--dr-site', 'us', '--cron', '0 25 * * 1'], /hour "25": 25 is outside 0-23/],
      [['drill', 'schedule', 'eu/acid-x', '--dr-site', 'us', '--cron', '0 3 * *'], /has 4 fields/],
      [['drill', 'schedule', 'acid-x', '--dr-site', 'us', '--cron', '0 3 * * 1'], /must be "<site>\/<cluster>"/],
      [['drill', 'schedule', 'eu/acid-x', '--cron', '0 3 * * 1'], /required option '--dr-site <site>' not specified/],
      [['drill', 'schedule', 'eu/acid-x', '--dr-site', 'eu', '--every', '1d'], /is the site of eu\/acid-x itself/],
      [['drill', 'schedule', 'eu/acid-x', '--dr-site', 'us'], /exactly one of --cron/],
      [['drill', 'schedule', 'eu/acid-x', '--dr-site', 'us', '--every', '24'], /not a duration with a unit/],
      [['drill', 'schedule', 'eu/acid-x', '--dr-site', 'us', '--every', '1d', '--catchup-window', '5s'], /shorter than 10s/],
      [['drill', 'pause', 'acid-x'], /must be "<site>\/<cluster>"/],
      [['drill', 'trigger', 'drill/eu'], /must be "<site>\/<cluster>"/],
      [['drill', 'run', 'eu/acid-x', '--dr-site', 'us', '--verify-table', 'Orders'], /<schema>\.<table>/],
    ];
    for (const [args, message] of cases) {
      const r = await drctl(null, [...args, '--json'], offline);
      expect({ args, code: r.code, kind: r.json.error?.kind }).toEqual({ args, code: 2, kind: 'usage' });
      expect(r.json.error.message).toMatch(message);
    }
  });
});
