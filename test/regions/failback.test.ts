// Failback after an UNPLANNED promotion on real Patroni 3.0.2 / Postgres 15 / etcd / versitygw, through the local
// SiteDriver: A (east) diverges from its standby B (west) and is lost (kill -9); B is promoted; A's divergent WAL
// is assessed against B's timeline history, quarantined in S3, then A is rewound into a standby of B; a cluster
// with another system identifier (rewind impossible) is reseeded from B's backup instead.
// Private layout: ports 30500-30799 and a temp folder, no global setup.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { s3Client } from '../../activities/sites/local/s3-server';
import { removeArchivedWalSegments } from '../../scripts/lib/sandbox/faults';
import { forkPoint, readTimelineHistory, type TimelineHistoryEntry } from '../../activities/s3/timeline-history';
import { walFileRange } from '../../activities/sites/local/former-primary';
import { lsnDiff, parseLsn } from '../../workflows/contracts/lsn';
import type { ClusterFacts, QuarantineResult } from '../../activities/sites/site-driver';
import { PreconditionFailedError } from '../../workflows/contracts/errors';
import { privatePort } from '../helpers/private-regions';
import {
  copySecrets, driverFor, killCluster, log, memberRows, patroniNode, sleep, sql, standbyOf, startRegions, stopRegions, tmp, waitFor,
} from './failback-helpers';

const east = driverFor('east', 30600);
const west = driverFor('west', 30700);
const DEAD_PORT = privatePort(30799);
const BULK_ROWS = Number(process.env.FAILBACK_BULK_ROWS ?? 100_000); // ~50 MB of table (about 540 bytes a row)

const count = async (d: typeof east, c: string, where: string) =>
  (await sql<{ n: number }>(d, c, `select count(*)::int as n from rows where ${where}`))[0].n;
const sysid = async (d: typeof east, c: string) =>
  (await sql<{ s: string }>(d, c, 'select system_identifier::text as s from pg_control_system()'))[0].s;

// Shared by the tests below, which run in order.
let bFacts: ClusterFacts;
let bBackup: string;
let history: TimelineHistoryEntry[];
let fork: string;
let divergentLsn: string;
let quarantine: QuarantineResult;
const timings: Record<string, number> = {};

beforeAll(() => startRegions([east, west]));

afterAll(async () => {
  log(`timings (ms): ${JSON.stringify(timings)}`);
  await stopRegions([east, west]);
  if (!process.env.KEEP_FAILBACK) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
});

describe('failback after an unplanned promotion', () => {
  test('A diverges and is lost, B is promoted; assessFormerPrimary and the fork point from B\'s archive', async () => {
    await east.region.createCluster({ name: 'acid-a', pgVersion: 15, archive: true });
    await sql(east, 'acid-a', 'create table rows(id bigserial primary key, note text not null, pad text)');
    // A's replica must stream (through its slot) before the bulk load: a replica that starts before Patroni made
    // its slot falls behind by more than wal_keep_size on a large load and is lost (seen with 540 MB).
    await waitFor('A\'s replica streams', 60_000, async () =>
      ((await sql<{ n: number }>(east, 'acid-a', "select count(*)::int as n from pg_stat_replication where state = 'streaming'"))[0].n === 1 ? true : null));
    let t0 = Date.now();
    await sql(east, 'acid-a', `insert into rows(note, pad) select 'bulk-' || g, repeat(md5(g::text), 15) from generate_series(1, ${BULK_ROWS}) g`);
    const size = (await sql<{ s: string }>(east, 'acid-a', "select pg_size_pretty(pg_total_relation_size('rows')) as s"))[0].s;
    log(`A: ${BULK_ROWS} bulk rows, table ${size}, written in ${Date.now() - t0} ms`);
    const aBackup = await east.region.backupPush('acid-a', { timeoutMs: 600_000 });
    expect(aBackup.exitCode).toBe(0);
    await copySecrets(east, 'acid-a', west, 'acid-b');
    const aFacts = (await east.describeCluster('acid-a'))!;
    t0 = Date.now();
    await west.createStandbyCluster({
      cluster: 'acid-b', sourceRef: 'east/acid-a', fromHost: aFacts.streamingEndpoint,
      fromArchive: { archive: aFacts.archive, backupName: aBackup.backupName! },
    });
    log(`B created as a standby of A in ${Date.now() - t0} ms`);
    await sql(east, 'acid-a', "insert into rows(note) select 'common-' || g from generate_series(1, 10) g; checkpoint");
    await waitFor('common rows on B', 60_000, async () => ((await count(west, 'acid-b', "note like 'common-%'")) === 10 ? true : null));

    // Cut B off from A (no host to stream from, no archive to restore from), as a network partition would.
    const r = await fetch(`${west.region.patroniUrl('acid-b')}/config`, {
      method: 'PATCH', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ standby_cluster: { host: '127.0.0.1', port: DEAD_PORT, restore_command: null } }),
    });
    expect(r.status).toBe(200);
    const aPort = aFacts.streamingEndpoint.port;
    await waitFor('B stops streaming from A', 60_000, async () => {
      const rx = await sql<{ n: number }>(west, 'acid-b', 'select count(*)::int as n from pg_stat_wal_receiver where sender_port = $1', [aPort]);
      return rx[0].n === 0 ? true : null;
    });
    const bReplay = (await sql<{ l: string }>(west, 'acid-b', 'select pg_last_wal_replay_lsn()::text as l'))[0].l;

    // A takes writes B never gets, pushes them out of its current segment, then the region is lost.
    await sql(east, 'acid-a', "insert into rows(note, pad) select 'divergent-' || g, repeat('x', 200) from generate_series(1, 1000) g");
    divergentLsn = (await sql<{ l: string }>(east, 'acid-a', 'select pg_current_wal_lsn()::text as l'))[0].l;
    await sql(east, 'acid-a', 'select pg_switch_wal()');
    await sleep(2_000);
    expect(await count(west, 'acid-b', "note like 'divergent-%'")).toBe(0);
    await killCluster(east, 'acid-a');
    log(`A killed -9 with divergent rows up to ${divergentLsn}; B replayed ${bReplay}`);

    // Promote B, write on it, archive its new timeline and prove a first backup.
    t0 = Date.now();
    expect((await west.removeStandbyConfig('acid-b')).changed).toBe(true);
    timings.promoteB = Date.now() - t0;
    await sql(west, 'acid-b', "insert into rows(note) select 'after-promotion-' || g from generate_series(1, 100) g");
    const bb = await west.region.backupPush('acid-b', { timeoutMs: 600_000 });
    expect(bb.exitCode).toBe(0);
    bBackup = bb.backupName!;
    bFacts = (await west.describeCluster('acid-b'))!;

    const h = await readTimelineHistory(bFacts.archive.s3, bFacts.archive.walPrefix, 2);
    expect(h).not.toBeNull();
    history = h!;
    fork = forkPoint(history, 1)!;
    log(`B's 00000002.history: ${JSON.stringify(history)}; fork point of timeline 1: ${fork}`);
    expect(fork).toBe(bReplay);
    expect(forkPoint(history, 7)).toBeNull();
    expect(await readTimelineHistory(bFacts.archive.s3, bFacts.archive.walPrefix, 9)).toBeNull();
    expect(await readTimelineHistory(bFacts.archive.s3, bFacts.archive.walPrefix, 1)).toEqual([]);

    t0 = Date.now();
    const aa = await east.assessFormerPrimary('acid-a');
    log(`assessFormerPrimary(A) in ${Date.now() - t0} ms: ${JSON.stringify({ ...aa, walFiles: `${aa.walFiles.length} files` })}`);
    expect(aa).toMatchObject({ running: false, timeline: 1, walLogHints: true, dataChecksums: true, clusterState: 'in production', lastLsnSource: 'pg_waldump' });
    expect(aa.systemIdentifier).toBe(await sysid(west, 'acid-b'));
    expect(parseLsn(aa.lastLsn!)).toBeGreaterThan(parseLsn(fork));
    expect(parseLsn(aa.lastLsn!)).toBeGreaterThanOrEqual(parseLsn(divergentLsn));
    log(`A's WAL ends ${lsnDiff(aa.lastLsn!, fork)} bytes after the fork point; its last checkpoint ${aa.checkpointLsn} is ` +
      `${lsnDiff(aa.checkpointLsn!, fork)} bytes from it`);
    expect(await east.assessFormerPrimary('acid-a')).toEqual(aa);
  });

  test('quarantineWal copies A\'s WAL from the fork point on (the divergent rows included), idempotently', async () => {
    const dest = { s3: east.cfg.s3, prefix: 'quarantine/east/acid-a/tl1-from-fork' };
    let t0 = Date.now();
    quarantine = await east.quarantineWal('acid-a', { fromLsn: fork, timeline: 1, destination: dest });
    timings.quarantine = Date.now() - t0;
    log(`quarantineWal(A) in ${timings.quarantine} ms: ${JSON.stringify(quarantine)}`);
    expect(quarantine.changed).toBe(true);
    expect(quarantine.divergentBytes).toBeGreaterThan(0);
    const names = quarantine.objects.map((o) => o.split('/').pop()!);
    const holding = names.find((n) => {
      const range = walFileRange(n);
      return !!range && range.start <= parseLsn(divergentLsn) && parseLsn(divergentLsn) <= range.end;
    });
    expect(holding).toBeDefined();
    const s3 = await s3Client(east.cfg.s3);
    try {
      const obj = await s3.send(new GetObjectCommand({ Bucket: 'dr-east', Key: `${dest.prefix}/${holding!}` }));
      const body = Buffer.from(await obj.Body!.transformToByteArray());
      const hits = body.toString('latin1').match(/divergent-\d+/g) ?? [];
      log(`segment ${holding} in quarantine: ${body.length} bytes, ${new Set(hits).size} distinct divergent-* row texts`);
      expect(hits.length).toBeGreaterThan(0);
      const manifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: 'dr-east', Key: `${dest.prefix}/quarantine.json` }))).Body!.transformToString());
      expect(manifest).toMatchObject({ cluster: 'acid-a', timeline: 1, fromLsn: fork, endOfWal: quarantine.endOfWal });
    } finally {
      s3.destroy();
    }
    t0 = Date.now();
    const again = await east.quarantineWal('acid-a', { fromLsn: fork, timeline: 1, destination: dest });
    log(`quarantineWal(A) again in ${Date.now() - t0} ms: changed ${again.changed}`);
    expect(again).toEqual({ ...quarantine, changed: false });
  });

  test('demoteToStandby rewinds diverged A into a standby of B: B\'s rows there, the divergent ones gone', async () => {
    const req = { sourceRef: 'west/acid-b', fromHost: bFacts.streamingEndpoint, fromArchive: { archive: bFacts.archive } };
    let t0 = Date.now();
    const demote = await east.demoteToStandby('acid-a', req);
    timings.rewind = Date.now() - t0;
    log(`demoteToStandby(A) in ${timings.rewind} ms: changed ${demote.changed} rewound ${demote.rewound}\n  ${demote.rewindLog.join('\n  ')}`);
    expect(demote).toMatchObject({ changed: true, rewound: true });
    const node = await patroniNode(east, 'acid-a');
    expect(node).toMatchObject({ role: 'standby_leader', state: 'running', timeline: 2 });
    await waitFor('after-promotion rows on A', 60_000, async () => ((await count(east, 'acid-a', "note like 'after-promotion-%'")) === 100 ? true : null));
    expect(await count(east, 'acid-a', "note like 'divergent-%'")).toBe(0);
    expect(await count(east, 'acid-a', "note like 'bulk-%'")).toBe(BULK_ROWS);
    await sql(west, 'acid-b', "insert into rows(note) values ('after-rewind')");
    await waitFor('after-rewind row on A', 60_000, async () => ((await count(east, 'acid-a', "note = 'after-rewind'")) === 1 ? true : null));
    const view = await east.region.waitClusterReady('acid-a', { timeoutMs: 180_000 });
    expect(view.members.map((m) => m.role).sort()).toEqual(['replica', 'standby_leader']);
    // Every member, not just the leader: the replica received the divergent WAL too before the region was lost.
    let seen = '';
    const perMember = await waitFor('every member of A on timeline 2 with the after-rewind row', 120_000, async () => {
      const rows = await memberRows(east, 'acid-a', 'after-rewind');
      if (JSON.stringify(rows) !== seen) log(`A members: ${(seen = JSON.stringify(rows))}`);
      return rows.every((r) => r.timeline === 2 && r.marker === 1 && r.divergent === 0) ? rows : null;
    });
    log(`A members after the rewind: ${JSON.stringify(perMember)}`);
    t0 = Date.now();
    expect(await east.demoteToStandby('acid-a', req)).toMatchObject({ changed: false, rewound: true });
    log(`demoteToStandby(A) again: changed false in ${Date.now() - t0} ms`);
    // Already a standby of B: a reseed has nothing to do either.
    const reseedReq = { sourceRef: 'west/acid-b', fromArchive: { archive: bFacts.archive, backupName: bBackup }, fromHost: bFacts.streamingEndpoint };
    expect(await east.reseedAsStandby('acid-a', reseedReq)).toMatchObject({ changed: false, previousWalPrefix: null });
    const aa = await east.assessFormerPrimary('acid-a');
    expect(aa).toMatchObject({ running: true, timeline: 2, lastLsnSource: 'pg_last_wal_receive_lsn' });
  });

  test('reseedAsStandby rebuilds a cluster that cannot be rewound (another system identifier) from B\'s backup', async () => {
    await east.region.createCluster({ name: 'acid-c', pgVersion: 15, archive: true });
    await sql(east, 'acid-c', "create table rows(id bigserial primary key, note text not null, pad text); insert into rows(note) values ('c-own')");
    const cc = await east.assessFormerPrimary('acid-c');
    const bSys = await sysid(west, 'acid-b');
    log(`assessFormerPrimary(C): running ${cc.running}, system id ${cc.systemIdentifier} vs B's ${bSys}, timeline ${cc.timeline}, lsn ${cc.lastLsn}`);
    expect(cc.running).toBe(true);
    expect(cc.systemIdentifier).not.toBe(bSys);
    // Credential parity is the runbook's job: C gets B's secrets before it is rebuilt.
    await copySecrets(west, 'acid-b', east, 'acid-c');
    // A running primary is refused at the moment of the reseed: it is fenced first, as the runbook's protect phase does.
    expect((await east.fenceCluster('acid-c')).confirmed).toBe(true);
    const req = { sourceRef: 'west/acid-b', fromArchive: { archive: bFacts.archive, backupName: bBackup }, fromHost: bFacts.streamingEndpoint };
    const ownPrefix = east.region.getCluster('acid-c')!.archivePrefix;
    const steps: string[] = [];
    let t0 = Date.now();
    const r = await east.reseedAsStandby('acid-c', req, (d) => steps.push(`${Date.now() - t0} ms ${d}`));
    timings.reseed = Date.now() - t0;
    log(`reseedAsStandby(C) in ${timings.reseed} ms: ${JSON.stringify(r)}\n  ${steps.join('\n  ')}`);
    expect(r.changed).toBe(true);
    // A new incarnation archives under a new prefix; the old one is left as it was.
    expect(r).toMatchObject({ previousWalPrefix: ownPrefix, walPrefix: east.region.getCluster('acid-c')!.archivePrefix });
    expect(r.walPrefix).not.toBe(ownPrefix);
    expect(await patroniNode(east, 'acid-c')).toMatchObject({ role: 'standby_leader', state: 'running', timeline: 2 });
    expect(await sysid(east, 'acid-c')).toBe(bSys);
    expect(await count(east, 'acid-c', "note = 'c-own'")).toBe(0);
    await waitFor('after-rewind row on C', 60_000, async () => ((await count(east, 'acid-c', "note = 'after-rewind'")) === 1 ? true : null));
    expect(await count(east, 'acid-c', "note like 'bulk-%'")).toBe(BULK_ROWS);
    expect(east.region.getCluster('acid-c')!.standby).toMatchObject({ sourceRef: 'west/acid-b' });
    await east.region.waitClusterReady('acid-c', { timeoutMs: 300_000 });
    t0 = Date.now();
    expect(await east.reseedAsStandby('acid-c', req)).toMatchObject({ changed: false, walPrefix: r.walPrefix });
    log(`reseedAsStandby(C) again: changed false in ${Date.now() - t0} ms; rewind ${timings.rewind} ms vs reseed ${timings.reseed} ms ` +
      `for ${BULK_ROWS} bulk rows; quarantine ${quarantine.bytes} bytes in ${quarantine.objects.length} objects, divergent WAL ${quarantine.divergentBytes} bytes`);
  });

  test('a former primary whose WAL for the rewind is gone: demoteToStandby reports the failed pg_rewind, reseed rebuilds it', async () => {
    // Pair D (east) -> E (west), small; D diverges over several segments and is fenced (clean stop, no crash).
    await east.region.createCluster({ name: 'acid-d', pgVersion: 15, archive: true });
    await sql(east, 'acid-d', "create table rows(id bigserial primary key, note text not null, pad text); insert into rows(note) select 'common-' || g from generate_series(1, 10) g");
    const { source: dFacts } = await standbyOf(east, 'acid-d', west, 'acid-e');
    await waitFor('common rows on E', 60_000, async () => ((await count(west, 'acid-e', "note like 'common-%'")) === 10 ? true : null));
    await fetch(`${west.region.patroniUrl('acid-e')}/config`, {
      method: 'PATCH', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ standby_cluster: { host: '127.0.0.1', port: DEAD_PORT, restore_command: null } }),
    });
    await waitFor('E stops streaming from D', 60_000, async () =>
      ((await sql<{ n: number }>(west, 'acid-e', 'select count(*)::int as n from pg_stat_wal_receiver where sender_port = $1', [dFacts.streamingEndpoint.port]))[0].n === 0 ? true : null));
    for (let i = 0; i < 3; i++) {
      await sql(east, 'acid-d', `insert into rows(note) select 'divergent-${i}-' || g from generate_series(1, 100) g`);
      await sql(east, 'acid-d', 'select pg_switch_wal()');
    }
    const fence = await east.fenceCluster('acid-d');
    expect(fence).toMatchObject({ confirmed: true, cleanShutdown: true });
    expect((await west.removeStandbyConfig('acid-e')).changed).toBe(true);
    await sql(west, 'acid-e', "insert into rows(note) values ('e-after-promotion')");
    const eBackup = await west.region.backupPush('acid-e', { timeoutMs: 300_000 });
    const eFacts = (await west.describeCluster('acid-e'))!;
    const eFork = forkPoint((await readTimelineHistory(eFacts.archive.s3, eFacts.archive.walPrefix, 2))!, 1)!;
    const dd = await east.assessFormerPrimary('acid-d');
    log(`D: fork ${eFork}; assess ${JSON.stringify({ ...dd, walFiles: dd.walFiles.join(' ') })}`);
    expect(dd).toMatchObject({ running: false, clusterState: 'shut down', timeline: 1 });
    expect(parseLsn(dd.lastLsn!)).toBeGreaterThan(parseLsn(eFork) + 2n * 16n * 1024n * 1024n);
    const q = await east.quarantineWal('acid-d', { fromLsn: eFork, timeline: 1, destination: { s3: east.cfg.s3, prefix: 'quarantine/east/acid-d/tl1' } });
    log(`quarantineWal(D): ${q.objects.length} objects, ${q.bytes} bytes, WAL ${eFork} .. ${q.endOfWal}`);
    expect(q.objects.length).toBeGreaterThanOrEqual(3);

    // The segment holding the fork point (and the last common checkpoint) is lost from D's pg_wal, as if recycled:
    // pg_rewind cannot find where the histories part.
    const leader = east.region.getCluster('acid-d')!.members.find((m) => m.name === dd.member)!;
    const forkSeg = dd.walFiles.find((f) => { const r = walFileRange(f); return !!r && r.start <= parseLsn(eFork) && parseLsn(eFork) < r.end; })!;
    rmSync(join(leader.dataDir, 'pg_wal', forkSeg));
    // Its replica keeps a copy of that segment and would rewind itself and win the standby leader race instead.
    const replica = east.region.getCluster('acid-d')!.members.find((m) => m.name !== dd.member)!;
    if (existsSync(join(replica.dataDir, 'pg_wal', forkSeg))) rmSync(join(replica.dataDir, 'pg_wal', forkSeg));
    // And from D's own archive, where pg_rewind would otherwise fetch it (failback-archive-wal.test.ts).
    expect(await removeArchivedWalSegments(east, 'acid-d', [forkSeg])).not.toEqual([]);
    const req = { sourceRef: 'west/acid-e', fromHost: eFacts.streamingEndpoint, fromArchive: { archive: eFacts.archive } };
    let t0 = Date.now();
    const err = await east.demoteToStandby('acid-d', req).catch((e: Error) => e);
    log(`demoteToStandby(D) after ${Date.now() - t0} ms: ${String(err instanceof Error ? err.message : JSON.stringify(err))}`);
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect((err as Error).message).toMatch(/pg_rewind .* failed/);
    // A retry finds the config written and the same failure in the log: refused again, not a 3-minute timeout.
    t0 = Date.now();
    await expect(east.demoteToStandby('acid-d', req)).rejects.toBeInstanceOf(PreconditionFailedError);
    log(`demoteToStandby(D) again refused after ${Date.now() - t0} ms`);

    // A worker crash right after the wipe (simulated by a progress callback that throws): the retry finishes it.
    const rreq = { ...req, fromArchive: { archive: eFacts.archive, backupName: eBackup.backupName! } };
    const crash = new Error('simulated worker crash after the wipe');
    await expect(east.reseedAsStandby('acid-d', rreq, (dt) => { if (dt.startsWith('bootstrap')) throw crash; })).rejects.toBe(crash);
    expect(east.region.getCluster('acid-d')).toBeNull();
    const steps: string[] = [];
    t0 = Date.now();
    const r = await east.reseedAsStandby('acid-d', rreq, (dt) => steps.push(`${Date.now() - t0} ms ${dt}`));
    log(`reseedAsStandby(D) in ${Date.now() - t0} ms: ${JSON.stringify(r)}\n  ${steps.join('\n  ')}`);
    expect(r.changed).toBe(true);
    expect(await patroniNode(east, 'acid-d')).toMatchObject({ role: 'standby_leader', state: 'running', timeline: 2 });
    await waitFor('e-after-promotion on D', 60_000, async () => ((await count(east, 'acid-d', "note = 'e-after-promotion'")) === 1 ? true : null));
    expect(await count(east, 'acid-d', "note like 'divergent-%'")).toBe(0);
    await east.region.waitClusterReady('acid-d', { timeoutMs: 300_000 });
    expect(await east.reseedAsStandby('acid-d', rreq)).toMatchObject({ changed: false, walPrefix: r.walPrefix });
  });
});
