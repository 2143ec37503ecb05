// Whether a primary's WAL archiving is broken, judged from pg_stat_archiver read over time. Bundle-safe: the
// activities that watch the archiver and the runbooks that report on it share one definition.
//
// pg_stat_archiver says only when the LAST failure and the LAST success happened, so "broken" is a streak:
//  - failing: the newest failure is later than the newest success (a WAL file failed and nothing was archived since;
//    Postgres keeps retrying the same file, so nothing after it gets archived either);
//  - stalled: no failure is reported, but a completed segment waits and the newest archived file does not move
//    (an archive_command that hangs, e.g. S3 that accepts connections and never answers).
// Either is "broken" only once it has lasted `brokenAfterSeconds` with no successful archive in between: the
// archiver retries a failed file within about a minute, so an S3 blip that recovers resets the streak and is never
// fatal. The streak starts at the earliest time known to be in it: the first failure seen (a failure before the
// first look may be older still) or, stalled, the first look that saw the backlog.
import { formatLsn, lsnDiff, WAL_SEGMENT_BYTES } from './lsn';

/** pg_stat_archiver and the WAL position of one server, read at `at` (the server's clock). */
export interface ArchiverStatus {
  /** The member read (the leader, for a cluster). */
  member: string;
  /** archive_mode: on, always, off. */
  archiveMode: string;
  archivedCount: number;
  lastArchivedWal: string | null;
  lastArchivedAt: string | null;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedAt: string | null;
  /** The WAL file being written now (pg_walfile_name(pg_current_wal_lsn())); null in recovery. */
  currentWal: string | null;
  currentLsn: string;
  at: string;
}

/** What a watcher carries from one look to the next (in its heartbeat, so a retried attempt resumes the streak). */
export interface ArchiveWatch {
  /** Start of the current failing streak, or null when not failing. */
  failingSince: string | null;
  /** Start of the current stalled streak (first look that saw a backlog with no progress), or null. */
  stalledSince: string | null;
  /** lastArchivedWal at the previous look: a change means something was archived in between. */
  lastArchivedWal: string | null;
}

export type ArchivingState = 'ok' | 'failing' | 'stalled' | 'broken';

export interface ArchivingVerdict {
  state: ArchivingState;
  /** The WAL file archiving is stuck on (the failed one, or the next one after the last archived), null when ok. */
  wal: string | null;
  /** When the streak began (ISO), null when ok. */
  since: string | null;
  /** Completed segments written but not yet archived (current file - last archived - 1), null when not computable. */
  segmentsWaiting: number | null;
  /** Bytes of WAL between the end of the last archived segment and the current position, null when not computable. */
  lagBytes: number | null;
  /** One sentence: "archiving is broken: <wal> since <time> (...)" when broken, else what it looks like now. */
  message: string;
}

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})/;
const SEGMENTS_PER_LOG = 0x100000000n / WAL_SEGMENT_BYTES;

/** The segment number and timeline of a WAL file name (also `.partial` and `.backup` files); null for `.history`. */
export function walSegmentOf(name: string | null): { timeline: number; segno: bigint } | null {
  const m = name ? SEGMENT.exec(name) : null;
  if (!m) return null;
  return { timeline: parseInt(m[1], 16), segno: BigInt(`0x${m[2]}`) * SEGMENTS_PER_LOG + BigInt(`0x${m[3]}`) };
}

/** The WAL segment file name holding `lsn` on `timeline` (pg_walfile_name). */
export function walFileName(timeline: number, lsn: bigint): string {
  const segno = lsn / WAL_SEGMENT_BYTES;
  const hex = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(BigInt(timeline))}${hex(segno / SEGMENTS_PER_LOG)}${hex(segno % SEGMENTS_PER_LOG)}`;
}

function nextWal(name: string | null): string | null {
  const s = walSegmentOf(name);
  return s ? walFileName(s.timeline, (s.segno + 1n) * WAL_SEGMENT_BYTES) : null;
}

function backlog(s: ArchiverStatus): { segmentsWaiting: number | null; lagBytes: number | null } {
  const archived = walSegmentOf(s.lastArchivedWal);
  const current = walSegmentOf(s.currentWal);
  // Nothing archived since the statistics began (a crash resets them; a promoted standby's earlier segments were its
  // source's to archive) or a history file last: where the backlog starts is unknown, so no "stalled" from it.
  if (!current || !archived) return { segmentsWaiting: null, lagBytes: null };
  const archivedEnd = formatLsn((archived.segno + 1n) * WAL_SEGMENT_BYTES);
  return {
    segmentsWaiting: Math.max(0, Number(current.segno - archived.segno) - 1),
    lagBytes: Math.max(0, lsnDiff(s.currentLsn, archivedEnd)),
  };
}

const seconds = (from: string, to: string) => Math.max(0, Math.round((Date.parse(to) - Date.parse(from)) / 1000));

/**
 * One more look at the archiver: the streak carried on (or reset) and the verdict. `prev` is what the previous look
 * returned (null on the first look).
 */
export function judgeArchiving(
  prev: ArchiveWatch | null, s: ArchiverStatus, brokenAfterSeconds: number,
): { watch: ArchiveWatch; verdict: ArchivingVerdict } {
  const { segmentsWaiting, lagBytes } = backlog(s);
  const progressed = prev !== null && prev.lastArchivedWal !== s.lastArchivedWal;
  const facts = `${s.failedCount} failed attempts in all; last archived ${s.lastArchivedWal ?? 'none'}` +
    `${s.lastArchivedAt ? ` at ${s.lastArchivedAt}` : ''}; now writing ${s.currentWal ?? '?'}` +
    `${segmentsWaiting !== null ? `, ${segmentsWaiting} completed segments waiting` : ''}; on ${s.member}`;
  const verdict = (state: ArchivingState, wal: string | null, since: string | null, message: string): ArchivingVerdict =>
    ({ state, wal, since, segmentsWaiting, lagBytes, message });

  if (s.archiveMode === 'off') {
    return {
      watch: { failingSince: null, stalledSince: null, lastArchivedWal: s.lastArchivedWal },
      verdict: verdict('broken', s.currentWal, s.at, `archiving is broken: archive_mode is off on ${s.member}, nothing is archived (${facts})`),
    };
  }

  const failing = s.lastFailedAt !== null && (s.lastArchivedAt === null || Date.parse(s.lastFailedAt) > Date.parse(s.lastArchivedAt));
  if (failing) {
    const failingSince = !progressed && prev?.failingSince ? prev.failingSince : s.lastFailedAt!;
    const watch = { failingSince, stalledSince: null, lastArchivedWal: s.lastArchivedWal };
    const lasted = seconds(failingSince, s.at);
    if (lasted >= brokenAfterSeconds) {
      return {
        watch,
        verdict: verdict('broken', s.lastFailedWal, failingSince,
          `archiving is broken: ${s.lastFailedWal} since ${failingSince} (failing for ${lasted}s with no WAL archived since, ` +
          `last failure at ${s.lastFailedAt}; ${facts})`),
      };
    }
    return {
      watch,
      verdict: verdict('failing', s.lastFailedWal, failingSince,
        `archiving fails: ${s.lastFailedWal} since ${failingSince} (${lasted}s of the ${brokenAfterSeconds}s allowed to recover; ${facts})`),
    };
  }

  // No failure since the last success. A backlog that does not move is an archive_command that hangs.
  if (segmentsWaiting !== null && segmentsWaiting > 0 && !progressed) {
    const stalledSince = prev?.stalledSince ?? s.at;
    const watch = { failingSince: null, stalledSince, lastArchivedWal: s.lastArchivedWal };
    const lasted = seconds(stalledSince, s.at);
    const wal = nextWal(s.lastArchivedWal) ?? s.currentWal;
    if (prev !== null && lasted >= brokenAfterSeconds) {
      return {
        watch,
        verdict: verdict('broken', wal, stalledSince,
          `archiving is broken: ${wal} since ${stalledSince} (not archived for ${lasted}s and no failure reported: ` +
          `the archive_command hangs or cannot keep up; ${facts})`),
      };
    }
    return { watch, verdict: verdict('stalled', wal, stalledSince, `archiving has not moved since ${stalledSince} (${facts})`) };
  }
  return {
    watch: { failingSince: null, stalledSince: null, lastArchivedWal: s.lastArchivedWal },
    verdict: verdict('ok', null, null, `archiving works (${facts})`),
  };
}
