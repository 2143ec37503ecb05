// What activities need from a site, whatever kind it is. Workflows never see this: they name clusters as
// `<site>/<cluster>` and the activity picks the driver for the site.
import type { Client as PgClient } from 'pg';
import type { S3ArchiveConfig } from './sites-file';

export type PatroniRole = 'primary' | 'standby_leader' | 'replica' | 'unknown';

const PATRONI_ROLES: Record<string, PatroniRole> = {
  leader: 'primary', master: 'primary', primary: 'primary', standby_leader: 'standby_leader',
  replica: 'replica', sync_standby: 'replica',
};

/** A role as Patroni's REST API names it (which differs across versions) in the drivers' terms. */
export function patroniRole(role: string | undefined): PatroniRole {
  return PATRONI_ROLES[role ?? ''] ?? 'unknown';
}

export interface ReseedResult {
  changed: boolean;
  /**
   * Where the cluster archives from now on. A reseed makes a new incarnation (a new uid, as the operator's
   * delete-and-recreate does), so its archive starts under a new prefix.
   */
  walPrefix: string | null;
  /** The prefix it archived to before, left untouched because it holds the diverged timeline; null when unchanged. */
  previousWalPrefix: string | null;
  /**
   * Where the old incarnation's data was kept while the new one bootstrapped, and whether it was removed after the
   * new standby replayed (at replayedLsn). Null when no old data was moved (nothing changed, or a driver without it).
   */
  oldData?: { location: string; removed: boolean; replayedLsn: string | null } | null;
}

export interface ArchiveLocation {
  s3: S3ArchiveConfig;
  /** `s3://<bucket>/<scope>/<cluster>/<uid>/wal/<major>`: WAL-G's WALG_S3_PREFIX, Spilo's WAL path. */
  walPrefix: string;
}

/** Where a standby cluster replays from, as configured. */
export interface StandbySource {
  walPrefix?: string;
  host?: string;
  port?: number;
  /** The source cluster `<site>/<cluster>` as recorded when the standby was built. */
  sourceRef?: string;
  /**
   * The source's `Database system identifier` (digits) and timeline as provision-standby saw them on the live
   * source, kept on the standby itself so a promotion can check its lineage after the source is gone.
   * Absent on standbys built before it was recorded.
   */
  sourceSystemIdentifier?: string;
  sourceTimeline?: number;
}

/** What a standby must descend from: the source's system identifier and the timeline it was on. */
export interface SourceLineage {
  systemIdentifier: string;
  timeline: number;
}

export interface ClusterFacts {
  site: string;
  cluster: string;
  uid: string;
  /** The cluster's labels (the postgresql object's metadata.labels), e.g. {"dr-tier": "0"}. */
  labels: Record<string, string>;
  pgVersion: number;
  /** The leader's role as Patroni reports it; 'unknown' when no leader answers. */
  leaderRole: PatroniRole;
  leaderMember?: string;
  members: Array<{ name: string; role: PatroniRole; state: string; healthy: boolean }>;
  /** `standby_cluster` from Patroni's dynamic config, reduced to where it replays from. */
  standbySource?: StandbySource;
  /** This cluster's own archive (where it pushes WAL and base backups). */
  archive: ArchiveLocation;
  /** Where a streaming standby in another site connects to reach this cluster's leader. */
  streamingEndpoint: StreamingEndpoint;
  /** Set only on a drill's throwaway copy: `drill/<site>/<cluster>` of the drill that created it (the delete guard). */
  drill?: string;
}

/** What removing `standby_cluster` did, and on which Patroni (read from the leader's GET /patroni). */
export interface PromoteOutcome {
  changed: boolean;
  /** `patroni.version` of the leader that was promoted; absent when it did not say. */
  patroniVersion?: string;
  /** e.g. "Patroni 4.1.5: promote-cluster semantics" or "Patroni 3.0.2: PATCH standby_cluster=null". */
  promotePath?: string;
}

/** Endpoint a streaming standby connects to (the source leader, or a stable service in front of it). */
export interface StreamingEndpoint {
  host: string;
  port: number;
}

export interface SecretValue {
  username: string;
  password: string;
}

export interface CreateStandbyRequest {
  cluster: string;
  /** Shape of the source, for drivers that must declare it (the operator's manifest): major version, members. */
  like?: { pgVersion: number; instances: number; volumeSize?: string };
  /** The source `<site>/<cluster>`, recorded on the standby (cluster file; an annotation on Kubernetes). */
  sourceRef: string;
  /** The source's lineage as seen live at provisioning, recorded next to sourceRef (see StandbySource). */
  sourceLineage?: SourceLineage;
  /** Labels to give the standby (provision-standby copies the source's, so tiers and selectors follow it). */
  labels?: Record<string, string>;
  fromArchive?: { archive: ArchiveLocation; backupName: string };
  fromHost?: StreamingEndpoint;
  /** A drill's throwaway: `drill/<site>/<cluster>` of the drill (not a run's ID: schedules suffix theirs), recorded so only that drill may delete it. */
  drill?: string;
  /** Streaming through this slot on the source (`standby_cluster.primary_slot_name`); ensureStandbySlot it there first. */
  slotName?: string;
}

export interface BaseBackupRun {
  exitCode: number;
  /** The name the backup tool reported; never proof by itself (the sentinel in S3 is). */
  reportedName: string | null;
  /** The last lines the tool printed, for the journal when it fails (never holds credentials). */
  outputTail: string;
}

export interface FenceResult {
  changed: boolean;
  /** true when every member was seen refusing connections after the fence. */
  confirmed: boolean;
  /** What was done: Patroni paused and Postgres stopped, or it was already down. */
  method: 'paused-and-stopped' | 'already-stopped' | 'demoted-to-standby';
  /** The former leader's last checkpoint LSN after a clean (fast) shutdown; null when unknown. */
  finalLsn: string | null;
  cleanShutdown: boolean;
  detail: string;
}

/** A running primary demoted by its own Patroni (>= 4) into a standby cluster: writes stopped as by a fence. */
export interface NativeDemoteOutcome extends FenceResult {
  native: true;
  patroniVersion?: string;
}

/** What stopped a planned switchover's old primary: Patroni's own demotion, or the fence where it has none. */
export type SwitchoverStop = FenceResult & {
  native: boolean;
  /** e.g. "Patroni 4.1.5: demote-cluster (...)" or "Patroni 3.0.2: fence (...)" (patroni-states.ts demotePathFor). */
  demotePath: string;
  patroniVersion?: string;
};

/** The old primary's final WAL put in its archive after a clean stop (archive-only switchover). */
export interface FinalWalResult {
  /** false: the archive already held the shutdown checkpoint (an earlier attempt pushed it). */
  changed: boolean;
  /** The segment(s) holding the shutdown checkpoint record, pushed as they are in pg_wal (partial). */
  segments: string[];
  timeline: number;
  /** Where the checkpoint record ends: the new timeline of a standby that replays it starts there. */
  checkpointEndLsn: string;
  walPrefix: string;
}

export interface DemoteRequest {
  /** The cluster it will follow, `<site>/<cluster>`. */
  sourceRef: string;
  fromHost?: StreamingEndpoint;
  fromArchive?: { archive: ArchiveLocation };
  /** Streaming through this slot on the source (ensureStandbySlot it there first). */
  slotName?: string;
}

/** What a former primary holds, read without changing anything (failback: rewind or reseed?). */
export interface FormerPrimaryAssessment {
  /** Postgres of the assessed member accepts connections. */
  running: boolean;
  /** The member assessed: Patroni's leader, else the one whose control file says it last ran as a primary. */
  member: string;
  /** `Database system identifier` (digits: a 64-bit number). Must equal the new primary's for a rewind. */
  systemIdentifier: string | null;
  timeline: number | null;
  /**
   * Running: pg_current_wal_lsn() (receive/replay LSN in recovery). Stopped: the end of the WAL in pg_wal found by
   * pg_waldump from the last checkpoint, or the checkpoint itself when that read fails: after a crash the last
   * checkpoint can lie BEFORE the divergent WAL, so it alone would hide exactly what failback must protect.
   */
  lastLsn: string | null;
  lastLsnSource: 'pg_current_wal_lsn' | 'pg_last_wal_receive_lsn' | 'pg_waldump' | 'pg_controldata' | null;
  /** pg_controldata "Latest checkpoint location" (stopped only). */
  checkpointLsn: string | null;
  /** pg_controldata "Database cluster state" (stopped only): `in production` after a crash, `shut down` after a clean stop. */
  clusterState: string | null;
  walLogHints: boolean | null;
  dataChecksums: boolean | null;
  /** WAL file names in that member's pg_wal (24 hex digits, `.partial` too), sorted. */
  walFiles: string[];
}

export interface QuarantineRequest {
  /** The first LSN to keep: the fork point of the new primary's timeline. */
  fromLsn: string;
  /** The former primary's timeline (the one that diverged). */
  timeline: number;
  destination: { s3: S3ArchiveConfig; prefix: string };
}

export interface QuarantineResult {
  changed: boolean;
  /** `s3://bucket/key` of every WAL file copied (or already there), the manifest not included. */
  objects: string[];
  /** Bytes of those objects. */
  bytes: number;
  /** `s3://bucket/<prefix>/quarantine.json`: cluster, member, system id, timeline, LSN range, sizes and MD5s. */
  manifest: string;
  /** End of the former primary's WAL on that timeline (pg_waldump), null when it could not be read. */
  endOfWal: string | null;
  /** endOfWal - fromLsn: how much WAL the new primary never got. */
  divergentBytes: number | null;
}

export interface DemoteResult {
  changed: boolean;
  /** Patroni ran pg_rewind (successfully) on some member during this call, read from its log. */
  rewound: boolean;
  /** The `pg_rewind` lines of Patroni's logs written during this call, per member (for the journal). */
  rewindLog: string[];
  /**
   * WAL files of the former primary's own timeline that pg_rewind read from its own archive (its pg_wal no longer
   * held them), and those it asked for and did not get. Absent where the driver cannot tell.
   */
  targetWalFromArchive?: { prefix: string | null; fetched: string[]; missing: string[] };
}

export interface ReseedRequest {
  /** The cluster it will follow, `<site>/<cluster>`. */
  sourceRef: string;
  /** The source's archive and the (proven) base backup to bootstrap from. */
  fromArchive: { archive: ArchiveLocation; backupName: string };
  fromHost?: StreamingEndpoint;
  /** Streaming through this slot on the source (ensureStandbySlot it there first). */
  slotName?: string;
  /**
   * The system identifier the runbook assessed the target with. Re-checked at the moment of the stop: a target that
   * holds another system (or runs as a primary) is refused, non-retryable, with nothing changed. Absent: not checked.
   */
  assessedSystemIdentifier?: string | null;
  /** Names the kept copy of the old data (e.g. the run's id). */
  runTag?: string;
}

/**
 * The fencing epoch stored with a cluster: the number of the newest promotion decision of its protected pair, where
 * both sites' drivers can compare-and-set it (local: a key in the region's etcd; zalando: an annotation on the
 * `postgresql` object). `epoch` is null when none was ever stored.
 */
export interface StoredEpoch {
  epoch: number | null;
}

export interface EpochClaim {
  /** false when the cluster already stored this epoch. */
  changed: boolean;
  epoch: number;
  previous: number | null;
}

/** One cluster of a site as a listing shows it, without asking Patroni (cheap for hundreds of clusters). */
export interface ClusterListing {
  cluster: string;
  labels: Record<string, string>;
  /** The source `<site>/<cluster>` recorded when it was built as a standby (it may since have been promoted). */
  recordedSourceRef: string | null;
  /** Set on a drill's throwaway copy (see ClusterFacts.drill): never a standby to evacuate to. */
  drill?: string;
}

export interface StandbySlotResult {
  changed: boolean;
  slot: string;
  /** Members that hold the slot now (ensure: the leader; drop: members still holding it while the cluster is paused). */
  heldBy: string[];
  /** Why the slot is not yet as asked on disk (a paused cluster: Patroni acts when it resumes), or null. */
  pending: string | null;
}

/** One row of pg_replication_slots on one member. */
export interface ReplicationSlotRow {
  member: string;
  slot: string;
  type: string;
  active: boolean;
  restartLsn: string | null;
}

export interface SiteDriver {
  readonly site: string;
  readonly kind: 'local' | 'zalando';
  /** Facts about a cluster, or null when it does not exist. Throws SiteUnreachableError when the site does not answer. */
  describeCluster(cluster: string): Promise<ClusterFacts | null>;
  /** Every cluster of the site, by name. Throws SiteUnreachableError when the site does not answer. */
  listClusters(): Promise<ClusterListing[]>;
  /** Superuser SQL on the current leader (primary or standby leader). */
  withLeaderSql<T>(cluster: string, fn: (client: PgClient) => Promise<T>): Promise<T>;
  readSecret(cluster: string, user: string): Promise<SecretValue | null>;
  writeSecret(cluster: string, user: string, value: SecretValue): Promise<void>;
  listSecretUsers(cluster: string): Promise<string[]>;
  /** Idempotent: `changed: false` when the cluster already exists as asked. */
  createStandbyCluster(req: CreateStandbyRequest, onProgress?: (detail: string) => void): Promise<{ changed: boolean }>;
  /**
   * A full base backup of the primary leader with WAL-G (Spilo's backup script on Kubernetes). `signal` stops
   * it (activity cancellation). Exit code 0 is not proof: Spilo's script exits 0 on a replica without a backup.
   */
  runBaseBackup(cluster: string, onProgress: (detail: string) => void, signal?: AbortSignal): Promise<BaseBackupRun>;
  /** PATCH Patroni's /config with {"standby_cluster": null}: the standby leader promotes. `changed: false` when none was set. */
  removeStandbyConfig(cluster: string): Promise<PromoteOutcome>;
  /** Stop writes: pause Patroni (so it does not restart Postgres) and stop Postgres fast on every member, leader last. */
  fenceCluster(cluster: string): Promise<FenceResult>;
  /** Lift a fence: resume Patroni, which starts Postgres again in the role it had. */
  unfenceCluster(cluster: string): Promise<{ changed: boolean }>;
  /**
   * Make a fenced (or crashed) cluster a standby of another (standby_cluster in its DCS while paused), then resume
   * it. A former primary that diverged after the fork point is rewound by Patroni (use_pg_rewind, with its
   * superuser credentials against the source: they must equal the source's); `rewound` says whether it was.
   */
  demoteToStandby(cluster: string, req: DemoteRequest): Promise<DemoteResult>;
  /**
   * Where the cluster's Patroni can (>= 4, demote-cluster): demote the RUNNING primary into a standby of
   * req.sourceRef and prove writes stopped; `{ native: false }` with nothing changed where it cannot. Absent on
   * drivers without it (the switchover then fences). `undoNativeDemotion` promotes it back (standby_cluster removed).
   */
  demoteRunningPrimary?(cluster: string, req: DemoteRequest): Promise<NativeDemoteOutcome | { native: false; patroniVersion?: string; why: string }>;
  undoNativeDemotion?(cluster: string): Promise<{ changed: boolean }>;
  /**
   * A fenced, cleanly stopped primary: put the segment holding its shutdown checkpoint (`finalLsn`, from the fence)
   * into its archive, so a standby that only reads the archive can replay it. Already there is `changed: false`.
   */
  archiveFinalWal(cluster: string, finalLsn: string): Promise<FinalWalResult>;
  /** Read-only facts about a former primary for the rewind-or-reseed decision. Works with Patroni and Postgres dead. */
  assessFormerPrimary(cluster: string): Promise<FormerPrimaryAssessment>;
  /**
   * Copies every WAL file of the former primary's leader on `timeline` holding WAL at or after `fromLsn` (and any
   * `.partial`) to `s3://<bucket>/<prefix>/`, with a manifest. Refuses a running Postgres (fence it first: a copy
   * of a segment being written is torn). Idempotent, never deletes or overwrites a WAL object.
   */
  quarantineWal(cluster: string, req: QuarantineRequest): Promise<QuarantineResult>;
  /**
   * DESTRUCTIVE: stops the cluster, wipes its members' data and its DCS keys (secrets kept) and bootstraps it as a
   * fresh standby of req.sourceRef from the named base backup (+ archive and/or streaming), then waits for a
   * running standby_leader. Quarantine first. `changed: false` when it already runs as a standby of sourceRef.
   */
  reseedAsStandby(cluster: string, req: ReseedRequest, onProgress?: (detail: string) => void): Promise<ReseedResult>;
  /** The cluster's stored fencing epoch. Works with Patroni and Postgres stopped; SiteUnreachableError when the store does not answer. */
  readEpoch(cluster: string): Promise<StoredEpoch>;
  /**
   * Compare-and-set: stores `epoch` unless the cluster already stores a higher one, then StaleEpochError naming both
   * and nothing is written. The same epoch again is success with `changed: false`.
   */
  claimEpoch(cluster: string, epoch: number): Promise<EpochClaim>;
  /**
   * DESTRUCTIVE, for drill throwaways only: deletes the cluster when it records `guard.drill` as the drill that
   * created it, and refuses (PreconditionFailedError) any other cluster, so a drill can never delete a real one.
   * `changed: false` when it is already gone.
   */
  deleteCluster(cluster: string, guard: { drill: string }): Promise<DeleteClusterResult>;
  /**
   * A permanent physical slot named `slot` on the cluster (Patroni's `slots` in its dynamic config, which its
   * leader creates and a new leader re-creates after a switchover), for a standby streaming from it. Idempotent;
   * waits until the leader holds it unless the cluster is paused (`pending` says so).
   */
  ensureStandbySlot(cluster: string, slot: string): Promise<StandbySlotResult>;
  /**
   * Removes `slot` from the permanent slots and waits until no running member holds it (NotReadyError while a
   * standby still streams through it). `changed: false` when it was not configured.
   */
  dropStandbySlot(cluster: string, slot: string): Promise<StandbySlotResult>;
  /** pg_replication_slots of every member that answers (read-only). */
  listReplicationSlots(cluster: string): Promise<ReplicationSlotRow[]>;
}

export interface DeleteClusterResult {
  changed: boolean;
  /** Users whose credentials were deleted with it. */
  secretsDeleted: string[];
  /** What was left behind on purpose, in one sentence, or null. */
  kept: string | null;
}
