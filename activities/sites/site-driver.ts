// What activities need from a site, whatever kind it is. Workflows never see this: they name clusters as
// `<site>/<cluster>` and the activity picks the driver for the site.
import type { Client as PgClient } from 'pg';
import type { S3ArchiveConfig } from './sites-file';

export type PatroniRole = 'primary' | 'standby_leader' | 'replica' | 'unknown';

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
}

export interface ClusterFacts {
  site: string;
  cluster: string;
  uid: string;
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
  /** The source `<site>/<cluster>`, recorded on the standby (cluster file; an annotation on Kubernetes). */
  sourceRef: string;
  fromArchive?: { archive: ArchiveLocation; backupName: string };
  fromHost?: StreamingEndpoint;
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
  method: 'paused-and-stopped' | 'already-stopped';
  /** The former leader's last checkpoint LSN after a clean (fast) shutdown; null when unknown. */
  finalLsn: string | null;
  cleanShutdown: boolean;
  detail: string;
}

export interface DemoteRequest {
  /** The cluster it will follow, `<site>/<cluster>`. */
  sourceRef: string;
  fromHost?: StreamingEndpoint;
  fromArchive?: { archive: ArchiveLocation };
}

export interface SiteDriver {
  readonly site: string;
  readonly kind: 'local';
  /** Facts about a cluster, or null when it does not exist. Throws SiteUnreachableError when the site does not answer. */
  describeCluster(cluster: string): Promise<ClusterFacts | null>;
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
  removeStandbyConfig(cluster: string): Promise<{ changed: boolean }>;
  /** Stop writes: pause Patroni (so it does not restart Postgres) and stop Postgres fast on every member, leader last. */
  fenceCluster(cluster: string): Promise<FenceResult>;
  /** Lift a fence: resume Patroni, which starts Postgres again in the role it had. */
  unfenceCluster(cluster: string): Promise<{ changed: boolean }>;
  /** Make a fenced cluster a standby of another (standby_cluster in its DCS), then resume it. */
  demoteToStandby(cluster: string, req: DemoteRequest): Promise<{ changed: boolean }>;
}
