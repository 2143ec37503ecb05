// Whether one WAL file is in a cluster's archive: a listing of exactly its name under wal_005/ (whatever the
// compression suffix), so it costs one request however long the archive is.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { S3ArchiveConfig } from '../sites/sites-file';
import { s3ClientFor, splitS3Url } from './backup-catalogue';
import { SiteUnreachableError } from '../../workflows/contracts/errors';

export async function archivedWalObject(
  cfg: S3ArchiveConfig, walPrefix: string, wal: string,
): Promise<{ key: string; archivedAt: string | null } | null> {
  const { bucket, key } = splitS3Url(walPrefix);
  const prefix = `${key}/wal_005/${wal}`;
  try {
    const page = await s3ClientFor(cfg).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 10 }));
    // `<wal>.lz4`, `<wal>.br`, ...: the file itself, not a `.partial` of it or a backup history file.
    const hit = (page.Contents ?? []).find((o) => o.Key && /^\.[a-z0-9]+$|^$/.test(o.Key.slice(prefix.length)));
    return hit?.Key ? { key: hit.Key, archivedAt: hit.LastModified?.toISOString() ?? null } : null;
  } catch (err) {
    throw new SiteUnreachableError(`cannot list s3://${bucket}/${prefix}* (${cfg.endpoint ?? 'AWS'}): ${(err as Error).message}`, { walPrefix });
  }
}
