// The leader WAL position Patroni keeps in the DCS (`status`, and `optime/leader` that Patroni before 2.1 wrote and
// later ones still read when `status` is missing), made to fit a cluster that becomes a standby of another.
// Patroni lets a leaderless member run for leader only when it is at most maximum_lag_on_failover behind that
// position ("My wal position exceeds maximum replication lag"). A former primary that wrote past the point where
// the new source's timeline forked off left a position no member reaches again until the source's WAL passes it,
// however well its rewind went. Lowered to the fork point, it still keeps out a member that has not even replayed
// up to what the cluster and the source have in common, and lets in every member that has been rewound.
import { forkPoint, readTimelineHistory, type TimelineHistoryEntry } from '../../s3/timeline-history';
import { formatLsn, parseLsn } from '../../../workflows/contracts/lsn';
import type { S3ArchiveConfig } from '../sites-file';
import type { LocalClusterInfo } from './cluster-files';
import { formerLeader, runAsOf, type RegionHandle } from './cluster-state';
import { etcdDeleteKey, etcdGet, etcdPutIfUnchanged } from './etcd';
import { readControlData } from './pg-control';

const positionKeys = (scope: string) => [`/service/${scope}/status`, `/service/${scope}/optime/leader`];

/** Where the newest timeline archived under `walPrefix` left `timeline`; null when the archive does not say. */
async function forkFromArchive(archive: { s3: S3ArchiveConfig; walPrefix: string }, timeline: number): Promise<bigint | null> {
  let newest: TimelineHistoryEntry[] | null = null;
  // A promoted cluster archives each timeline's history from its first promotion on: no gaps to skip.
  for (let tl = timeline + 1; ; tl++) {
    const history = await readTimelineHistory(archive.s3, archive.walPrefix, tl);
    if (!history) break;
    newest = history;
  }
  const fork = newest && forkPoint(newest, timeline);
  return fork ? parseLsn(fork) : null;
}

/** `status` is JSON with `optime` in bytes; the legacy key holds the bare number. */
function withOptime(value: string, optime: bigint): { before: bigint | null; next: string } {
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed === 'number') return { before: BigInt(Math.trunc(parsed)), next: optime.toString() };
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const status = parsed as Record<string, unknown>;
      const before = Number.isFinite(Number(status.optime)) ? BigInt(Math.trunc(Number(status.optime))) : null;
      return { before, next: JSON.stringify({ ...status, optime: Number(optime) }) };
    }
  } catch {
    // not JSON: Patroni reads it as no position at all
  }
  return { before: null, next: value };
}

export interface LeaderPositionChange {
  /** The fork point found in the source's archive, or null when it could not be read there. */
  fork: string | null;
  lowered: string[];
  removed: string[];
}

/**
 * Lowers the recorded leader position to the fork point of the source's newest archived timeline from this cluster's
 * timeline. When that cannot be known (no archive to read, no history there, or the source does not descend from
 * this timeline) the position is removed instead, as a standby cluster created from scratch has none: the leader
 * race then goes to whichever member Patroni finds furthest ahead, and the new standby leader writes its own.
 * Call it only with Postgres down on every member and no leader key: nobody writes it back before then.
 */
export async function fitLeaderPositionToSource(
  region: RegionHandle,
  info: LocalClusterInfo,
  fromArchive: { s3: S3ArchiveConfig; walPrefix: string } | undefined,
): Promise<LeaderPositionChange> {
  const etcdPort = region.cfg.etcd.clientPort;
  const runAs = runAsOf(region);
  const timeline = (await readControlData((await formerLeader(info, null, runAs)).dataDir, runAs))?.timeline ?? null;
  const fork = fromArchive && timeline ? await forkFromArchive(fromArchive, timeline) : null;
  const change: LeaderPositionChange = { fork: fork === null ? null : formatLsn(fork), lowered: [], removed: [] };
  for (const key of positionKeys(info.name)) {
    for (let attempt = 0; attempt < 5; attempt++) {
      const kv = await etcdGet(etcdPort, key);
      if (!kv) break;
      if (fork === null) {
        if (await etcdDeleteKey(etcdPort, key)) change.removed.push(key);
        break;
      }
      const { before, next } = withOptime(kv.value, fork);
      if (before === null || before <= fork) break;
      if (await etcdPutIfUnchanged(etcdPort, key, next, kv.modRevision)) {
        change.lowered.push(key);
        break;
      }
    }
  }
  return change;
}
