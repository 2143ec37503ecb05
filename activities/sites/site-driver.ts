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
  fromArchive?: { archive: ArchiveLocation; backupName: string };
  fromHost?: StreamingEndpoint;
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
  createStandbyCluster(req: CreateStandbyRequest): Promise<{ changed: boolean }>;
}
