// Timeline history files in a WAL-G archive (`<walPrefix>/wal_005/<8 hex TLI>.history.lz4`): where each timeline
// of a promoted cluster forked from its parent. Failback needs the fork point of the old primary's timeline to
// know which of the old primary's WAL the new primary never got (everything at or after it).
//
// Read through `wal-g wal-fetch` rather than S3 + a JS lz4 decoder: it already decompresses whatever method the
// archive was written with (lz4 here, WAL-G's default; brotli, zstd, lzma too), so no new dependency and the same
// code path as restore_command.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3ArchiveConfig } from '../sites/sites-file';
import { walgBin } from '../sites/local/tools';
import { runCommand, walgEnv } from '../sites/local/walg-env';
import { BadInputError, SiteUnreachableError } from '../../workflows/contracts/errors';
import { formatLsn, parseLsn } from '../../workflows/contracts/lsn';

export interface TimelineHistoryEntry {
  /** The timeline that ended here. */
  parentTimeline: number;
  /** Where it ended: the first LSN that belongs to the child timeline and not to this one. */
  switchLsn: string;
  reason: string;
}

/** wal-fetch's exit code for "not in the archive" (WAL-G's EX_IOERR, used for nothing else). */
const WAL_FETCH_NOT_FOUND = 74;

export const historyFileName = (timeline: number): string => `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;

/** Postgres' history file format: `<parentTLI>\t<switchpoint LSN>\t<reason>` per line, `#` comments. */
export function parseTimelineHistory(text: string): TimelineHistoryEntry[] {
  const entries: TimelineHistoryEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})\s*(.*)$/.exec(line);
    if (!m) throw new BadInputError(`not a timeline history line: "${line.slice(0, 120)}"`);
    entries.push({ parentTimeline: Number(m[1]), switchLsn: formatLsn(parseLsn(m[2])), reason: m[3].trim() });
  }
  return entries;
}

/**
 * The LSN where `oldTimeline` ended in this history (its switchpoint), or null when the history does not descend
 * from it (then the old primary is not an ancestor of this timeline at all: rewind is impossible).
 */
export function forkPoint(history: TimelineHistoryEntry[], oldTimeline: number): string | null {
  return history.find((e) => e.parentTimeline === oldTimeline)?.switchLsn ?? null;
}

/**
 * The history of `timeline` as archived under `walPrefix`. Timeline 1 has none: []. Returns null when the archive
 * does not hold the file (yet: a promoted cluster archives it right after promotion). Throws SiteUnreachableError
 * for any other wal-fetch failure, so an S3 outage is never mistaken for "no history".
 */
export async function readTimelineHistory(
  s3: S3ArchiveConfig,
  walPrefix: string,
  timeline: number,
): Promise<TimelineHistoryEntry[] | null> {
  if (!Number.isInteger(timeline) || timeline < 1) throw new BadInputError(`timeline ${timeline} is not a positive integer`);
  if (timeline === 1) return [];
  const name = historyFileName(timeline);
  const dir = mkdtempSync(join(tmpdir(), 'tli-history-'));
  try {
    const dest = join(dir, name);
    // The env holds S3 keys: it goes to the child only, never into a message.
    const r = await runCommand(walgBin(), ['wal-fetch', name, dest], await walgEnv(s3, walPrefix), { timeoutMs: 60_000 });
    if (r.exitCode === WAL_FETCH_NOT_FOUND) return null;
    if (r.exitCode !== 0) {
      throw new SiteUnreachableError(
        `wal-fetch ${name} from ${walPrefix} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`,
        { walPrefix, timeline, exitCode: r.exitCode },
      );
    }
    return parseTimelineHistory(readFileSync(dest, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
