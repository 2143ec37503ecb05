// Backup retention of one cluster's own archive prefix: which full backups stay, which go. Bundle-safe: the
// runbook validates its input with it, the activity plans with it, drctl and tests read its result.
//
// The rules, in order:
// 1. "Newest" is WAL-G's own order for `delete`: timeline first, then start LSN. In the history of one prefix a higher
//    timeline always starts later, so this is also the order in time; and it is the order WAL-G compares with when
//    it deletes, so the backups kept are exactly the ones `delete before <oldest kept>` leaves.
// 2. The newest `keep` full backups stay.
// 3. The newest backup of the cluster's CURRENT timeline always stays: a prefix can hold a higher timeline the
//    cluster no longer follows (an abandoned promotion), whose backups are "newer" by rule 1 but restore another
//    history. Then keep is raised to reach that backup, and the plan says so.
// 4. Permanent backups (WAL-G `backup-mark`) are never deleted by WAL-G; they are listed as kept.
import { BadInputError } from './errors';
import { parseClusterRef } from './clusters';
import { parseLsn } from './lsn';

export interface RetentionInput {
  /** `<site>/<cluster>`: the cluster whose own archive prefix is pruned. */
  cluster: string;
  /** How many of the newest full backups to keep (>= 1). */
  keep: number;
  /** List what would be deleted; delete nothing. */
  dryRun?: boolean;
}

export interface RetainedBackup {
  name: string;
  timeline: number;
  startLsn: string;
  finishLsn: string;
  finishTime: string | null;
  permanent: boolean;
}

export interface RetentionPlan {
  keepAsked: number;
  /** keepAsked, or more when rule 3 needed more (see raisedBecause). */
  keepApplied: number;
  raisedBecause: string | null;
  currentTimeline: number;
  /** Newest first. */
  kept: RetainedBackup[];
  /** Newest first. */
  deleted: RetainedBackup[];
  /** The oldest backup kept: WAL-G deletes every backup and WAL segment before it (`delete before`). */
  deleteBefore: string | null;
}

export interface RetentionResult extends RetentionPlan {
  cluster: string;
  walPrefix: string;
  dryRun: boolean;
  /** true when backups were deleted by this call. */
  changed: boolean;
  /** What WAL-G itself listed for deletion (its dry run): backups and the number of WAL objects. */
  walg: { backups: string[]; walObjects: number } | null;
}

/** Checks the input before anything is read or changed; says what to fix. */
export function parseRetentionInput(input: unknown): Required<RetentionInput> {
  const i = (input ?? {}) as Record<string, unknown>;
  parseClusterRef(i.cluster);
  const keep = i.keep;
  if (typeof keep !== 'number' || !Number.isInteger(keep) || keep < 1) {
    throw new BadInputError(`keep must be a whole number of full backups >= 1 (got ${JSON.stringify(keep ?? null)}): retention never deletes every backup`);
  }
  if (i.dryRun !== undefined && typeof i.dryRun !== 'boolean') throw new BadInputError('dryRun must be true or false');
  return { cluster: i.cluster as string, keep, dryRun: i.dryRun === true };
}

const newerFirst = (a: RetainedBackup, b: RetainedBackup): number =>
  b.timeline - a.timeline || Number(parseLsn(b.startLsn) - parseLsn(a.startLsn)) || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);

/** The retention rules above, applied to the full backups of one prefix. */
export function planRetention(backups: RetainedBackup[], keep: number, currentTimeline: number): RetentionPlan {
  if (!Number.isInteger(keep) || keep < 1) throw new BadInputError(`keep must be a whole number >= 1, not ${keep}`);
  const ordered = [...backups].sort(newerFirst);
  let keepApplied = Math.min(keep, ordered.length);
  let raisedBecause: string | null = null;
  const newestOfCurrent = ordered.findIndex((b) => b.timeline === currentTimeline);
  if (newestOfCurrent >= keepApplied) {
    keepApplied = newestOfCurrent + 1;
    raisedBecause = `the newest ${keep} backup(s) are all on timeline(s) above the cluster's current timeline ${currentTimeline}; ` +
      `${ordered[newestOfCurrent].name}, the newest backup of timeline ${currentTimeline}, is never deleted, so ${keepApplied} are kept`;
  }
  const kept = ordered.slice(0, keepApplied);
  const rest = ordered.slice(keepApplied);
  return {
    keepAsked: keep, keepApplied, raisedBecause, currentTimeline,
    kept: [...kept, ...rest.filter((b) => b.permanent)].sort(newerFirst),
    deleted: rest.filter((b) => !b.permanent),
    deleteBefore: rest.some((b) => !b.permanent) ? kept[kept.length - 1].name : null,
  };
}
