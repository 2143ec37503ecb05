// A planned switchover between regions whose only path is S3: the standby replays its source's archive and never
// streams. After the fence, the old primary's last (partial) segment, holding its shutdown checkpoint, must reach the
// archive, the standby replay it, and the old primary then follow the new one from the new archive, no pg_rewind.
// Real Patroni, Postgres 15, etcd, versitygw and WAL-G; a writer runs throughout.
import { readFileSync } from 'node:fs';
import { Client } from 'pg';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { lsnAtOrAfter } from '../../workflows/contracts/lsn';
import { RUNBOOK_NAMES, type PromoteInput, type PromoteResult } from '../../workflows/contracts/runbooks';
import { approveAs, pendingGate } from '../helpers/approvals';
import { driverOf, roleOf, sql, switchWalAndWaitArchived } from '../helpers/clusters';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { startWriter } from '../helpers/writer';
import { saveHistory } from '../helpers/histories';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const startPromote = (h: RunbookHarness, input: PromoteInput) =>
  startRunbook(h.client, { workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: input.cluster, input, taskQueue: h.taskQueue });

async function waitUntil<T>(what: string, fn: () => Promise<T | null>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(500);
  }
}

const replayedLsn = async (ref: string) => (await sql<{ l: string }>(ref, 'SELECT pg_last_wal_replay_lsn()::text AS l'))[0].l;
const hasRow = async (ref: string, id: number) => (await sql<{ n: number }>(ref, 'SELECT count(*)::int AS n FROM public.writes WHERE id = $1', [id]))[0].n === 1;

/** Every running Postgres of both clusters that accepts writes, by member. */
async function writableMembers(refs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const ref of refs) {
    const { driver, cluster } = driverOf(ref);
    for (const m of driver.region.getCluster(cluster)!.members) {
      const c = new Client({ ...(await driver.region.pgConfig(cluster, { member: m.name })), connectionTimeoutMillis: 3000 });
      c.on('error', () => undefined);
      try {
        await c.connect();
        if (!(await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r) out.push(`${ref}:${m.name}`);
      } catch {
        // Not running: not writable.
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  }
  return out;
}

function patroniLogs(ref: string): string {
  const { driver, cluster } = driverOf(ref);
  return driver.region.getCluster(cluster)!.members.map((m) => readFileSync(driver.region.memberPaths(cluster, m.name).logFile, 'utf8')).join('\n');
}

describe('promote, planned, archive-only standby', () => {
  let pair: StandbyPair;
  beforeAll(async () => {
    pair = await createStandbyPair('ao', { members: 1, archiveOnly: true });
  });
  afterAll(async () => {
    if (pair) await deleteStandbyPair(pair);
  });

  it('a fence lifted after the final segment was pushed: the full segment replaces the partial one and the standby replays on', async () => {
    const src = driverOf(pair.source);
    expect((await src.driver.describeCluster(src.cluster))!.leaderRole).toBe('primary');
    const dst = driverOf(pair.standby);
    expect((await dst.driver.describeCluster(dst.cluster))!.standbySource?.host).toBeUndefined();
    await sql(pair.source, 'INSERT INTO public.writes (id) VALUES (-1)');
    const fence = await src.driver.fenceCluster(src.cluster);
    expect(fence).toMatchObject({ confirmed: true, cleanShutdown: true });
    const pushed = await src.driver.archiveFinalWal(src.cluster, fence.finalLsn!);
    expect(pushed.changed).toBe(true);
    // Looked before acting: the archive's copy holds the checkpoint, nothing is pushed again.
    expect((await src.driver.archiveFinalWal(src.cluster, fence.finalLsn!)).changed).toBe(false);
    await waitUntil('the standby replays the pushed partial segment', async () => (lsnAtOrAfter(await replayedLsn(pair.standby), fence.finalLsn!) ? true : null));
    expect(await hasRow(pair.standby, -1)).toBe(true);

    // Rolled back: the old primary writes on into the same segment, then archives it full over the partial copy.
    await src.driver.unfenceCluster(src.cluster);
    await sql(pair.source, 'INSERT INTO public.writes (id) VALUES (-2)');
    await switchWalAndWaitArchived(pair.source);
    const archiver = (await sql<{ w: string | null }>(pair.source, 'SELECT last_failed_wal AS w FROM pg_stat_archiver'))[0];
    expect(archiver.w === null || !pushed.segments.includes(archiver.w)).toBe(true);
    await waitUntil('the standby replays the row written after the rollback', async () => ((await hasRow(pair.standby, -2)) ? true : null));
  });

  it('switches over with a writer running: 0 acknowledged rows lost, the old primary follows through the archive without pg_rewind', async () => {
    const writer = await startWriter([pair.source, pair.standby]);
    await sleep(2000);
    await withRunbookWorkers(async (h) => {
      const handle = await startPromote(h, { cluster: pair.standby, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false });
      const gate = await pendingGate(handle);
      expect(gate).toMatchObject({ gate: 'promote', fence: 'PENDING', requires: { acknowledgeDataLoss: false, acknowledgeUnconfirmedFence: false } });
      await approveAs(handle, 'alice', { ticket: 'CHG-15', comment: 'archive-only switchover' }, gate);
      const result = (await handle.result()) as PromoteResult;
      await sleep(1000);
      await writer.stop();
      expect(result).toMatchObject({ alreadyPromoted: false, fence: 'CONFIRMED', measuredRpoBytes: 0, finalWal: 'archived' });
      expect(result.timelineAfter).toBe(result.timelineBefore! + 1);

      const rows = await sql<{ id: string }>(pair.standby, 'SELECT id FROM public.writes');
      const present = new Set(rows.map((r) => Number(r.id)));
      const lost = writer.acknowledged.filter((id) => !present.has(id));
      process.stdout.write(`[archive-only switchover] acknowledged ${writer.acknowledged.length}, lost ${lost.length}, ` +
        `writes stopped ${result.writeDowntimeMs} ms, longest client gap ${writer.longestGapMs()} ms, phases ${JSON.stringify(result.phaseDurationsMs)}\n`);
      expect(writer.acknowledged.length).toBeGreaterThan(10);
      expect(lost).toEqual([]);

      const journal = await handle.query(getJournalQuery);
      const steps = journal.map((e) => `${e.step}:${e.outcome}`);
      expect(steps).toEqual(expect.arrayContaining(['check-streaming:skipped', 'fence-old-primary:done', 'archive-final-wal:done', 'catch-up:done',
        'check-replay:done', 'remove-standby-config:done', 'rejoin-old-primary:done']));
      expect(steps.indexOf('archive-final-wal:done')).toBeGreaterThan(steps.indexOf('fence-old-primary:done'));
      expect(steps.indexOf('catch-up:done')).toBeGreaterThan(steps.indexOf('archive-final-wal:done'));
      expect(steps).not.toContain('keep-standby-slot:done');
      const rejoin = journal.find((e) => e.step === 'rejoin-old-primary')!;
      expect(rejoin.facts).toMatchObject({ follow: 'archive', rewound: false });
      expect(rejoin.message).toMatch(/without pg_rewind/);

      // The old primary follows the new one: a row written now arrives through the new primary's archive, on
      // the new timeline, whose history file it restored; Patroni never ran pg_rewind; one writable cluster.
      expect(await roleOf(pair.source)).toBe('standby_leader');
      expect(await roleOf(pair.standby)).toBe('primary');
      await sql(pair.standby, 'INSERT INTO public.writes (id) VALUES (-3)');
      await switchWalAndWaitArchived(pair.standby);
      await waitUntil('the old primary replays a row written on the new primary', async () => ((await hasRow(pair.source, -3)) ? true : null));
      const history = `${result.timelineAfter.toString(16).toUpperCase().padStart(8, '0')}.history`;
      const wal = await sql<{ name: string }>(pair.source, "SELECT name FROM pg_ls_waldir() WHERE name LIKE '%.history'");
      expect(wal.map((r) => r.name)).toContain(history);
      expect(patroniLogs(pair.source)).not.toMatch(/pg_rewind/i);
      const dst = driverOf(pair.standby);
      expect(await writableMembers([pair.source, pair.standby])).toEqual([`${pair.standby}:${(await dst.driver.describeCluster(dst.cluster))!.leaderMember}`]);
      await saveHistory(handle, 'promote.planned-archive-only');
    });
  });
});
