// standby-lag against real parts: an archive-only standby replaying its source's S3 archive. Caught up, it reports
// (at most) the one segment just archived and pages nobody; with replay paused (Patroni in maintenance mode, then
// pg_wal_replay_pause) while the source
// writes and archives, it reports the bytes between the archive's newest segment and its replay position, over the
// threshold its own label sets, and pages. drctl prints the same rows; its schedule is a Temporal Schedule.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { lastArchivedWal, listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { lsnAtOrAfter, lsnDiff } from '../../workflows/contracts/lsn';
import { RUNBOOK_NAMES } from '../../workflows/contracts/runbooks';
import { DR_OUTCOME } from '../../workflows/contracts/search-attributes';
import {
  LAG_THRESHOLD_LABELS, standbyLagWorkflowId, type StandbyLagInput, type StandbyLagResult,
} from '../../workflows/contracts/standby-lag';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { deleteCluster, driverOf, sql } from '../helpers/clusters';
import { saveHistory } from '../helpers/histories';
import { createSource } from '../helpers/standby-pair';
import { testLayout } from '../helpers/test-env';
import { waitFor } from '../helpers/private-regions';
import { drctl } from '../cli/drctl-process';

const NOTIFY_FILE = join(testLayout().dir, 'notifications-standby-lag.jsonl');
process.env.DR_NOTIFY_FILE = NOTIFY_FILE;

const SOURCE = 'eu/acid-lagsrc';
const STANDBY = 'us/acid-lagsrc';
const SEGMENT = 16 * 1024 * 1024;

const start = (h: RunbookHarness, input: StandbyLagInput) => startRunbook(h.client, {
  workflowType: 'standbyLag', runbook: RUNBOOK_NAMES.standbyLag, cluster: input.clusters?.length === 1 ? input.clusters[0] : '*/*',
  input, taskQueue: h.taskQueue, workflowId: standbyLagWorkflowId(input.clusters),
});
const outcome = async (handle: WorkflowHandle) => (await handle.describe()).typedSearchAttributes.get(DR_OUTCOME);
const notifications = () => (existsSync(NOTIFY_FILE)
  ? readFileSync(NOTIFY_FILE, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { workflowId: string; cluster: string; reason: string })
  : []);

/** The end of the newest segment in the source's archive, read from S3 directly. */
async function archiveEnd(): Promise<{ segment: string; endLsn: string }> {
  const { driver, cluster } = driverOf(SOURCE);
  const { archive } = (await driver.describeCluster(cluster))!;
  const newest = await lastArchivedWal(archive.s3, archive.walPrefix);
  if (!newest) throw new Error(`${SOURCE}'s archive holds no WAL`);
  return newest;
}

const replayed = async () => (await sql<{ lsn: string; state: string }>(STANDBY,
  'SELECT pg_last_wal_replay_lsn()::text AS lsn, pg_get_wal_replay_pause_state() AS state'))[0];

/** A commit on the source and its segment switched into the archive; resolves once the archive holds it. */
async function writeAndArchive(rows: number): Promise<string> {
  await sql(SOURCE, 'INSERT INTO public.writes (id) SELECT m + g FROM (SELECT coalesce(max(id), 0) AS m FROM public.writes) s, generate_series(1, $1::int) g', [rows]);
  const [{ lsn }] = await sql<{ lsn: string }>(SOURCE, 'SELECT pg_current_wal_lsn()::text AS lsn');
  await sql(SOURCE, 'SELECT pg_switch_wal()');
  await waitFor(`${SOURCE}'s archive to hold ${lsn}`, 120_000, async () => (lsnAtOrAfter((await archiveEnd()).endLsn, lsn) ? true : null));
  return lsn;
}

/**
 * Patroni's maintenance mode on the standby: Patroni resumes a paused WAL replay on Postgres 14+ in every HA loop
 * (it takes the pause for one caused by a parameter change), so holding replay back needs Patroni paused first.
 */
async function patroniPause(on: boolean): Promise<void> {
  const { driver, cluster } = driverOf(STANDBY);
  const url = driver.region.patroniUrl(cluster);
  const r = await fetch(`${url}/config`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pause: on }) });
  if (r.status !== 200) throw new Error(`PATCH /config {pause: ${on}} of ${STANDBY} answered ${r.status}`);
  await waitFor(`Patroni of ${STANDBY} to ${on ? 'pause' : 'resume'}`, 60_000, async () =>
    (((await (await fetch(`${url}/patroni`)).json()) as { pause?: boolean }).pause === true) === on ? true : null);
}

/** A commit on the source, archived and replayed by the standby. */
async function catchUp(): Promise<void> {
  const lsn = await writeAndArchive(100);
  const end = (await archiveEnd()).endLsn;
  await waitFor(`${STANDBY} to replay ${SOURCE}'s archive`, 180_000, async () => {
    const at = (await replayed()).lsn;
    return lsnAtOrAfter(at, end) && lsnAtOrAfter(at, lsn) ? true : null;
  });
}

describe('standby-lag', () => {
  beforeAll(async () => {
    rmSync(NOTIFY_FILE, { force: true });
    const archive = await createSource(SOURCE, { members: 1 });
    const src = driverOf(SOURCE);
    const dst = driverOf(STANDBY);
    for (const user of await src.driver.listSecretUsers(src.cluster)) {
      await dst.driver.writeSecret(dst.cluster, user, (await src.driver.readSecret(src.cluster, user))!);
    }
    const facts = (await src.driver.describeCluster(src.cluster))!;
    // Archive only: no streaming. Its own label sets a threshold of one segment, below the 64 MiB policy default.
    await dst.driver.createStandbyCluster({
      cluster: dst.cluster, sourceRef: SOURCE, like: { pgVersion: 15, instances: 1 },
      labels: { [LAG_THRESHOLD_LABELS.maxBytes]: String(SEGMENT) },
      fromArchive: { archive: facts.archive, backupName: (await listCompleteBackups(src.driver.cfg.s3, archive)).pop()!.name },
    });
  });

  afterAll(async () => {
    await sql(STANDBY, 'SELECT pg_wal_replay_resume()').catch(() => undefined);
    await patroniPause(false).catch(() => undefined);
    await deleteCluster(STANDBY);
    await deleteCluster(SOURCE);
  });

  it('a caught-up standby: at most the segment just archived, within its threshold, no page', async () => {
    await catchUp();
    await withRunbookWorkers(async (h) => {
      const handle = await start(h, { clusters: [STANDBY] });
      const r = (await handle.result()) as StandbyLagResult;
      expect(r).toMatchObject({ checked: 1, over: 0, unknown: 0, paged: [] });
      const [row] = r.rows;
      expect(row).toMatchObject({
        standby: STANDBY, source: SOURCE, status: 'ok', paged: false, streams: false, replayPauseState: 'not paused',
        threshold: { maxBytes: SEGMENT, maxSeconds: 300, from: 'labels' },
      });
      // A segment the source archived after the wait (a checkpoint, archive_timeout) may not be replayed yet.
      expect(row.bytes).toBeLessThanOrEqual(SEGMENT);
      expect(await outcome(handle)).toBe('succeeded');
      expect(notifications().filter((n) => n.workflowId === handle.workflowId)).toEqual([]);
    });
  });

  it('a standby whose replay is paused while the source archives: its bytes behind, over its threshold, paged; drctl shows it', async () => {
    // A replayed commit first, so the seconds behind have a start.
    await catchUp();
    await patroniPause(true);
    await sql(STANDBY, 'SELECT pg_wal_replay_pause()');
    await waitFor(`${STANDBY}'s replay to pause`, 60_000, async () => ((await replayed()).state === 'paused' ? true : null));
    const held = (await replayed()).lsn;
    for (let i = 0; i < 3; i++) await writeAndArchive(1000);
    await withRunbookWorkers(async (h) => {
      const handle = await start(h, { clusters: [STANDBY] });
      const r = (await handle.result()) as StandbyLagResult;
      const [row] = r.rows;
      const end = await archiveEnd();
      expect(row).toMatchObject({
        standby: STANDBY, status: 'over', paged: true, replayPauseState: 'paused', replayedLsn: held,
        threshold: { maxBytes: SEGMENT, from: 'labels' },
      });
      // Three switched segments are in the archive and none replayed: more than two segments behind, and exactly the
      // distance from the replay position to the end of the segment it reported (the archive only grows).
      expect(row.bytes).toBeGreaterThan(2 * SEGMENT);
      expect(row.bytes).toBe(lsnDiff(row.archiveEndLsn!, held));
      expect(lsnDiff(end.endLsn, row.archiveEndLsn!)).toBeGreaterThanOrEqual(0);
      expect(row.seconds).toBeGreaterThanOrEqual(0);
      expect(row.reason).toMatch(new RegExp(`^${STANDBY} has replayed to ${held}, ${row.bytes} bytes .* behind [0-9A-F]{24} .*replay is paused: over its threshold of ${SEGMENT} bytes`));
      expect(r).toMatchObject({ checked: 1, over: 1, paged: [STANDBY] });
      expect(await outcome(handle)).toBe('lagging');
      expect(notifications()).toEqual(expect.arrayContaining([
        expect.objectContaining({ workflowId: handle.workflowId, cluster: STANDBY, reason: row.reason }),
      ]));
      await saveHistory(handle, 'standby-lag.over');

      // Every standby of every site, without paging: this one is among them, its source is not (it records none).
      const all = (await (await start(h, { page: false })).result()) as StandbyLagResult;
      expect(all.rows.find((x) => x.standby === STANDBY)).toMatchObject({ status: 'over', paged: false });
      expect(all.rows.map((x) => x.standby)).not.toContain(SOURCE);
      expect(all.paged).toEqual([]);

      // drctl: the same rows, exit 1 because one is over its threshold; the policy flag does not beat the label.
      const json = await drctl(h, ['standby-lag', STANDBY, '--max-bytes', String(1024 * SEGMENT), '--no-page', '--json']);
      expect(json.code).toBe(1);
      expect(json.json).toMatchObject({
        ok: false, command: 'standby-lag', workflowId: `standby-lag/${STANDBY}`, over: 1,
        rows: [expect.objectContaining({ standby: STANDBY, status: 'over', replayedLsn: held, paged: false })],
        error: { kind: 'failed', message: `${STANDBY} over` },
      });
      // Measured again: the archive may have grown since, the replay position has not.
      expect(json.json.rows[0].bytes).toBeGreaterThanOrEqual(row.bytes!);
      const human = await drctl(h, ['standby-lag', STANDBY, '--no-page']);
      expect(human.code).toBe(1);
      expect(human.stdout).toMatch(/^STANDBY +SOURCE +STATUS +BYTES +SECONDS/);
      expect(human.stdout).toMatch(new RegExp(`\\n${STANDBY} +${SOURCE} +OVER +\\d+ +\\d+ +${SEGMENT} B / 300 s \\(labels\\) +${held} `));
      expect(human.stdout).toMatch(/1 measured, 1 over threshold, 0 not measurable\.\n$/);
    });
  });

  it('drctl standby-lag schedule: a Temporal Schedule of the check (overlap skip, no pause on failure); unschedule deletes it', async () => {
    await withRunbookWorkers(async (h) => {
      const made = await drctl(h, ['standby-lag', 'schedule', '--every', '5m', '--cluster', STANDBY, '--max-seconds', '600', '--json']);
      expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: '' });
      expect(made.json).toMatchObject({ ok: true, scheduleId: 'standby-lag', created: true, everyMs: 300_000 });
      const d = await h.client.schedule.getHandle('standby-lag').describe();
      expect(d.policies).toMatchObject({ overlap: 'SKIP', pauseOnFailure: false });
      expect(d.spec.intervals).toMatchObject([{ every: 300_000 }]);
      expect(d.action).toMatchObject({
        type: 'startWorkflow', workflowType: 'standbyLag', workflowId: `standby-lag/${STANDBY}`, taskQueue: h.taskQueue,
        args: [{ clusters: [STANDBY], threshold: { maxSeconds: 600 } }],
      });
      const again = await drctl(h, ['standby-lag', 'schedule', '--every', '10m', '--json']);
      expect(again.json).toMatchObject({ ok: true, created: false, everyMs: 600_000 });
      expect((await h.client.schedule.getHandle('standby-lag').describe()).action).toMatchObject({ workflowId: 'standby-lag/all', args: [{}] });
      const gone = await drctl(h, ['standby-lag', 'unschedule', '--json']);
      expect(gone.json).toMatchObject({ ok: true, deleted: true });
      await expect(h.client.schedule.getHandle('standby-lag').describe()).rejects.toThrow();
      const none = await drctl(h, ['standby-lag', 'unschedule', '--json']);
      expect(none.code).toBe(1);
      expect(none.json.error).toMatchObject({ kind: 'not-found' });
    });
  });
});
