// Reads a WAL-G archive in S3 (Spilo layout) the way a restore would see it: a base backup exists only when
// its stop sentinel does, and backups are ordered by LSN and timeline, never by modification time.
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { fromIni } from '@aws-sdk/credential-providers';
import type { S3ArchiveConfig } from '../sites/sites-file';
import { BadInputError, SiteUnreachableError } from '../../workflows/contracts/errors';
import { formatLsn, lsnDiff, walSegmentEndLsn } from '../../workflows/contracts/lsn';

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

/** `work` on every item, at most `limit` at a time; results in the items' order. */
async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

// Sentinels are read this many at a time: one round trip each, and an archive keeps tens of backups.
const SENTINEL_READS_AT_ONCE = 8;

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

/** Every complete base backup under the prefix, oldest first by finish LSN. */
export async function listCompleteBackups(cfg: S3ArchiveConfig, walPrefix: string): Promise<BaseBackup[]> {
  const { bucket, key } = splitS3Url(walPrefix);
  const s3 = s3ClientFor(cfg);
  const dir = `${key}/basebackups_005/`;
  let keys: string[];
  try {
    // Sentinels sit directly under basebackups_005/; the backups' tar partitions (most of the objects) are not listed.
    keys = (await listObjects(s3, bucket, dir, true)).map((o) => o.key);
  } catch (err) {
    unreachable(cfg, walPrefix, err);
  }
  const sentinels = keys.filter((k) => k.endsWith('_backup_stop_sentinel.json') && !k.slice(dir.length).includes('/'));
  const read = await mapLimited(sentinels, SENTINEL_READS_AT_ONCE, async (sentinelKey): Promise<BaseBackup | null> => {
    const name = sentinelKey.slice(dir.length).replace(/_backup_stop_sentinel\.json$/, '');
    const m = BACKUP_NAME.exec(name);
    if (!m) return null;
    let body: string;
    try {
      const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: sentinelKey }));
      body = (await obj.Body?.transformToString()) ?? '';
    } catch (err) {
      unreachable(cfg, walPrefix, err);
    }
    const sentinel = parseSentinel(body);
    return sentinel ? { name, timeline: parseInt(m[1], 16), sentinelKey, ...sentinel } : null;
  });
  const backups = read.filter((b): b is BaseBackup => b !== null);
  return backups.sort((a, b) => compareLsn(a.finishLsn, b.finishLsn) || a.timeline - b.timeline);
}

function compareLsn(a: string, b: string): number {
  return Math.sign(lsnDiff(a, b));
}

// The stop sentinel of WAL-G 3.0.9 (checked on the binary): LSN, FinishLSN (integers), PgVersion, SystemIdentifier
// (a 64-bit integer), sizes, and the extended metadata copied in (StartTime, FinishTime, Hostname, DataDir, ...).
// JSON.parse is exact for LSNs below 2^53 bytes of WAL (8 PiB).
function parseSentinel(body: string): Omit<BaseBackup, 'name' | 'timeline' | 'sentinelKey'> | undefined {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const lsn = j.LSN;
  const finish = j.FinishLSN;
  if (typeof lsn !== 'number' || typeof finish !== 'number') return undefined;
  return {
    startLsn: formatLsn(BigInt(lsn)),
    finishLsn: formatLsn(BigInt(finish)),
    finishTime: typeof j.FinishTime === 'string' ? j.FinishTime : undefined,
    hostname: typeof j.Hostname === 'string' ? j.Hostname : undefined,
    pgVersion: typeof j.PgVersion === 'number' ? j.PgVersion : undefined,
    // A 64-bit integer in the JSON: read its digits from the text, JSON.parse would round it.
    systemIdentifier: /"SystemIdentifier"\s*:\s*"?(\d+)/.exec(body)?.[1],
    compressedSize: typeof j.CompressedSize === 'number' ? j.CompressedSize : undefined,
    uncompressedSize: typeof j.UncompressedSize === 'number' ? j.UncompressedSize : undefined,
  };
}

export interface ArchivedWal {
  segment: string;
  timeline: number;
  endLsn: string;
  /** When the segment landed in S3 (ISO), if the store says. */
  archivedAt: string | null;
}

/** The newest archived WAL segment and the LSN its end stands for, or null for an empty archive. */
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
