// The planned switchover's old-primary side on Patroni 4.1 (demote-cluster: standby_cluster written on the RUNNING
// primary) through the local SiteDriver, on real Patroni / Postgres 15 / etcd / versitygw: writes stop, the shutdown
// checkpoint is reported as the fence reports it, the standby replays it, is promoted, and the demoted side follows
// it with no pg_rewind; the later demote step finds it done. Then the undo (a rejected switchover): standby_cluster
// removed, the demoted primary takes writes again. On Patroni 3.0.2 (DR_PATRONI=3) the driver declines, changing
// nothing. Private layout: its own port block (30800-30949) and temp folder.
import { rmSync } from 'node:fs';
import { PRIMARY_NODE_ROLES } from '../../activities/sites/patroni-states';
import { privateRegions, sleep, sql, waitFor } from '../helpers/private-regions';
import { lsnAtOrAfter } from '../../workflows/contracts/lsn';
import { patroniLogSince, patroniNode, walRecordAt, standbyOf, Writer } from './switchover-helpers';

const regions = privateRegions('native-demote', 30800);
const east = regions.driverFor('east', 30850);
const west = regions.driverFor('west', 30900);
const log = regions.log;
const LSN = /^[0-9A-F]+\/[0-9A-F]+$/;
const patroni3 = process.env.DR_PATRONI === '3';

beforeAll(() => regions.start([east, west]));
afterAll(async () => {
  await regions.stop([east, west]);
  rmSync(regions.tmp, { recursive: true, force: true });
});

async function waitForMarker(d: typeof east, cluster: string, note: string): Promise<void> {
  await waitFor(`marker ${note} on ${cluster}`, 60_000, async () =>
    ((await sql<{ n: number }>(d, cluster, 'select count(*)::int as n from marker where note = $1', [note]))[0].n === 1 ? true : null));
}

const rewindLines = (d: typeof east, cluster: string, since: Date) =>
  d.region.getCluster(cluster)!.members.flatMap((m) => patroniLogSince(d.region.memberPaths(cluster, m.name).logFile, since))
    .filter((l) => /running pg_rewind|reinitializ/i.test(l));

test('demote-cluster on the running primary: zero acknowledged writes lost, no rewind, idempotent, undoable', async () => {
  await east.region.createCluster({ name: 'acid-n', pgVersion: 15, archive: true });
  await sql(east, 'acid-n', 'create table writes(id int primary key)');
  await sql(east, 'acid-n', 'create table marker(note text primary key)');
  await standbyOf(east, 'acid-n', west, 'acid-m');
  await sql(east, 'acid-n', "insert into marker values ('before')");
  await waitForMarker(west, 'acid-m', 'before');
  const nLeader = (await east.region.leaderMember('acid-n'))!;
  const mFacts = (await west.describeCluster('acid-m'))!;
  const req = { sourceRef: 'west/acid-m', fromHost: mFacts.streamingEndpoint, fromArchive: { archive: mFacts.archive } };

  const writer = new Writer(await east.region.pgConfig('acid-n'), 20);
  await sleep(2_000);
  const since = new Date();
  let t0 = Date.now();
  const demoted = await east.demoteRunningPrimary('acid-n', req);
  const returnedAt = Date.now();
  log(`demoteRunningPrimary(N): ${returnedAt - t0} ms: ${JSON.stringify(demoted)}`);
  await sleep(500);
  await writer.stop();
  log(`writer: ${writer.acked.length} acknowledged, ${writer.failed.length} failed`);
  if (patroni3) {
    // 3.0.2 would demote with an immediate shutdown: the driver declines and N still takes writes.
    expect(demoted).toMatchObject({ native: false, patroniVersion: '3.0.2' });
    expect(writer.failed).toEqual([]);
    expect(PRIMARY_NODE_ROLES).toContain((await patroniNode(east, 'acid-n')).role);
    return;
  }
  if (!demoted.native) throw new Error(`not demoted natively: ${demoted.why}`);
  expect(demoted).toMatchObject({ native: true, changed: true, confirmed: true, method: 'demoted-to-standby', cleanShutdown: true });
  expect(demoted.patroniVersion).toMatch(/^4\./);
  expect(demoted.finalLsn).toMatch(LSN);
  expect(writer.failed.length).toBeGreaterThan(0);
  expect(writer.lastAckAt).toBeLessThanOrEqual(returnedAt);
  expect((await patroniNode(east, 'acid-n')).role).toBe('standby_leader');
  const ckpt = await walRecordAt(nLeader.dataDir, demoted.finalLsn!);
  log(`N's record at finalLsn: ${ckpt.line}`);
  expect(ckpt.desc).toBe('CHECKPOINT_SHUTDOWN');
  const again = await east.demoteRunningPrimary('acid-n', req);
  expect(again).toMatchObject({ native: true, changed: false, confirmed: true, finalLsn: demoted.finalLsn });

  // M replays the shutdown checkpoint, is promoted; N follows it with nothing to rewind, and the demote step finds it done.
  const replay = await waitFor('M replays the shutdown checkpoint', 60_000, async () => {
    const r = await sql<{ replay: string }>(west, 'acid-m', 'select pg_last_wal_replay_lsn()::text as replay');
    return lsnAtOrAfter(r[0].replay, demoted.finalLsn!) ? r[0].replay : null;
  });
  expect(replay).toBe(ckpt.endLsn);
  expect((await west.removeStandbyConfig('acid-m')).changed).toBe(true);
  await sql(west, 'acid-m', "insert into marker values ('promoted')");
  const mAfter = (await west.describeCluster('acid-m'))!;
  expect(mAfter.streamingEndpoint).toEqual(mFacts.streamingEndpoint);
  t0 = Date.now();
  const rejoin = await east.demoteToStandby('acid-n', { ...req, fromArchive: { archive: mAfter.archive } });
  log(`demoteToStandby(N) after the promotion: ${Date.now() - t0} ms: ${JSON.stringify(rejoin)}`);
  expect(rejoin).toMatchObject({ changed: false, rewound: false });
  await waitForMarker(east, 'acid-n', 'promoted');
  expect(rewindLines(east, 'acid-n', since)).toEqual([]);
  const onM = new Set((await sql<{ id: number }>(west, 'acid-m', 'select id from writes')).map((r) => r.id));
  const lost = writer.acked.filter((id) => !onM.has(id));
  log(`ids: ${writer.acked.length} acknowledged, ${onM.size} on M, lost ${lost.length}`);
  expect(lost).toEqual([]);

  // The undo: M (now the primary) demoted natively towards N, then standby_cluster removed: it takes writes again.
  const nNow = (await east.describeCluster('acid-n'))!;
  const back = await west.demoteRunningPrimary('acid-m', { sourceRef: 'east/acid-n', fromHost: nNow.streamingEndpoint, fromArchive: { archive: nNow.archive } });
  expect(back).toMatchObject({ native: true, changed: true, confirmed: true });
  await expect(sql(west, 'acid-m', "insert into marker values ('while-demoted')")).rejects.toThrow(/read-only/);
  const before = await patroniNode(west, 'acid-m');
  expect((await west.undoNativeDemotion('acid-m')).changed).toBe(true);
  const after = await patroniNode(west, 'acid-m');
  log(`undoNativeDemotion(M): ${before.role} tl ${before.timeline} -> ${after.role} tl ${after.timeline}`);
  expect(PRIMARY_NODE_ROLES).toContain(after.role);
  await sql(west, 'acid-m', "insert into marker values ('after-undo')");
  expect((await west.describeCluster('acid-m'))!.standbySource).toBeUndefined();
  expect((await west.undoNativeDemotion('acid-m')).changed).toBe(false);
  // N still follows M across M's new timeline.
  await waitForMarker(east, 'acid-n', 'after-undo');
});
