// Patroni 3.0.2 configuration of one member, written as JSON (valid YAML, no YAML dependency needed).
// Holds the postgres and standby passwords: the file is 0600, owned by postgres.
import { join } from 'node:path';
import type { Credentials } from './secret-store';
import type { LocalClusterInfo, LocalMemberInfo, StandbySpec } from './cluster-files';
import { shq } from './fs-util';
import type { WalgScripts } from './walg-env';

export interface MemberPaths {
  memberDir: string;
  configFile: string;
  pidFile: string;
  logFile: string;
  socketDir: string;
  pgLogDir: string;
}

export interface PatroniConfigInput {
  cluster: LocalClusterInfo;
  member: LocalMemberInfo;
  paths: MemberPaths;
  etcdClientPort: number;
  superuser: Credentials;
  replication: Credentials;
  scripts: WalgScripts;
  pgBinDir: string;
  /** Also listen on this (non-loopback) address: the pod IP of the stand-in operator's pods. */
  exposeOn?: string;
}

/** Name of the custom create_replica_method restoring the source's base backup (Spilo calls it wal_e/bootstrap_standby_with_wale). */
export const WALG_METHOD = 'walg_source_backup';

/**
 * The `standby_cluster` section of the DCS for a standby spec: streaming from host/port and/or WAL from the
 * source archive through the restore wrapper. The backup-fetch replica method only when a source backup is
 * pinned (a cluster demoted onto a new source keeps its own data and has none).
 */
export function standbyClusterSection(
  sb: StandbySpec,
  scripts: WalgScripts,
  bootstrapBackup: string | null,
): Record<string, unknown> {
  const section: Record<string, unknown> = {};
  const methods: string[] = [];
  if (sb.fromArchive) {
    section.restore_command = `${shq(scripts.restore)} "%f" "%p"`;
    if (bootstrapBackup) methods.push(WALG_METHOD);
  }
  if (sb.fromHost) {
    section.host = sb.fromHost.host;
    section.port = sb.fromHost.port;
    // WAL the standby still needs stays on the source (ensureStandbySlot creates the slot before this is used).
    if (sb.slotName) section.primary_slot_name = sb.slotName;
    methods.push('basebackup');
  }
  section.create_replica_methods = methods;
  return section;
}

export function buildPatroniConfig(i: PatroniConfigInput): Record<string, unknown> {
  const { cluster, member, paths, scripts } = i;
  const parameters: Record<string, string | number> = {
    wal_level: 'replica',
    hot_standby: 'on',
    wal_log_hints: 'on',
    max_connections: 100,
    max_wal_senders: 10,
    max_replication_slots: 10,
    wal_keep_size: '256MB',
    shared_buffers: '32MB',
    password_encryption: 'scram-sha-256',
  };
  if (cluster.archive) {
    // `on`, not `always`: a standby cluster must not archive its source's WAL into its own prefix; it starts
    // archiving (its new timeline) only once promoted.
    parameters.archive_mode = 'on';
    parameters.archive_command = `${shq(scripts.archive)} wal-push "%p"`;
    // Short, so archive-only standbys see commits within seconds even when the source is quiet.
    parameters.archive_timeout = '10s';
  } else {
    parameters.archive_mode = 'off';
  }

  const dcs: Record<string, unknown> = {
    ttl: 30,
    loop_wait: 10,
    retry_timeout: 10,
    maximum_lag_on_failover: 1048576,
    postgresql: { use_pg_rewind: true, use_slots: true, parameters },
  };

  if (cluster.standby) dcs.standby_cluster = standbyClusterSection(cluster.standby, scripts, cluster.bootstrapBackup);

  const postgresql: Record<string, unknown> = {
    listen: `127.0.0.1${i.exposeOn ? `,${i.exposeOn}` : ''}:${member.pgPort}`,
    connect_address: `127.0.0.1:${member.pgPort}`,
    data_dir: member.dataDir,
    bin_dir: i.pgBinDir,
    pgpass: join(paths.memberDir, 'pgpass'),
    authentication: {
      superuser: { username: i.superuser.username, password: i.superuser.password },
      replication: { username: i.replication.username, password: i.replication.password },
    },
    parameters: {
      unix_socket_directories: paths.socketDir,
      logging_collector: 'on',
      log_directory: paths.pgLogDir,
      log_filename: 'postgresql-%a.log',
      log_truncate_on_rotation: 'on',
      log_rotation_age: '1d',
      log_line_prefix: '%m [%p] %q%u@%d ',
    },
    pg_hba: [
      // WAL-G runs as the postgres OS user on the leader's socket (backup-push: an ordinary connection + PGDATA).
      'local all postgres peer',
      'local all all md5',
      `host replication ${i.replication.username} 127.0.0.1/32 md5`,
      'host all all 127.0.0.1/32 md5',
      ...(i.exposeOn ? [`host replication ${i.replication.username} ${i.exposeOn}/32 md5`, `host all all ${i.exposeOn}/32 md5`] : []),
    ],
    // Members of any cluster (standby clusters included) clone from their own leader.
    create_replica_methods: ['basebackup'],
    basebackup: { checkpoint: 'fast' },
    [WALG_METHOD]: { command: scripts.backupFetch, no_master: true, no_leader: true },
  };

  return {
    scope: cluster.name,
    namespace: '/service/',
    name: member.name,
    log: { level: 'INFO', format: '%(asctime)s %(levelname)s: %(message)s' },
    restapi: { listen: `${i.exposeOn ? '0.0.0.0' : '127.0.0.1'}:${member.restPort}`, connect_address: `127.0.0.1:${member.restPort}` },
    etcd3: { hosts: [`127.0.0.1:${i.etcdClientPort}`] },
    bootstrap: {
      dcs,
      initdb: [{ encoding: 'UTF8' }, { locale: 'C.UTF-8' }, 'data-checksums'],
    },
    postgresql,
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
}
