// walgRetainBackups against real parts: real WAL-G `delete` on a cluster's own prefix in the sandbox's S3, with full
// backups on two timelines (three on timeline 1, a Patroni switchover inside the cluster, one on timeline 2). The kept
// set is exactly the newest N across both timelines; a dry run deletes nothing; keep < 1 is refused before anything
// is read; the WAL the kept backups need is still there (wal-verify from each kept backup to now is OK).
import { MockActivityEnvironment } from '@temporalio/testing';
import { createRetainBackups } from '../../activities/walg/retain-backups';
import { createVerifyArchive } from '../../activities/walg/verify-archive';
import { createDriverFactory } from '../../activities/sites';
import { loadSites } from '../../activities/sites/sites-file';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import type { ArchiveLocation } from '../../activities/sites/site-driver';
import type { RetentionInput, RetentionResult } from '../../workflows/contracts/retention';
import type { ArchiveCheck } from '../../workflows/contracts/archive-check';
import { deleteCluster, driverOf, sql, switchWalAndWaitArchived } from '../helpers/clusters';
import { waitFor } from '../helpers/private-regions';
import { createSource } from '../helpers/standby-pair';
import { testLayout } from '../helpers/test-env';

const CLUSTER = 'eu/acid-ret';

const deps = () => {
  const sites = loadSites(testLayout().sitesFile);
  return { sites, driverFor: createDriverFactory(sites) };
};
const retain = (input: RetentionInput) => new MockActivityEnvironment().run(createRetainBackups(deps()), input) as Promise<RetentionResult>;

async function position(): Promise<{ lsn: string; tl: number }> {
  return (await sql<{ lsn: string; tl: number }>(CLUSTER,
    "SELECT pg_current_wal_lsn()::text AS lsn, ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tl"))[0];
}

async function backupPush(): Promise<void> {
  const { driver, cluster } = driverOf(CLUSTER);
  await sql(CLUSTER, 'INSERT INTO public.writes (id) SELECT coalesce(max(id), 0) + 1 FROM public.writes');
  const r = await driver.region.backupPush(cluster);
  if (r.exitCode !== 0) throw new Error(`backup-push failed: ${r.stderr.slice(-300)}`);
  await switchWalAndWaitArchived(CLUSTER);
}

describe('walgRetainBackups (real WAL-G delete, backups on two timelines)', () => {
  let archive: ArchiveLocation;
  const names = async () => (await listCompleteBackups(archive.s3, archive.walPrefix)).map((b) => b.name);

  beforeAll(async () => {
    await createSource(CLUSTER, { members: 2 });
    const { driver, cluster } = driverOf(CLUSTER);
    archive = (await driver.describeCluster(cluster))!.archive;
    while ((await names()).length < 3) await backupPush();
    // A promotion inside the cluster: Patroni switches over to the caught-up replica, timeline 1 -> 2.
    await waitFor(`the replica of ${CLUSTER} to catch up`, 300_000, async () => {
      const [r] = await sql<{ n: number }>(CLUSTER, 'SELECT count(*)::int AS n FROM pg_stat_replication WHERE replay_lsn = pg_current_wal_lsn()');
      return r.n === 1 ? true : null;
    });
    const facts = (await driver.describeCluster(cluster))!;
    const candidate = facts.members.find((m) => m.name !== facts.leaderMember)!.name;
    const answer = await fetch(`${driver.region.patroniUrl(cluster)}/switchover`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ leader: facts.leaderMember, candidate }),
    });
    expect(answer.status).toBe(200);
    await waitFor(`${CLUSTER} to be primary on timeline 2`, 300_000, async () => {
      const f = await driver.describeCluster(cluster);
      if (f?.leaderMember !== candidate || f.leaderRole !== 'primary') return null;
      return (await position().catch(() => ({ tl: 0 }))).tl === 2 ? true : null;
    });
    await backupPush();
    await switchWalAndWaitArchived(CLUSTER);
  });
  afterAll(async () => {
    await deleteCluster(CLUSTER);
  });

  it('keep below 1 is refused before anything is read or deleted', async () => {
    const before = await names();
    for (const keep of [0, -1, 1.5]) {
      await expect(retain({ cluster: CLUSTER, keep })).rejects.toMatchObject({ name: 'BadInputError', message: expect.stringMatching(/keep must be a whole number/) });
    }
    expect(await names()).toEqual(before);
  });

  it('a dry run lists what WAL-G would delete and deletes nothing', async () => {
    const before = await listCompleteBackups(archive.s3, archive.walPrefix);
    expect(new Set(before.map((b) => b.timeline))).toEqual(new Set([1, 2]));
    const r = await retain({ cluster: CLUSTER, keep: 2, dryRun: true });
    const byAge = [...before].reverse();
    expect(r).toMatchObject({ dryRun: true, changed: false, keepApplied: 2, currentTimeline: 2, raisedBecause: null });
    expect(r.kept.map((b) => b.name)).toEqual(byAge.slice(0, 2).map((b) => b.name));
    expect(r.deleted.map((b) => b.name)).toEqual(byAge.slice(2).map((b) => b.name));
    expect(r.walg?.backups).toEqual(byAge.slice(2).map((b) => b.name).sort());
    expect(r.walg?.walObjects).toBeGreaterThan(0);
    expect(await names()).toEqual(before.map((b) => b.name));
  });

  it('keeps exactly the newest N across both timelines, again and again; the WAL they need stays', async () => {
    const before = await listCompleteBackups(archive.s3, archive.walPrefix);
    const newest2 = before.slice(-2).map((b) => b.name);
    const r = await retain({ cluster: CLUSTER, keep: 2 });
    expect(r.changed).toBe(true);
    expect(await names()).toEqual(newest2);
    // Idempotent: nothing more to delete.
    expect(await retain({ cluster: CLUSTER, keep: 2 })).toMatchObject({ changed: false, deleted: [], deleteBefore: null });
    // Each kept backup (one on timeline 1, one on 2) still restores to now: WAL-G's wal-verify from it is OK.
    expect(before.slice(-2).map((b) => b.timeline)).toEqual([1, 2]);
    const pos = await position();
    for (const backupName of newest2) {
      const check: ArchiveCheck = await new MockActivityEnvironment().run(createVerifyArchive(deps()), {
        archiveSite: 'eu', walPrefix: archive.walPrefix, backupName, timeline: pos.tl, lsn: pos.lsn,
      });
      expect({ backupName, status: check.status, gaps: check.gaps }).toEqual({ backupName, status: 'OK', gaps: [] });
    }
    // Down to one: the timeline-1 backup goes, the newest backup of the current timeline stays.
    const one = await retain({ cluster: CLUSTER, keep: 1 });
    expect(one.deleted.map((b) => b.name)).toEqual([newest2[0]]);
    expect(await names()).toEqual([newest2[1]]);
  });
});
