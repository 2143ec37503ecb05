// WAL-G's own archive check (`wal-g wal-verify integrity timeline`), run against one prefix from one backup.
//
// What "integrity" means here, with two sites: a cluster's history is spread over prefixes (timeline 1 in eu's,
// timeline 2 in us's after a promotion, timeline 3 back in eu's after a switchback), so "every segment since the
// earliest backup in this prefix" (WAL-G's default) reports the other site's timelines as MISSING_LOST although
// nothing is lost. The question a restore asks is narrower and is the one checked: from THIS backup, is every WAL
// segment up to THIS LSN on THIS timeline in the same prefix? That is exactly what a restore of the backup to now
// would fetch, so a gap here is a restore that would stop short.
import type { ActivityDeps } from '../deps';
import { siteConfig } from '../deps';
import { walgBin } from '../sites/local/tools';
import { runCommand, walgEnv } from '../sites/local/walg-env';
import type { ArchiveCheck, ArchiveSegmentRange } from '../../workflows/contracts/archive-check';
import { BadInputError, SiteUnreachableError } from '../../workflows/contracts/errors';
import { formatLsn, parseLsn, WAL_SEGMENT_BYTES } from '../../workflows/contracts/lsn';
import { lastArchivedWal } from '../s3/backup-catalogue';
import type { S3ArchiveConfig } from '../sites/sites-file';

export interface VerifyArchiveInput {
  /** The site whose sites-file S3 settings reach the prefix (it may be down: only S3 is read). */
  archiveSite: string;
  walPrefix: string;
  /** The backup a restore would start from (its name, `base_…`). */
  backupName: string;
  /** Up to where the WAL must be there, on which timeline (usually the cluster's current LSN and timeline). */
  timeline: number;
  lsn: string;
}

interface WalVerifyJson {
  integrity?: { status?: string; details?: Array<{ timeline_id?: number; start_segment?: string; end_segment?: string; segments_count?: number; status?: string }> };
  timeline?: { status?: string; details?: { current_timeline_id?: number; highest_storage_timeline_id?: number } };
}

const STATUSES = ['OK', 'WARNING', 'FAILURE'] as const;
const asStatus = (s: string | undefined): ArchiveCheck['status'] => (STATUSES as readonly string[]).includes(s ?? '') ? (s as ArchiveCheck['status']) : 'FAILURE';

/** Reads wal-verify's JSON answer; anything it cannot read is a FAILURE that says so, never an OK. */
export function readWalVerify(stdout: string, input: Pick<VerifyArchiveInput, 'walPrefix' | 'backupName' | 'timeline' | 'lsn'>): ArchiveCheck {
  const line = stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{')).pop();
  let parsed: WalVerifyJson | null = null;
  try {
    parsed = line ? (JSON.parse(line) as WalVerifyJson) : null;
  } catch {
    parsed = null;
  }
  const base = { walPrefix: input.walPrefix, fromBackup: input.backupName, timeline: input.timeline, upToLsn: input.lsn };
  if (!parsed?.integrity) return { ...base, status: 'FAILURE', ranges: [], gaps: [], detail: `wal-g wal-verify gave no JSON answer: ${stdout.slice(-200) || '(no output)'}` };
  const ranges: ArchiveSegmentRange[] = (parsed.integrity.details ?? []).map((d) => ({
    timeline: d.timeline_id ?? 0, start: d.start_segment ?? '', end: d.end_segment ?? '', count: d.segments_count ?? 0, status: d.status ?? 'UNKNOWN',
  }));
  const gaps = ranges.filter((r) => r.status !== 'FOUND');
  const integrity = asStatus(parsed.integrity.status);
  const timelineOk = asStatus(parsed.timeline?.status);
  const status = integrity === 'FAILURE' || timelineOk === 'FAILURE' ? 'FAILURE' : integrity === 'WARNING' || timelineOk === 'WARNING' ? 'WARNING' : 'OK';
  const found = ranges.filter((r) => r.status === 'FOUND').reduce((n, r) => n + r.count, 0);
  const detail = status === 'OK'
    ? `${found} WAL segment(s) from ${input.backupName} to ${input.lsn} (timeline ${input.timeline}) all in ${input.walPrefix}`
    : `${input.walPrefix} from ${input.backupName} to ${input.lsn}: ${gaps.map((g) => `${g.status} ${g.start}..${g.end} (${g.count})`).join(', ') || 'no gap listed'}` +
      `${timelineOk === 'OK' ? '' : `; timeline check ${parsed.timeline?.status ?? 'missing'} (highest in storage ${parsed.timeline?.details?.highest_storage_timeline_id ?? '?'})`}`;
  return { ...base, status, ranges, gaps, detail };
}

/**
 * How far the check reaches: through the newest segment of that timeline already in the prefix, or the caller's
 * LSN when that is earlier (the WAL after the newest segment is the normal archiving lag, which force-backup and
 * standby-lag watch). `lsn` is what wal-verify is given: it checks the segments before the one holding lsn - 1.
 */
async function reach(s3: S3ArchiveConfig, input: VerifyArchiveInput): Promise<{ lsn: string; upTo: string }> {
  const newest = await lastArchivedWal(s3, input.walPrefix);
  const asked = parseLsn(input.lsn);
  if (!newest || newest.timeline !== input.timeline || parseLsn(newest.endLsn) > asked) {
    return { lsn: input.lsn, upTo: formatLsn(asked - (asked % WAL_SEGMENT_BYTES)) };
  }
  return { lsn: formatLsn(parseLsn(newest.endLsn) + WAL_SEGMENT_BYTES), upTo: newest.endLsn };
}

/** Read-only: runs wal-verify against the prefix with the archive site's credentials; a gap is a result, not an error. */
export function createVerifyArchive(deps: ActivityDeps) {
  return async function walgVerifyArchive(input: VerifyArchiveInput): Promise<ArchiveCheck> {
    if (!/^base_[0-9A-F]{24}/.test(input.backupName ?? '')) throw new BadInputError(`backupName "${input.backupName}" is not a WAL-G backup name (base_<24 hex digits>)`);
    if (!Number.isInteger(input.timeline) || input.timeline < 1) throw new BadInputError(`timeline ${input.timeline} is not a positive integer`);
    parseLsn(input.lsn);
    const s3 = siteConfig(deps, input.archiveSite).s3;
    const { lsn, upTo } = await reach(s3, input);
    // WAL-G calls a gap among the newest WALG_UPLOAD_CONCURRENCY segments "probably still uploading" (a WARNING).
    // Checked only up to the newest segment already archived, nothing can still be on its way: a gap is lost.
    const env = { ...(await walgEnv(s3, input.walPrefix)), WALG_UPLOAD_CONCURRENCY: '1', WALG_INTEGRITY_MAX_DELAYED_WALS: '0' };
    const args = ['wal-verify', 'integrity', 'timeline', '--json', '--timeline', String(input.timeline), '--lsn', lsn, '--backup-name', input.backupName];
    const r = await runCommand(walgBin(), args, env, { timeoutMs: 120_000 });
    if (r.exitCode !== 0) {
      throw new SiteUnreachableError(`wal-g wal-verify on ${input.walPrefix} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').pop()?.slice(0, 300) ?? ''}`, { walPrefix: input.walPrefix });
    }
    return readWalVerify(r.stdout, { ...input, lsn: upTo });
  };
}
