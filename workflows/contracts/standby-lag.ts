// standby-lag: how far each archive-fed standby is behind the newest WAL segment in its source's archive, in bytes
// and seconds, and whether that is over its threshold. Input, rows and the judgement are shared by the runbook,
// the activity and drctl. Bundle-safe.
import { BadInputError } from './errors';
import { parseClusterRef } from './clusters';
import { rejectUnknownFields } from './input-fields';

export interface LagThreshold {
  /** Largest acceptable lag in bytes of WAL. */
  maxBytes: number;
  /** Largest acceptable lag in seconds (the archive's newest segment vs the standby's last replayed commit). */
  maxSeconds: number;
}

export interface StandbyLagInput {
  /** Standbys to check, `<site>/<cluster>`; default: every standby of every site in the sites file. */
  clusters?: string[];
  /** The policy: defaults 64 MiB and 300 s; a standby's labels `dr-lag-max-bytes`/`dr-lag-max-seconds` override it. */
  threshold?: Partial<LagThreshold>;
  /** Page (the escalation path) for every standby over its threshold or not measurable. Default true. */
  page?: boolean;
}

export const STANDBY_LAG_DEFAULTS: LagThreshold = { maxBytes: 64 * 1024 * 1024, maxSeconds: 300 };

/** Labels on a standby (the `postgresql` object's, a local cluster's) that override the policy for it. */
export const LAG_THRESHOLD_LABELS = { maxBytes: 'dr-lag-max-bytes', maxSeconds: 'dr-lag-max-seconds' } as const;

/** What the activity measures at the standby's site; the runbook judges it. */
export interface StandbyLagMeasurement {
  standby: string;
  /** The recorded source `<site>/<cluster>`, or null. */
  source: string | null;
  /** Why nothing could be measured (`not-a-standby`: promoted, or never one; `not-archive-fed`: streams only). */
  skip: 'not-a-standby' | 'not-archive-fed' | null;
  /** Why the lag could not be measured (no standby leader, an empty archive), or null. */
  problem: string | null;
  streams: boolean;
  labels: Record<string, string>;
  replayedLsn: string | null;
  lastReplayedCommitAt: string | null;
  /** pg_get_wal_replay_pause_state(): `not paused`, `pause requested`, `paused`. */
  replayPauseState: string | null;
  /** The newest WAL segment in the source's archive, where its data ends and when it landed. */
  archivedSegment: string | null;
  archiveEndLsn: string | null;
  archivedAt: string | null;
  bytes: number | null;
  seconds: number | null;
  /** The standby's clock when it was read. */
  measuredAt: string | null;
}

export type StandbyLagStatus = 'ok' | 'over' | 'unknown' | 'not-a-standby' | 'not-archive-fed';

export interface StandbyLagRow extends StandbyLagMeasurement {
  status: StandbyLagStatus;
  threshold: LagThreshold & { from: 'policy' | 'labels' };
  /** One sentence: the numbers, or why there are none. */
  reason: string;
  paged: boolean;
}

export interface StandbyLagResult {
  checked: number;
  over: number;
  unknown: number;
  rows: StandbyLagRow[];
  /** Standbys a page went out for. */
  paged: string[];
}

export interface StandbyLagPlan {
  clusters: string[] | null;
  threshold: LagThreshold;
  page: boolean;
}

export function parseStandbyLagInput(input: StandbyLagInput | undefined): StandbyLagPlan {
  const i = input ?? {};
  if (typeof i !== 'object' || Array.isArray(i)) throw new BadInputError('input must be a JSON object, e.g. {"clusters": ["us/acid-demo"]}');
  rejectUnknownFields<StandbyLagInput>(i, { clusters: true, threshold: true, page: true });
  let clusters: string[] | null = null;
  if (i.clusters !== undefined) {
    if (!Array.isArray(i.clusters)) throw new BadInputError('clusters must be a list of "<site>/<cluster>"');
    clusters = [...new Set(i.clusters.map((c) => {
      parseClusterRef(c, 'clusters[]');
      return c;
    }))].sort();
  }
  const t = i.threshold ?? {};
  if (typeof t !== 'object' || Array.isArray(t)) throw new BadInputError('threshold must be {"maxBytes": <n>, "maxSeconds": <n>}');
  rejectUnknownFields<LagThreshold>(t, { maxBytes: true, maxSeconds: true }, 'threshold');
  for (const [k, v] of Object.entries(t)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new BadInputError(`threshold.${k} must be a number >= 0`);
  }
  if (i.page !== undefined && typeof i.page !== 'boolean') throw new BadInputError('page must be true or false');
  return { clusters, threshold: { ...STANDBY_LAG_DEFAULTS, ...t }, page: i.page ?? true };
}

/** The policy, overridden per standby by its labels (a label that is not a number >= 0 is ignored, and said so). */
export function thresholdFor(labels: Record<string, string>, policy: LagThreshold): { threshold: LagThreshold & { from: 'policy' | 'labels' }; ignored: string[] } {
  const out: LagThreshold = { ...policy };
  const ignored: string[] = [];
  let from: 'policy' | 'labels' = 'policy';
  for (const key of ['maxBytes', 'maxSeconds'] as const) {
    const raw = labels[LAG_THRESHOLD_LABELS[key]];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < 0) {
      ignored.push(`${LAG_THRESHOLD_LABELS[key]}=${raw}`);
      continue;
    }
    out[key] = n;
    from = 'labels';
  }
  return { threshold: { ...out, from }, ignored };
}

/** The row of one measurement: within, over, or not measurable. */
export function judgeStandbyLag(m: StandbyLagMeasurement, policy: LagThreshold): StandbyLagRow {
  const { threshold, ignored } = thresholdFor(m.labels, policy);
  const note = ignored.length ? ` (ignored labels: ${ignored.join(', ')})` : '';
  const row = (status: StandbyLagStatus, reason: string): StandbyLagRow => ({ ...m, status, threshold, reason: reason + note, paged: false });
  if (m.skip === 'not-a-standby') return row('not-a-standby', m.problem ?? `${m.standby} is not a standby`);
  if (m.skip === 'not-archive-fed') return row('not-archive-fed', `${m.standby} streams from ${m.source ?? 'its source'} and replays no archive`);
  if (m.problem || m.bytes === null) return row('unknown', m.problem ?? `the lag of ${m.standby} could not be measured`);
  const over = m.bytes > threshold.maxBytes || (m.seconds !== null && m.seconds > threshold.maxSeconds);
  const numbers = `${m.standby} has replayed to ${m.replayedLsn}, ${m.bytes} bytes and ${m.seconds ?? '?'} s behind ` +
    `${m.archivedSegment} (ends ${m.archiveEndLsn}, archived ${m.archivedAt ?? '?'}) of ${m.source}'s archive` +
    `${m.replayPauseState && m.replayPauseState !== 'not paused' ? `; replay is ${m.replayPauseState}` : ''}`;
  return over
    ? row('over', `${numbers}: over its threshold of ${threshold.maxBytes} bytes / ${threshold.maxSeconds} s (${threshold.from})`)
    : row('ok', `${numbers}: within ${threshold.maxBytes} bytes / ${threshold.maxSeconds} s (${threshold.from})`);
}

/** `standby-lag/all`, or `standby-lag/<site>/<cluster>[,<site>/<cluster>...]` for the standbys named. */
export function standbyLagWorkflowId(clusters: string[] | null | undefined): string {
  return `standby-lag/${clusters && clusters.length ? [...new Set(clusters)].sort().join(',') : 'all'}`;
}
