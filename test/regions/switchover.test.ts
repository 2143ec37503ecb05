// The zero-loss planned switchover of patroni-recipes.md on real Patroni 3.0.2 / Postgres 15 / etcd / versitygw,
// through the local SiteDriver: fence the source A (pause + fast stop), let the standby B replay A's shutdown
// checkpoint, promote B, demote A into a standby of B; then fence/unfence, and a fence with Patroni killed.
// Private layout: ports 30000-30299 and a temp folder, no global setup.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { isAlive } from '../../activities/sites/local/processes';
import { PRIMARY_NODE_ROLES } from '../../activities/sites/patroni-states';
import { PreconditionFailedError, SiteUnreachableError } from '../../workflows/contracts/errors';
import { lsnAtOrAfter, lsnDiff } from '../../workflows/contracts/lsn';
import {
  driverFor, log, patroniLogSince, patroniNode, sleep, sql, standbyOf, startRegions, stopRegions, tmp, waitFor, waitForMarker,
  walRecordAt, Writer,
} from './switchover-helpers';
import { expectedPromotePath } from '../helpers/patroni-version';

const east = driverFor('east', 30100);
const west = driverFor('west', 30200);
const LSN = /^[0-9A-F]+\/[0-9A-F]+$/;

beforeAll(() => startRegions([east, west]));

afterAll(async () => {
  await stopRegions([east, west]);
  if (!process.env.KEEP_SWITCHOVER) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
});

describe('planned switchover A (east) -> B (west), then A follows B', () => {
  test('zero acknowledged writes lost, no rewind, every step idempotent', async () => {
    // 1. A archiving with a base backup; B streaming from A's leader with A's archive as fallback.
    const a = await east.region.createCluster({ name: 'acid-a', pgVersion: 15, archive: true });
    await sql(east, 'acid-a', 'create table writes(id int primary key, at timestamptz not null default now())');
    await sql(east, 'acid-a', 'create table marker(note text primary key)');
    const { source: aFacts } = await standbyOf(east, 'acid-a', west, 'acid-b');
    await sql(east, 'acid-a', "insert into marker values ('before-switch')");
    await waitForMarker(west, 'acid-b', 'before-switch');
    const aLeader = (await east.region.leaderMember('acid-a'))!;
    log(`A leader ${aLeader.name} :${aLeader.pgPort}; B streams from it`);

    // 2. A writer on A's leader every 20 ms.
    const writer = new Writer(await east.region.pgConfig('acid-a'), 20);
    await sleep(3_000);

    // 3. Fence A.
    let t0 = Date.now();
    const fence = await east.fenceCluster('acid-a');
    const fenceMs = Date.now() - t0;
    const fencedAt = Date.now();
    log(`fenceCluster(A): ${fenceMs} ms: ${JSON.stringify(fence)}`);
    await sleep(1_000);
    await writer.stop();
    log(`writer: ${writer.acked.length} acknowledged, ${writer.failed.length} failed (first failed id ${writer.failed[0]})`);
    expect(fence).toMatchObject({ changed: true, confirmed: true, method: 'paused-and-stopped', cleanShutdown: true });
    expect(fence.finalLsn).toMatch(LSN);
    expect(writer.failed.length).toBeGreaterThan(0);
    expect(writer.lastAckAt).toBeLessThanOrEqual(fencedAt);
    const fencedFacts = (await east.describeCluster('acid-a'))!;
    expect(fencedFacts.leaderRole).toBe('unknown');
    expect(fencedFacts.members.map((m) => m.state)).toEqual(['stopped', 'stopped']);
    const again = await east.fenceCluster('acid-a');
    log(`fenceCluster(A) again: ${JSON.stringify(again)}`);
    expect(again).toMatchObject({ changed: false, confirmed: true, method: 'already-stopped', finalLsn: fence.finalLsn });

    // 4. B replays up to the end of A's shutdown checkpoint record, and no further (there is nothing further).
    const ckpt = await walRecordAt(aLeader.dataDir, fence.finalLsn!);
    log(`A's last record: ${ckpt.line}; pg_waldump finds no record at ${ckpt.nextRecordLsn}`);
    expect(ckpt.nextRecordLsn).toBe(ckpt.endLsn);
    expect(ckpt.desc).toBe('CHECKPOINT_SHUTDOWN');
    t0 = Date.now();
    const replay = await waitFor('B replays the shutdown checkpoint', 60_000, async () => {
      const r = await sql<{ replay: string; receive: string }>(west, 'acid-b',
        'select pg_last_wal_replay_lsn()::text as replay, pg_last_wal_receive_lsn()::text as receive');
      return lsnAtOrAfter(r[0].replay, fence.finalLsn!) ? r[0] : null;
    });
    log(`B replay ${replay.replay} receive ${replay.receive} (${Date.now() - t0} ms after the fence returned); ` +
      `finalLsn ${fence.finalLsn}, checkpoint record ends ${ckpt.endLsn} (+${lsnDiff(replay.replay, fence.finalLsn!)} bytes)`);
    expect(replay.replay).toBe(ckpt.endLsn);

    // 5. Promote B.
    const bBefore = await patroniNode(west, 'acid-b');
    t0 = Date.now();
    const promote = await west.removeStandbyConfig('acid-b');
    const promoteMs = Date.now() - t0;
    await sql(west, 'acid-b', "insert into marker values ('promoted')");
    const firstWriteMs = Date.now() - t0;
    const bAfter = await patroniNode(west, 'acid-b');
    log(`removeStandbyConfig(B): ${promoteMs} ms to /primary 200, first write ${firstWriteMs} ms; timeline ${bBefore.timeline} -> ${bAfter.timeline}`);
    expect(promote.changed).toBe(true);
    expect(promote.promotePath).toMatch(expectedPromotePath());
    expect(PRIMARY_NODE_ROLES).toContain(bAfter.role);
    expect(bAfter.timeline).toBe((bBefore.timeline ?? 0) + 1);
    const history = (await sql<{ h: string }>(west, 'acid-b', `select pg_read_file('pg_wal/0000000${bAfter.timeline}.history') as h`))[0].h;
    const switchpoint = history.trim().split('\n').pop()!.split('\t')[1];
    log(`B history: ${JSON.stringify(history)}`);
    expect(switchpoint).toBe(ckpt.endLsn);
    expect((await west.removeStandbyConfig('acid-b')).changed).toBe(false);

    // 6. Demote A into a standby of B (streaming from B's leader, B's own archive as fallback).
    const bFacts = (await west.describeCluster('acid-b'))!;
    const demoteReq = { sourceRef: 'west/acid-b', fromHost: bFacts.streamingEndpoint, fromArchive: { archive: bFacts.archive } };
    const demoteStart = new Date();
    t0 = Date.now();
    const demote = await east.demoteToStandby('acid-a', demoteReq);
    const demoteMs = Date.now() - t0;
    const aNode = await patroniNode(east, 'acid-a');
    log(`demoteToStandby(A): ${demoteMs} ms; A leader ${aNode.name} ${aNode.role} timeline ${aNode.timeline}`);
    expect(demote.changed).toBe(true);
    expect(aNode.role).toBe('standby_leader');
    const aAfter = (await east.describeCluster('acid-a'))!;
    expect(aAfter.standbySource).toMatchObject({ sourceRef: 'west/acid-b', host: '127.0.0.1', port: bFacts.streamingEndpoint.port, walPrefix: bFacts.archive.walPrefix });
    const dcs = (await (await fetch(`${east.region.patroniUrl('acid-a')}/config`)).json()) as { standby_cluster?: Record<string, unknown> };
    expect(String(dcs.standby_cluster?.restore_command)).toContain('/walg/restore.sh');
    expect(readFileSync(join(east.cfg.dataDir, 'clusters', 'acid-a', 'walg', 'standby.env'), 'utf8')).toContain(bFacts.archive.walPrefix);
    const rewinds = a.cluster.members.flatMap((m) => patroniLogSince(east.region.memberPaths('acid-a', m.name).logFile, demoteStart))
      .filter((l) => /pg_rewind|reinitializ|timeline=|primary_timeline|history/i.test(l));
    log(`A's Patroni log lines on timelines/rewind since the demotion:\n${rewinds.join('\n')}`);
    expect(rewinds.filter((l) => /running pg_rewind|reinitializing/i.test(l))).toEqual([]);
    await sql(west, 'acid-b', "insert into marker values ('after-demote')");
    const seenMs = await waitForMarker(east, 'acid-a', 'after-demote', 30_000);
    log(`row written on B after the demotion visible on A after ${seenMs} ms`);
    expect((await east.demoteToStandby('acid-a', demoteReq)).changed).toBe(false);
    // Pointing a running cluster elsewhere, or demoting a running primary, is refused: fence first.
    await expect(east.demoteToStandby('acid-a', { ...demoteReq, sourceRef: 'west/acid-x' })).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(west.demoteToStandby('acid-b', { sourceRef: 'east/acid-a', fromHost: aFacts.streamingEndpoint }))
      .rejects.toBeInstanceOf(PreconditionFailedError);
    const aView = await east.region.waitClusterReady('acid-a', { timeoutMs: 120_000 });
    expect(aView.members.map((m) => m.role).sort()).toEqual(['replica', 'standby_leader']);

    // 7. Every acknowledged id is on B (and on A, which now replays B).
    const onB = new Set((await sql<{ id: number }>(west, 'acid-b', 'select id from writes')).map((r) => r.id));
    const onA = new Set((await sql<{ id: number }>(east, 'acid-a', 'select id from writes')).map((r) => r.id));
    const lost = writer.acked.filter((id) => !onB.has(id));
    const extra = [...onB].filter((id) => !writer.acked.includes(id));
    log(`ids: ${writer.acked.length} acknowledged, ${onB.size} on B, ${onA.size} on A, lost ${lost.length}, on B but not acknowledged ${JSON.stringify(extra)}`);
    expect(lost).toEqual([]);
    // The one insert in flight when the fence hit may have committed without its acknowledgement arriving.
    expect(extra.every((id) => id === writer.failed[0])).toBe(true);
    expect([...onA].sort()).toEqual([...onB].sort());
  });
});

describe('fence and unfence', () => {
  test('a fenced cluster comes back as it was; a second unfence changes nothing', async () => {
    await east.region.createCluster({ name: 'acid-c', pgVersion: 15, archive: false });
    await sql(east, 'acid-c', 'create table marker(note text primary key)');
    await sql(east, 'acid-c', "insert into marker values ('before-fence')");
    const before = await patroniNode(east, 'acid-c');
    let t0 = Date.now();
    const fence = await east.fenceCluster('acid-c');
    log(`fenceCluster(C): ${Date.now() - t0} ms: ${JSON.stringify(fence)}`);
    expect(fence).toMatchObject({ changed: true, confirmed: true, cleanShutdown: true });
    t0 = Date.now();
    expect((await east.unfenceCluster('acid-c')).changed).toBe(true);
    const after = await patroniNode(east, 'acid-c');
    log(`unfenceCluster(C): ${Date.now() - t0} ms; leader ${before.name} tl ${before.timeline} -> ${after.name} tl ${after.timeline}`);
    expect(after).toMatchObject({ name: before.name, role: expect.stringMatching(/^(master|primary)$/), timeline: before.timeline });
    await sql(east, 'acid-c', "insert into marker values ('after-unfence')");
    expect((await sql<{ n: number }>(east, 'acid-c', 'select count(*)::int as n from marker'))[0].n).toBe(2);
    const view = await east.region.waitClusterReady('acid-c');
    expect(view.members.map((m) => m.role).sort()).toEqual(['leader', 'replica']);
    expect((await east.unfenceCluster('acid-c')).changed).toBe(false);
  });

  test('Patroni killed with -9, Postgres still running: still fenced and confirmed', async () => {
    const info = east.region.getCluster('acid-c')!;
    const before = await patroniNode(east, 'acid-c');
    for (const m of info.members) {
      const pidFile = east.region.memberPaths('acid-c', m.name).pidFile;
      process.kill((JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number }).pid, 'SIGKILL');
    }
    await waitFor('Patroni gone', 10_000, async () =>
      (info.members.every((m) => !isAlive(east.region.memberPaths('acid-c', m.name).pidFile)) ? true : null));
    // The postmasters were detached from Patroni: they still take writes.
    const cl = new Client(await east.region.pgConfig('acid-c', { member: before.name }));
    await cl.connect();
    await cl.query("insert into marker values ('patroni-dead')");
    await cl.end();
    for (const m of info.members) {
      const c = new Client(await east.region.pgConfig('acid-c', { member: m.name }));
      await c.connect();
      await c.end();
    }
    const t0 = Date.now();
    const fence = await east.fenceCluster('acid-c');
    log(`fenceCluster(C) with Patroni killed: ${Date.now() - t0} ms: ${JSON.stringify(fence)}`);
    expect(fence).toMatchObject({ changed: true, confirmed: true, cleanShutdown: true, method: 'paused-and-stopped' });
    expect(fence.detail).toMatch(/in etcd/);
    expect(fence.detail).toMatch(/fast-stopped on acid-c-1, acid-c-0/);
    expect(info.members.some((m) => existsSync(join(m.dataDir, 'postmaster.pid')))).toBe(false);
    await expect(east.removeStandbyConfig('acid-c')).rejects.toBeInstanceOf(SiteUnreachableError);
    const facts = (await east.describeCluster('acid-c'))!;
    expect(facts.members.map((m) => m.state)).toEqual(['unreachable', 'unreachable']);

    const t1 = Date.now();
    expect((await east.unfenceCluster('acid-c')).changed).toBe(true);
    const after = await patroniNode(east, 'acid-c');
    log(`unfenceCluster(C) after the kill: ${Date.now() - t1} ms; leader ${after.name} tl ${after.timeline}`);
    expect(after).toMatchObject({ name: before.name, role: expect.stringMatching(/^(master|primary)$/), timeline: before.timeline });
    expect((await sql<{ n: number }>(east, 'acid-c', "select count(*)::int as n from marker where note = 'patroni-dead'"))[0].n).toBe(1);
  });

  test('etcd down: Postgres and the Patroni processes are stopped, confirmed; unfence after etcd returns', async () => {
    const info = east.region.getCluster('acid-c')!;
    await east.region.waitClusterReady('acid-c');
    const before = await patroniNode(east, 'acid-c');
    await east.region.stopEtcd();
    try {
      const t0 = Date.now();
      const fence = await east.fenceCluster('acid-c');
      log(`fenceCluster(C) with etcd down: ${Date.now() - t0} ms: ${JSON.stringify(fence)}`);
      expect(fence).toMatchObject({ changed: true, confirmed: true, cleanShutdown: true, method: 'paused-and-stopped' });
      expect(fence.detail).toMatch(/pause not written \(etcd down\)/);
      expect(fence.finalLsn).toMatch(LSN);
      expect(info.members.some((m) => isAlive(east.region.memberPaths('acid-c', m.name).pidFile))).toBe(false);
    } finally {
      await east.region.startEtcd();
    }
    const t1 = Date.now();
    expect((await east.unfenceCluster('acid-c')).changed).toBe(true);
    const after = await patroniNode(east, 'acid-c');
    log(`unfenceCluster(C) after etcd returned: ${Date.now() - t1} ms; leader ${after.name} ${after.role} tl ${after.timeline}`);
    expect(after).toMatchObject({ name: before.name, role: expect.stringMatching(/^(master|primary)$/), timeline: before.timeline });
    expect((await sql<{ n: number }>(east, 'acid-c', "select count(*)::int as n from marker where note = 'patroni-dead'"))[0].n).toBe(1);
  });
});
