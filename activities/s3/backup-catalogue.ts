// Reads a WAL-G archive in S3 (Spilo layout) the way a restore would see it: a base backup exists only when
// its stop sentinel does, and backups are ordered by LSN and timeline, never by modification time. The backups
// come from WAL-G itself (`backup-list --json --detail`); the newest archived segment is read from S3 directly (see
// lastArchivedWal for why).
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { fromIni } from '@aws-sdk/credential-providers';
import type { S3ArchiveConfig } from '../sites/sites-file';
import { BadInputError, SiteUnreachableError } from '../../workflows/contracts/errors';
import { formatLsn, lsnDiff, walSegmentEndLsn } from '../../workflows/contracts/lsn';
import { runCommand, walgEnv } from '../sites/local/walg-env';
import { walgBin } from '../sites/local/tools';

export interface BaseBackup {
  name: string;
  timeline: number;
  startLsn: string;
  finishLsn: string;
  finishTime?: string;
  hostname?: string;
  pgVersion?: number;
  systemIdentifier?: string;
  compressedSize?: number;
  uncompressedSize?: number;
  sentinelKey: string;
}

export function s3ClientFor(cfg: S3ArchiveConfig): S3Client {
  return new S3Client({
    region: cfg.region,
    endpoint: cfg.endpoint,
    forcePathStyle: cfg.forcePathStyle ?? false,
    // The default chain, narrowed to a profile when the sites file names one.
    credentials: cfg.profile ? fromIni({ profile: cfg.profile, filepath: cfg.credentialsFile }) : undefined,
    maxAttempts: 2,
  });
}

/** `s3://bucket/a/b` -> { bucket, key: 'a/b' } */
export function splitS3Url(url: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw new BadInputError(`"${url}" is not an s3:// URL`);
  return { bucket: m[1], key: m[2].replace(/\/+$/, '') };
}

/** Objects under `prefix`; with `topLevelOnly`, not those in its sub-folders (a backup's tar partitions). */
async function listObjects(s3: S3Client, bucket: string, prefix: string, topLevelOnly = false): Promise<Array<{ key: string; modified?: Date }>> {
  const objects: Array<{ key: string; modified?: Date }> = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, ...(topLevelOnly ? { Delimiter: '/' } : {}) }),
    );
    for (const o of page.Contents ?? []) if (o.Key) objects.push({ key: o.Key, modified: o.LastModified });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

function unreachable(cfg: S3ArchiveConfig, walPrefix: string, err: unknown): never {
  const e = err as { name?: string; message?: string };
  if (e?.name === 'NoSuchBucket') {
    throw new BadInputError(`archive ${walPrefix}: bucket does not exist at ${cfg.endpoint ?? 'AWS S3'}`);
  }
  throw new SiteUnreachableError(
    `archive ${walPrefix} cannot be read at ${cfg.endpoint ?? 'AWS S3'}: ${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`,
    { walPrefix },
  );
}

// The WAL file name in `base_<WAL name>` starts with the timeline in 8 hex digits.
const BACKUP_NAME = /^base_([0-9A-F]{8})([0-9A-F]{16})(_D_[0-9A-F]{24})?$/;

/**
 * Every complete base backup under the prefix, oldest first by finish LSN, as WAL-G itself lists them
 * (`backup-list --json --detail`: a backup is listed only when its stop sentinel exists, the same rule a restore
 * follows), with the archive site's credentials. Not WAL-G's order: that is by modification time.
 */
export async function listCompleteBackups(cfg: S3ArchiveConfig, walPrefix: string): Promise<BaseBackup[]> {
  const { key } = splitS3Url(walPrefix);
  const env = await walgEnv(cfg, walPrefix);
  const r = await runCommand(walgBin(), ['backup-list', '--json', '--detail'], env, { timeoutMs: 120_000 }).catch((err: Error) => unreachable(cfg, walPrefix, err));
  const output = `${r.stdout}\n${r.stderr}`;
  if (r.exitCode !== 0) {
    if (/No backups found/i.test(output)) return [];
    if (/NoSuchBucket/.test(output)) unreachable(cfg, walPrefix, { name: 'NoSuchBucket' });
    unreachable(cfg, walPrefix, { name: 'WalgBackupListFailed', message: `wal-g backup-list exit ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-2).join(' | ').slice(0, 300)}` });
  }
  const text = r.stdout.trim();
  if (!text || text === 'null') return [];
  // system_identifier is a 64-bit integer: JSON.parse would round it, so it is read as the digits it is.
  const rows = JSON.parse(text.replace(/"system_identifier"\s*:\s*(\d+)/g, '"system_identifier":"$1"')) as Array<Record<string, unknown>>;
  const backups: BaseBackup[] = [];
  for (const b of rows) {
    const name = String(b.backup_name ?? '');
    const m = BACKUP_NAME.exec(name);
    // LSNs are integers (exact below 2^53 bytes of WAL, 8 PiB); a listing without them is not a backup we can place.
    if (!m || typeof b.start_lsn !== 'number' || typeof b.finish_lsn !== 'number') continue;
    backups.push({
      name, timeline: parseInt(m[1], 16),
      startLsn: formatLsn(BigInt(b.start_lsn)), finishLsn: formatLsn(BigInt(b.finish_lsn)),
      finishTime: typeof b.finish_time === 'string' ? b.finish_time : undefined,
      hostname: typeof b.hostname === 'string' ? b.hostname : undefined,
      pgVersion: typeof b.pg_version === 'number' ? b.pg_version : undefined,
      systemIdentifier: typeof b.system_identifier === 'string' ? b.system_identifier : undefined,
      compressedSize: typeof b.compressed_size === 'number' ? b.compressed_size : undefined,
      uncompressedSize: typeof b.uncompressed_size === 'number' ? b.uncompressed_size : undefined,
      sentinelKey: `${key}/basebackups_005/${name}_backup_stop_sentinel.json`,
    });
  }
  return backups.sort((a, b) => compareLsn(a.finishLsn, b.finishLsn) || a.timeline - b.timeline);
}

function compareLsn(a: string, b: string): number {
  return Math.sign(lsnDiff(a, b));
}

export interface ArchivedWal {
  segment: string;
  timeline: number;
  endLsn: string;
  /** When the segment landed in S3 (ISO), if the store says. */
  archivedAt: string | null;
}

/**
 * The newest archived WAL segment and the LSN its end stands for, or null for an empty archive.
 * Read from S3, not from WAL-G: `wal-show` names each timeline's segment range but not when the newest segment
 * landed, which standby-lag and region-failover's assessment need (the object's modification time), and it walks
 * the whole WAL folder with its checks on each call, where this is one listing.
 */
export async function lastArchivedWal(cfg: S3ArchiveConfig, walPrefix: string): Promise<ArchivedWal | null> {
  const { bucket, key } = splitS3Url(walPrefix);
  let objects: Array<{ key: string; modified?: Date }>;
  try {
    objects = await listObjects(s3ClientFor(cfg), bucket, `${key}/wal_005/`);
  } catch (err) {
    unreachable(cfg, walPrefix, err);
  }
  let best: { segment: string; modified?: Date } | undefined;
  for (const o of objects) {
    const segment = /\/([0-9A-F]{24})(\.[a-z0-9]+)?$/.exec(o.key)?.[1];
    if (segment && (!best || segment > best.segment)) best = { segment, modified: o.modified };
  }
  return best
    ? { segment: best.segment, ...walSegmentEndLsn(best.segment), archivedAt: best.modified?.toISOString() ?? null }
    : null;
}
