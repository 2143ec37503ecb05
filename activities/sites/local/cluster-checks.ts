// Checks made before a cluster is created: the spec itself, and for a standby the secrets, the source archive
// and the source host, all with the standby's exact settings (see the credential and prefix pitfalls).
import { Client, type ClientConfig } from 'pg';
import { BadInputError, PreconditionFailedError, SiteUnreachableError } from '../../../workflows/contracts/errors';
import type { CreateLocalClusterSpec, LocalClusterInfo } from './cluster-files';
import type { Credentials, SecretStore } from './secret-store';
import { listBackups, newestBackup, parseS3Url, walgEnv } from './walg-env';

const CLUSTER_NAME = /^[a-z]([a-z0-9-]{0,51}[a-z0-9])?$/;
const USER_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
export const RESERVED_USERS = ['postgres', 'standby'];

export function validateSpec(spec: CreateLocalClusterSpec): void {
  const bad = (msg: string) => new BadInputError(`cluster ${spec.name}: ${msg}`, { cluster: spec.name });
  if (!CLUSTER_NAME.test(spec.name)) throw bad('name must be a DNS-1035 label of at most 53 characters');
  if (spec.pgVersion !== 15) throw bad(`pgVersion ${String(spec.pgVersion)} is not supported (15 only)`);
  const n = spec.members ?? 2;
  if (!Number.isInteger(n) || n < 1 || n > 5) throw bad('members must be 1..5');
  if (spec.uid !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(spec.uid)) throw bad('uid must be letters, digits and -');
  for (const u of spec.users ?? []) {
    if (!USER_NAME.test(u) || RESERVED_USERS.includes(u)) throw bad(`invalid application user name "${u}"`);
  }
  const sb = spec.standby;
  if (!sb) return;
  if (!sb.fromArchive && !sb.fromHost) throw bad('standby needs fromArchive and/or fromHost');
  if (spec.users?.length) throw bad('a standby gets its roles from the source: users must be empty');
  if (sb.fromArchive) {
    const { bucket } = parseS3Url(sb.fromArchive.walPrefix);
    if (bucket !== sb.fromArchive.s3.bucket) {
      throw bad(`walPrefix bucket ${bucket} differs from the archive config's bucket ${sb.fromArchive.s3.bucket}`);
    }
    if (!/\/wal\/15\/?$/.test(sb.fromArchive.walPrefix)) throw bad(`walPrefix must end with /wal/15: ${sb.fromArchive.walPrefix}`);
  }
  if (sb.fromHost && (!sb.fromHost.host || !Number.isInteger(sb.fromHost.port))) throw bad('fromHost needs host and port');
}

/** Same kind of cluster as the one on disk? A second create with a different shape is a mistake, not a no-op. */
export function checkSameShape(existing: LocalClusterInfo, spec: CreateLocalClusterSpec): void {
  const diffs: string[] = [];
  if (existing.archive !== spec.archive) diffs.push('archive');
  if (!!existing.standby !== !!spec.standby) diffs.push('standby');
  if (spec.uid && spec.uid !== existing.uid) diffs.push('uid');
  // A drill must never adopt a real cluster of the throwaway's name, nor a real create a throwaway.
  if ((existing.drill ?? null) !== (spec.drill ?? null)) diffs.push('drill');
  if (existing.standby && spec.standby) {
    if (existing.standby.fromArchive?.walPrefix !== spec.standby.fromArchive?.walPrefix) diffs.push('standby.fromArchive');
    if (existing.standby.fromHost?.host !== spec.standby.fromHost?.host ||
        existing.standby.fromHost?.port !== spec.standby.fromHost?.port) diffs.push('standby.fromHost');
  }
  if (diffs.length) {
    throw new BadInputError(`cluster ${spec.name} already exists with a different ${diffs.join(', ')}`, { cluster: spec.name, diffs });
  }
}

export function requireStandbySecrets(secrets: SecretStore, cluster: string): { superuser: Credentials; replication: Credentials } {
  const superuser = secrets.read(cluster, 'postgres');
  const replication = secrets.read(cluster, 'standby');
  const missing = [!superuser && 'postgres', !replication && 'standby'].filter((x): x is string => !!x);
  if (!superuser || !replication) {
    throw new PreconditionFailedError(
      `standby cluster ${cluster}: secret(s) ${missing.map((u) => `${cluster}/${u}`).join(', ')} missing from the secret store; copy them from the source first`,
      { cluster, missing },
    );
  }
  return { superuser, replication };
}

/** The source backup to restore: the one named, or the newest complete one by timeline and LSN. */
export async function resolveSourceBackup(spec: CreateLocalClusterSpec): Promise<string | null> {
  const fa = spec.standby?.fromArchive;
  if (!fa) return null;
  const env = await walgEnv(fa.s3, fa.walPrefix);
  let backups;
  try {
    backups = await listBackups(env);
  } catch (err) {
    throw new SiteUnreachableError(`source archive ${fa.walPrefix}: ${(err as Error).message}`, { walPrefix: fa.walPrefix });
  }
  if (fa.backupName) {
    if (!backups.some((b) => b.name === fa.backupName)) {
      throw new PreconditionFailedError(`no complete backup ${fa.backupName} under ${fa.walPrefix}`, { walPrefix: fa.walPrefix });
    }
    return fa.backupName;
  }
  const newest = newestBackup(backups);
  if (!newest) {
    throw new PreconditionFailedError(`no complete base backup under ${fa.walPrefix} (is the prefix, endpoint or region right?)`, {
      walPrefix: fa.walPrefix,
    });
  }
  return newest.name;
}

async function tryLogin(cfg: ClientConfig): Promise<void> {
  const c = new Client({ ...cfg, connectionTimeoutMillis: 5_000 });
  try {
    await c.connect();
    await c.query('select 1');
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Logs in to the source as postgres and as standby with the passwords the standby will use. */
export async function checkSourceHost(
  cluster: string,
  host: { host: string; port: number },
  creds: { superuser: Credentials; replication: Credentials },
): Promise<void> {
  for (const c of [creds.superuser, creds.replication]) {
    try {
      await tryLogin({ host: host.host, port: host.port, user: c.username, password: c.password, database: 'postgres' });
    } catch (err) {
      const code = (err as { code?: string }).code;
      const facts = { cluster, host: host.host, port: host.port, user: c.username, code: code ?? null };
      if (code === '28P01' || code === '28000') {
        throw new PreconditionFailedError(
          `standby cluster ${cluster}: the source ${host.host}:${host.port} refuses user ${c.username} with the password in this site's secret store (${code})`,
          facts,
        );
      }
      throw new SiteUnreachableError(`source ${host.host}:${host.port} for ${cluster}: ${(err as Error).message}`, facts);
    }
  }
}
