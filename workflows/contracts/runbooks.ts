// Inputs and results of the runbooks. These are the JSON shapes a person pastes into the Temporal UI's
// start-workflow form, so every field is plain JSON and documented in the README. Bundle-safe.

import type { ArchiveCheck } from './archive-check';
import type { ApproverIdentity } from './identity';
import type { RetentionResult } from './retention';

export type ReplicationMethod = 'archive' | 'stream' | 'both';

export interface ProvisionStandbyInput {
  /** The cluster to protect, `<site>/<cluster>`, e.g. "eu/acid-demo". */
  source: string;
  /** The standby to build, `<site>/<cluster>`, e.g. "us/acid-demo". */
  target: string;
  /** archive: replay WAL from the source's S3 archive; stream: from the source leader; both: stream with archive fallback. */
  method: ReplicationMethod;
  limits?: {
    /** How long to wait for the standby to replay up to the marker. Default 1800. */
    replayTimeoutSeconds?: number;
    /** How often the replay wait checks and heartbeats. Default 5. */
    pollIntervalSeconds?: number;
  };
}

export interface ProvisionStandbyResult {
  source: string;
  target: string;
  method: ReplicationMethod;
  /** true when the target already was a standby of this source and nothing was changed. */
  alreadyProvisioned: boolean;
  /** The base backup the standby was bootstrapped from (archive methods). */
  baseBackup?: string;
  markerId: string;
  /** LSN of the marker on the source, and the standby's replayed LSN when it became visible. */
  markerLsn: string;
  replayedLsn: string;
  /** Bytes the standby was behind the source's current LSN at the end (null if the source could not be read). */
  lagBytesAtEnd: number | null;
  /** The source's system identifier and timeline when the standby was built: what a promotion checks it descends from. */
  sourceLineage?: { systemIdentifier: string; timeline: number };
  /** WAL-G's check that the standby's base backup plus the source's WAL after it reach the source's position now. */
  archiveCheck?: ArchiveCheck | null;
  phaseDurationsMs: Record<string, number>;
}

export interface ForceBackupInput {
  /** The cluster to back up, `<site>/<cluster>`: the backup runs on its current leader. */
  cluster: string;
  /** A backup is proof only if it finished at or after this LSN; default: the leader's LSN when the runbook starts. */
  notBeforeLsn?: string;
  /**
   * Also prove the backup by restoring it: a scratch copy at the cluster's site replays the archive up to a marker
   * written after the backup, then the marker, a row count and amcheck on every btree index are checked. Default false.
   */
  verifyByRestore?: boolean;
  limits?: {
    /** How long the base backup may take, then its WAL to reach the archive (and, with verifyByRestore, its restore). Default 3600. */
    backupTimeoutSeconds?: number;
    /** Archiving that fails (or does not move) this long with nothing archived since is broken: the run fails. Default 300. */
    archiveBrokenAfterSeconds?: number;
    /** How often the archiver is looked at while the backup runs and its WAL is awaited. Default 10. */
    archivePollSeconds?: number;
  };
}

export interface ForceBackupResult {
  cluster: string;
  backupName: string;
  /** true when a backup at or after the requested LSN already existed and was reused. */
  reused: boolean;
  startLsn: string;
  finishLsn: string;
  timeline: number;
  /** The LSN the proof was measured against. */
  requiredLsn: string;
  compressedSize?: number;
  uncompressedSize?: number;
  durationMs: number;
  /** Where the proof was read: the stop sentinel's S3 key. */
  sentinelKey: string;
  /** The WAL file holding the finish LSN, found in the archive (new backups; absent on runs before this check). */
  archivedWal?: string;
  /** With verifyByRestore: what the restore of the backup showed. */
  restoreProof?: RestoreProofResult;
}

/** What restoring a backup in a scratch showed (force-backup with verifyByRestore). */
export interface RestoreProofResult {
  backupName: string;
  /** The last WAL location the scratch replayed before it was promoted. */
  restoredToLsn: string;
  markerFound: boolean;
  databasesChecked: number;
  /** btree indexes amcheck's bt_index_check passed on, over all databases. */
  indexesChecked: number;
  /** Row counts that matched the primary's at the marker (`schema.table` -> rows). */
  rowsCompared: Record<string, number>;
  durationsMs: { archiveWait: number; fetch: number; recovery: number; checks: number; total: number };
}

export type PromoteMode = 'planned' | 'unplanned';

export interface DataLossPolicy {
  /** Largest acceptable loss in bytes of WAL. Default 0. */
  maxBytes?: number;
  /** Largest acceptable loss in seconds of commits. Default 0. */
  maxSeconds?: number;
}

export interface PromoteInput {
  /**
   * Who starts the run, proven: the ID token of `drctl login` with the nonce "start:<workflowId>". Without it the
   * run is "unauthenticated", which the sites file's approvals policy may refuse; the requester cannot approve.
   */
  requesterIdToken?: string;
  /** The standby cluster to promote, `<site>/<cluster>`. */
  cluster: string;
  /** planned: the source is reachable and is switched over with no loss; unplanned: the source region is down or suspect. */
  mode: PromoteMode;
  /** The source it replays from, `<site>/<cluster>`; default: what provision-standby recorded on the standby. */
  source?: string;
  dataLossPolicy?: DataLossPolicy;
  /** How long a human has to decide. Default 3600. */
  approvalTimeoutSeconds?: number;
  /** Take and prove the first backup after promotion (force-backup). Default true. */
  takeBackup?: boolean;
  /** Prove that first backup by restoring it as well (force-backup's verifyByRestore). Default false. */
  verifyBackupByRestore?: boolean;
  /**
   * Refused (BadInputError) since the no-public-delegation patch: an approval typed into the input would let anyone
   * who may start a run approve their own promotion. Kept in the type only so that runs started before it replay.
   * A region-failover's promotions ask their parent for its approval instead (delegatedApprovalQuery).
   */
  preApproval?: ApprovalRecord;
  limits?: {
    /** How long a region's worker may take to pick up a task before the region counts as unreachable. Default 30. */
    regionTimeoutSeconds?: number;
    /** How long the planned switchover waits for the standby to replay the source's last LSN. Default 300. */
    catchUpTimeoutSeconds?: number;
  };
}

/** PENDING: a planned switchover asks first and fences after the approval, so writes stop only for the switch. */
export type FenceState = 'CONFIRMED' | 'UNCONFIRMED' | 'NOT_NEEDED' | 'PENDING';

export interface LossEstimate {
  sourceReachable: boolean;
  /** Where the source position came from: the live source, or the newest WAL segment in its archive. */
  basis: 'source' | 'archive' | 'none';
  sourceLsn: string | null;
  standbyReplayedLsn: string;
  bytes: number | null;
  seconds: number | null;
  withinPolicy: boolean;
}

export interface ApprovalRecord {
  decision: 'approved' | 'rejected';
  approver: string;
  ticket: string;
  comment?: string;
  at: string;
  acknowledgedDataLoss: boolean;
  acknowledgedUnconfirmedFence: boolean;
  /** delegated: given once for many runs by a parent runbook (region-failover), whose ID is in `delegatedBy`. */
  via: 'update' | 'signal' | 'delegated';
  delegatedBy?: string;
  /** region-failover: over-policy clusters the approver included by name. */
  included?: string[];
  /** Every approver of this decision as verified (two when it acknowledges data loss or an unconfirmed fence). */
  approvers?: ApproverIdentity[];
  /** The approvals policy rule that allowed it, and the policy's version (hash), for the audit. */
  rule?: string;
  policyVersion?: string;
  /** Only in the answer to a first approval: how many more different people must approve before the gate opens. */
  awaitingApprovers?: number;
}

export interface PromoteResult {
  cluster: string;
  source: string | null;
  mode: PromoteMode;
  alreadyPromoted: boolean;
  estimate: LossEstimate | null;
  fence: FenceState;
  approval: ApprovalRecord | null;
  timelineBefore: number | null;
  timelineAfter: number;
  /** Milliseconds from approval to the first accepted write on the promoted cluster. */
  rtoMs: number | null;
  /**
   * Planned: milliseconds from the start of the fence (the old primary takes no write after it) to the runbook's
   * marker write on the promoted cluster: an upper bound of the write outage clients saw (they may write a little
   * before the marker). Null when unplanned (the outage began with the loss).
   */
  writeDowntimeMs: number | null;
  /** Planned: how the old primary's final WAL reached the standby (streamed, or its last segment pushed to the archive). */
  finalWal?: 'streamed' | 'archived' | null;
  /** Bytes of WAL the source had that the promoted cluster does not (measured when the source was reachable). */
  measuredRpoBytes: number | null;
  backup: ForceBackupResult | null;
  /** WAL-G's check that the first backup restores to now from the promoted cluster's prefix (null: no backup taken, or a run from before the check). */
  archiveCheck?: ArchiveCheck | null;
  /** Workflow ID of the fence-guard left waiting for an unreachable old primary (UNCONFIRMED fence), if any. */
  fenceGuard: string | null;
  /** The fencing epoch this promotion recorded (also in the journal); null when none (already promoted, or a run from before epochs). */
  fencingEpoch?: number | null;
  /**
   * Which promotion ran, by the promoted leader's Patroni: "Patroni 4.1.5: promote-cluster semantics" or
   * "Patroni 3.0.2: PATCH standby_cluster=null"; null when it did not say (or a run from before this field).
   */
  promotePath?: string | null;
  /**
   * Planned switchover: how the old primary stopped taking writes, e.g. "Patroni 4.1.5: demote-cluster (...)" or
   * "Patroni 3.0.2: fence (...)"; absent in runs that fenced without asking (unplanned, archive-only, older runs).
   */
  demotePath?: string;
  phaseDurationsMs: Record<string, number>;
}

export type FailbackStrategy = 'auto' | 'rewind' | 'reseed';

export interface FailbackInput {
  /**
   * Who starts the run, proven: the ID token of `drctl login` with the nonce "start:<workflowId>". Without it the
   * run is "unauthenticated", which the sites file's approvals policy may refuse; the requester cannot approve.
   */
  requesterIdToken?: string;
  /** The promoted cluster, now the primary, `<site>/<cluster>`. */
  primary: string;
  /** The old site's cluster (the former primary) to bring back as its standby, `<site>/<cluster>`. */
  formerPrimary: string;
  /** auto: rewind when possible, reseed otherwise; rewind or reseed: only that (refused when impossible). */
  strategy: FailbackStrategy;
  /** Afterwards switch back to the original topology with the zero-loss planned switchover (its own approval). */
  switchBack?: boolean;
  /**
   * After a successful rejoin (and switchback), keep only the newest N full backups of the primary's own archive
   * (the retention runbook's rules: never the newest backup of its current timeline). Absent: nothing is deleted.
   */
  retainBackups?: number;
  /** How long a human has to approve the rejoin. Default 3600. */
  approvalTimeoutSeconds?: number;
  limits?: {
    /** How long the rejoined cluster may take to replay up to the primary. Default 1800. */
    replayTimeoutSeconds?: number;
  };
}

export interface FailbackResult {
  primary: string;
  formerPrimary: string;
  /** true when the former primary already was a standby of the primary: nothing destructive was done. */
  alreadyRejoined: boolean;
  strategy: 'rewind' | 'reseed' | null;
  choiceReason: string;
  /** Where the old timeline ended on the primary (its timeline history). */
  forkLsn: string | null;
  /** WAL the former primary wrote after the fork point: transactions the primary never got. */
  divergentBytes: number | null;
  quarantine: { manifest: string; objects: number; bytes: number } | null;
  rewound: boolean;
  approval: ApprovalRecord | null;
  /** The former primary's replayed LSN once it had caught up with the primary's marker. */
  rejoinedAtLsn: string | null;
  switchBack: PromoteResult | null;
  /** WAL-G's check of the archive the rejoined standby replays from (null: no backup of the primary's timeline yet). */
  archiveCheck?: ArchiveCheck | null;
  /** The retention pass of retainBackups, when asked for. */
  retention?: RetentionResult | null;
  phaseDurationsMs: Record<string, number>;
}

export const RUNBOOK_NAMES = {
  provisionStandby: 'provision-standby',
  forceBackup: 'force-backup',
  promote: 'promote',
  failbackReseed: 'failback-reseed',
  fenceGuard: 'fence-guard',
  regionFailover: 'region-failover',
  drill: 'drill',
  standbyLag: 'standby-lag',
  retention: 'retention',
} as const;

/** Workflow IDs are business keys: one run of a runbook per cluster at a time. */
export function runbookWorkflowId(runbook: string, clusterRef: string): string {
  return `${runbook}/${clusterRef}`;
}
