// How much a promotion would lose, from positions already read. Shared by promote (one cluster) and
// region-failover's assessment (hundreds): the same arithmetic, so the approval table and each promotion agree.
// Bundle-safe.
import { lsnDiff } from './lsn';
import type { LossEstimate } from './runbooks';

export interface LossPolicyLimits {
  maxBytes: number;
  maxSeconds: number;
}

export interface StandbyPosition {
  lsn: string;
  lastReplayedCommitAt: string | null;
}

export function withinLossPolicy(bytes: number | null, seconds: number | null, policy: LossPolicyLimits): boolean {
  return bytes !== null && bytes <= policy.maxBytes && (seconds === null || seconds <= policy.maxSeconds);
}

/** Seconds of commits between the standby's last replayed commit and `until`; 0 when nothing is missing. */
export function secondsBehind(standby: StandbyPosition, until: string | null, bytes: number): number | null {
  if (bytes === 0) return 0;
  if (!until || !standby.lastReplayedCommitAt) return null;
  return Math.max(0, Math.round((Date.parse(until) - Date.parse(standby.lastReplayedCommitAt)) / 1000));
}

/** The loss against the live source's current LSN (read at `at`). */
export function lossAgainstSource(standby: StandbyPosition, source: { lsn: string; at: string }, policy: LossPolicyLimits): LossEstimate {
  const bytes = Math.max(0, lsnDiff(source.lsn, standby.lsn));
  const seconds = secondsBehind(standby, source.at, bytes);
  return { sourceReachable: true, basis: 'source', sourceLsn: source.lsn, standbyReplayedLsn: standby.lsn, bytes, seconds, withinPolicy: withinLossPolicy(bytes, seconds, policy) };
}

/** The source is gone: the loss up to the end of its archive (plus whatever it never archived), or unknown. */
export function lossAgainstArchive(
  standby: StandbyPosition, archived: { endLsn: string; archivedAt: string | null } | null, policy: LossPolicyLimits,
): LossEstimate {
  const bytes = archived ? Math.max(0, lsnDiff(archived.endLsn, standby.lsn)) : null;
  const seconds = archived && bytes !== null ? secondsBehind(standby, archived.archivedAt, bytes) : null;
  return {
    sourceReachable: false, basis: archived ? 'archive' : 'none', sourceLsn: archived?.endLsn ?? null,
    standbyReplayedLsn: standby.lsn, bytes, seconds, withinPolicy: withinLossPolicy(bytes, seconds, policy),
  };
}
