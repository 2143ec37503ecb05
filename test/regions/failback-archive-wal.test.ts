// Failback whose rewind needs WAL only the archives still hold, on real Patroni / Postgres 15 / etcd / versitygw and
// real WAL-G: both sides run with wal_keep_size = 0 and a small max_wal_size, and after the divergence each switches
// WAL and checkpoints until the segment holding the fork point is gone from every member's pg_wal. The former
// primary's own WAL from the last common checkpoint must then come from its own prefix (pg_rewind reads the TARGET's
// WAL), and what it replays afterwards from the promoted side's prefix. It must rewind, not fail into a reseed.
// Private layout: the failback helpers' ports and a temp folder, no global setup.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { walFileRange, walFilesOf } from '../../activities/sites/local/former-primary';
import { forkPoint, readTimelineHistory } from '../../activities/s3/timeline-history';
import { parseLsn } from '../../workflows/contracts/lsn';
import { privatePort } from '../helpers/private-regions';
import {
  driverFor, log, memberRows, patroniNode, sql, sqlOn, standbyOf, startRegions, stopRegions, tmp, waitFor,
} from './failback-helpers';

const east = driverFor('east', 30600);
const west = driverFor('west', 30700);
const DEAD_PORT = privatePort(30799);
type Driver = typeof east;

const count = async (d: Driver, c: string, where: string) =>
  (await sql<{ n: number }>(d, c, `select count(*)::int as n from rows where ${where}`))[0].n;

/** WAL recycled early: a small max_wal_size and Patroni's smallest wal_keep_size (it raises 0 to 128MB). */
async function recycleEagerly(d: Driver, cluster: string): Promise<void> {
  const r = await fetch(`${d.region.patroniUrl(cluster)}/config`, {
    method: 'PATCH', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ postgresql: { parameters: { wal_keep_size: 0, max_wal_size: '32MB', min_wal_size: '32MB' } } }),
  });
  expect(r.status).toBe(200);
  for (const m of d.region.getCluster(cluster)!.members) {
    await waitFor(`${cluster}/${m.name} runs with max_wal_size 32MB`, 60_000, async () =>
      ((await sqlOn<{ v: string }>(d, cluster, m.name, "select current_setting('max_wal_size') as v"))[0].v === '32MB' ? true : null));
  }
}

/** Writes, switches WAL, waits until archived and checkpoints on every member: 3 times at least, and until no member holds `segment`. */
async function recycleUntilGone(d: Driver, cluster: string, segment: string, note: string): Promise<number> {
  const members = d.region.getCluster(cluster)!.members;
  const holders = () => members.filter((m) => walFilesOf(m.dataDir).some((f) => f.slice(8) === segment.slice(8))).map((m) => m.name);
  let rounds = 0;
  while (rounds < 3 || holders().length > 0) {
    if (++rounds > 40) throw new Error(`${cluster}: segment ${segment} still in pg_wal of ${holders().join(', ')} after ${rounds} rounds`);
    await sql(d, cluster, `insert into rows(note, pad) select '${note}-${rounds}-' || g, repeat('r', 200) from generate_series(1, 200) g`);
    const seg = (await sql<{ f: string }>(d, cluster, 'select pg_walfile_name(pg_current_wal_lsn()) as f'))[0].f;
    await sql(d, cluster, 'select pg_switch_wal()');
    await waitFor(`${cluster} archived ${seg}`, 60_000, async () => {
      const a = (await sql<{ w: string | null }>(d, cluster, 'select last_archived_wal as w from pg_stat_archiver'))[0].w;
      return a && a >= seg ? true : null;
    });
    for (const m of members) await sqlOn(d, cluster, m.name, 'checkpoint').catch(() => undefined);
  }
  return rounds;
}

/** The segment holding the last byte before `lsn` (a fork point may sit exactly on a segment boundary). */
const segmentBefore = (timeline: number, lsn: string) => {
  const pos = parseLsn(lsn) - 1n;
  const seg = pos / (16n * 1024n * 1024n);
  const hex = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(BigInt(timeline))}${hex(seg / 256n)}${hex(seg % 256n)}`;
};

beforeAll(() => startRegions([east, west]));

afterAll(async () => {
  await stopRegions([east, west]);
  if (!process.env.KEEP_FAILBACK) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
});

test('a failback whose WAL both sides recycled rewinds from the archives: the promoted side\'s rows kept, the divergent ones gone', async () => {
  await east.region.createCluster({ name: 'acid-f', pgVersion: 15, archive: true });
  await sql(east, 'acid-f', "create table rows(id bigserial primary key, note text not null, pad text); insert into rows(note) select 'common-' || g from generate_series(1, 10) g");
  await waitFor('F\'s replica streams', 60_000, async () =>
    ((await sql<{ n: number }>(east, 'acid-f', "select count(*)::int as n from pg_stat_replication where state = 'streaming'"))[0].n === 1 ? true : null));
  const { source: fFacts } = await standbyOf(east, 'acid-f', west, 'acid-g');
  await waitFor('common rows on G', 60_000, async () => ((await count(west, 'acid-g', "note like 'common-%'")) === 10 ? true : null));
  await recycleEagerly(east, 'acid-f');
  await recycleEagerly(west, 'acid-g');

  // A partition: G neither streams from F nor reads its archive any more.
  const cut = await fetch(`${west.region.patroniUrl('acid-g')}/config`, {
    method: 'PATCH', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ standby_cluster: { host: '127.0.0.1', port: DEAD_PORT, restore_command: null } }),
  });
  expect(cut.status).toBe(200);
  await waitFor('G stops streaming from F', 60_000, async () =>
    ((await sql<{ n: number }>(west, 'acid-g', 'select count(*)::int as n from pg_stat_wal_receiver where sender_port = $1', [fFacts.streamingEndpoint.port]))[0].n === 0 ? true : null));
  const gReplay = (await sql<{ l: string }>(west, 'acid-g', 'select pg_last_wal_replay_lsn()::text as l'))[0].l;
  const forkSegment = segmentBefore(1, gReplay);

  // F diverges over several segments and recycles the one G stopped in; then it is fenced.
  const fRounds = await recycleUntilGone(east, 'acid-f', forkSegment, 'divergent');
  const divergent = await count(east, 'acid-f', "note like 'divergent-%'");
  expect(divergent).toBeGreaterThan(0);
  expect((await east.fenceCluster('acid-f')).confirmed).toBe(true);
  log(`F: ${divergent} divergent rows over ${fRounds} switched segments; ${forkSegment} (G stopped at ${gReplay}) gone from every member of F`);

  // G is promoted, takes acknowledged writes and recycles the same segment on its side too.
  expect((await west.removeStandbyConfig('acid-g')).changed).toBe(true);
  const gFacts = (await west.describeCluster('acid-g'))!;
  const history = await waitFor('G\'s 00000002.history archived', 60_000, () => readTimelineHistory(gFacts.archive.s3, gFacts.archive.walPrefix, 2));
  const fork = forkPoint(history, 1)!;
  expect(fork).toBe(gReplay);
  const gRounds = await recycleUntilGone(west, 'acid-g', forkSegment, 'promoted');
  const acknowledged = await count(west, 'acid-g', "note like 'promoted-%'");
  for (const m of west.region.getCluster('acid-g')!.members) {
    // The old timeline's last segment stays as .partial, a name recovery never asks for. A fork exactly on a segment
    // boundary starts the new timeline's first segment there: it holds nothing from before the fork.
    const files = walFilesOf(m.dataDir).filter((f) => !walFileRange(f)!.partial && walFileRange(f)!.start < parseLsn(fork));
    expect(files).toEqual([]);
  }
  log(`G: promoted at ${fork}, ${acknowledged} acknowledged rows over ${gRounds} switched segments; nothing before the fork left in its pg_wal`);

  const req = { sourceRef: 'west/acid-g', fromHost: gFacts.streamingEndpoint, fromArchive: { archive: gFacts.archive } };
  const t0 = Date.now();
  const demote = await east.demoteToStandby('acid-f', req);
  log(`demoteToStandby(F) in ${Date.now() - t0} ms: ${JSON.stringify({ ...demote, rewindLog: undefined })}\n  ${demote.rewindLog.join('\n  ')}`);
  expect(demote).toMatchObject({ changed: true, rewound: true, targetWalFromArchive: { prefix: fFacts.archive.walPrefix, missing: [] } });
  // The segment the fork lies in came from F's own archive, and the rewind's restore_command is gone again.
  expect(demote.targetWalFromArchive!.fetched).toContain(forkSegment);
  for (const m of east.region.getCluster('acid-f')!.members) {
    expect(readFileSync(join(m.dataDir, 'postgresql.base.conf'), 'utf8')).not.toMatch(/rewind-restore/);
  }
  expect(await patroniNode(east, 'acid-f')).toMatchObject({ role: 'standby_leader', state: 'running', timeline: 2 });
  await sql(west, 'acid-g', "insert into rows(note) values ('after-rewind')");
  await east.region.waitClusterReady('acid-f', { timeoutMs: 180_000 });
  const perMember = await waitFor('every member of F on timeline 2 with the after-rewind row', 180_000, async () => {
    const rows = await memberRows(east, 'acid-f', 'after-rewind');
    return rows.every((r) => r.timeline === 2 && r.marker === 1 && r.divergent === 0) ? rows : null;
  });
  log(`F members after the rewind: ${JSON.stringify(perMember)}`);
  expect(await count(east, 'acid-f', "note like 'promoted-%'")).toBe(acknowledged);
  expect(await count(east, 'acid-f', "note like 'common-%'")).toBe(10);
  expect(await count(east, 'acid-f', "note like 'divergent-%'")).toBe(0);
});
