// Faults for the DR-cycle demo and tests, on real parts: a partition that leaves the standby behind while the
// primary keeps writing (so the old primary diverges), and the loss of the WAL a pg_rewind would need.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { LocalSiteDriver } from '../../../activities/sites/local-driver';
import { walFileRange, walFilesOf } from '../../../activities/sites/local/former-primary';
import { readTimelineHistory } from '../../../activities/s3/timeline-history';
import { listKeys, s3Client } from '../../../activities/sites/local/s3-server';
import { parseS3Url } from '../../../activities/sites/local/walg-env';
import { parseLsn } from '../../../workflows/contracts/lsn';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Cuts a standby cluster off its source as a network partition would: its standby_cluster points at a port
 * nobody listens on and restores nothing from the archive. Resolves once no WAL receiver streams from `sourcePort`.
 */
export async function partitionStandby(standby: LocalSiteDriver, cluster: string, sourcePort: number, deadPort: number): Promise<void> {
  const r = await fetch(`${standby.region.patroniUrl(cluster)}/config`, {
    method: 'PATCH', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ standby_cluster: { host: '127.0.0.1', port: deadPort, restore_command: null } }),
  });
  if (r.status !== 200) throw new Error(`PATCH /config of ${cluster} answered ${r.status}: ${await r.text()}`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { rows } = await standby.withLeaderSql(cluster, (c) =>
      c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_wal_receiver WHERE sender_port = $1', [sourcePort]));
    if (rows[0].n === 0) return;
    await sleep(500);
  }
  throw new Error(`${cluster} still streams from port ${sourcePort} 60 s after the partition`);
}

/**
 * Rows only the (partitioned) primary gets, over `segments` WAL segments, each switched out so it is archived.
 * Ids are negative, so they never collide with a writer's. Returns the ids.
 */
export async function writeDivergentRows(primary: LocalSiteDriver, cluster: string, segments = 3, perSegment = 100): Promise<number[]> {
  const ids: number[] = [];
  for (let s = 0; s < segments; s++) {
    const first = -1_000_000 - s * perSegment;
    await primary.withLeaderSql(cluster, async (c) => {
      await c.query('INSERT INTO public.writes (id) SELECT g FROM generate_series($1::bigint - $2::bigint + 1, $1::bigint) g', [first, perSegment]);
      await c.query('SELECT pg_switch_wal()');
    });
    for (let i = 0; i < perSegment; i++) ids.push(first - i);
  }
  return ids;
}

/**
 * Where `promoted`'s `timeline` forked from the timeline the old side was on: the newest entry of the timeline
 * history file in its archive (a standby's own reported timeline can lag until its next restartpoint, the history
 * cannot).
 */
export async function lastForkOf(promoted: LocalSiteDriver, cluster: string, timeline: number): Promise<{ timeline: number; lsn: string }> {
  const facts = await promoted.describeCluster(cluster);
  if (!facts) throw new Error(`no cluster ${cluster}`);
  const history = await readTimelineHistory(facts.archive.s3, facts.archive.walPrefix, timeline);
  const last = history?.reduce((a, b) => (b.parentTimeline > a.parentTimeline ? b : a));
  if (!last) throw new Error(`${cluster}'s archive has no history of timeline ${timeline}`);
  return { timeline: last.parentTimeline, lsn: last.switchLsn };
}

/**
 * The WAL a rewind needs is gone, as if recycled: removes, from every member's pg_wal, the segment of `timeline`
 * holding `lsn` (the fork point: pg_rewind reads back from the last common checkpoint before it), and with
 * `andEarlier` every segment of that timeline before it too (the checkpoint may lie in an earlier one). Only on a
 * cluster whose Postgres is stopped. Returns the files removed.
 */
export function removeWalSegmentHolding(driver: LocalSiteDriver, cluster: string, timeline: number, lsn: string, opts: { andEarlier?: boolean } = {}): string[] {
  const info = driver.region.getCluster(cluster);
  if (!info) throw new Error(`no cluster ${cluster}`);
  const at = parseLsn(lsn);
  const removed: string[] = [];
  for (const m of info.members) {
    for (const f of walFilesOf(m.dataDir)) {
      const r = walFileRange(f);
      if (r && r.timeline === timeline && r.start <= at && (opts.andEarlier || at < r.end)) {
        rmSync(join(m.dataDir, 'pg_wal', f));
        removed.push(`${m.name}:${f}`);
      }
    }
  }
  return removed;
}

/**
 * The same WAL gone from the cluster's OWN archive prefix too: a demotion lets pg_rewind fetch the former primary's
 * recycled WAL from there (rewind-wal.ts), so WAL lost from pg_wal alone no longer makes a rewind impossible.
 * `files` are WAL file names (removeWalSegmentHolding's `member:file` entries are accepted). Returns the keys deleted.
 */
export async function removeArchivedWalSegments(driver: LocalSiteDriver, cluster: string, files: string[]): Promise<string[]> {
  const facts = await driver.describeCluster(cluster);
  if (!facts) throw new Error(`no cluster ${cluster}`);
  const { bucket, key } = parseS3Url(facts.archive.walPrefix);
  const names = [...new Set(files.map((f) => f.slice(f.lastIndexOf(':') + 1)))];
  const doomed: string[] = [];
  // Whatever the compression suffix: every object of that segment under wal_005/.
  for (const name of names) doomed.push(...await listKeys(facts.archive.s3, bucket, `${key}/wal_005/${name}`));
  const s3 = await s3Client(facts.archive.s3);
  try {
    for (const k of doomed) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
  } finally {
    s3.destroy();
  }
  return doomed;
}
