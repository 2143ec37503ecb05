// Before a rewind or a reseed destroys a former primary's divergent WAL (what it wrote after the fork point and
// the promoted cluster never got), a plain copy of its pg_wal files from the fork point on goes to a quarantine
// prefix in S3, with a manifest saying what it is. Plain files, not WAL-G's lz4: anyone can pg_waldump them.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { QuarantineRequest, QuarantineResult } from '../site-driver';
import { BadInputError, PreconditionFailedError, SiteUnreachableError } from '../../../workflows/contracts/errors';
import { formatLsn, parseLsn } from '../../../workflows/contracts/lsn';
import { clusterView, formerLeader, memberStates, needCluster, runAsOf, type RegionHandle } from './cluster-state';
import { findEndOfWal, localWalAccess, walFileRange, type WalAccess } from './former-primary';
import { probePort, readControlData, type ControlData } from './pg-control';
import { s3Client } from './s3-server';

export function validateQuarantine(req: QuarantineRequest): string {
  const bad = (msg: string) => new BadInputError(`quarantineWal: ${msg}`, { prefix: req.destination.prefix });
  parseLsn(req.fromLsn);
  if (!Number.isInteger(req.timeline) || req.timeline < 1) throw bad(`timeline ${req.timeline} is not a positive integer`);
  const prefix = req.destination.prefix.replace(/^\/+|\/+$/g, '');
  if (!prefix || prefix.split('/').some((p) => p === '' || p === '.' || p === '..')) throw bad(`prefix "${req.destination.prefix}" is not a clean key prefix`);
  return prefix;
}

/** The MD5 hex of an existing object (single-part PUT: its ETag), or null when absent. */
async function existingMd5(s3: S3Client, bucket: string, key: string): Promise<string | null> {
  try {
    const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return (h.ETag ?? '').replace(/"/g, '') || 'unknown';
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
    throw err;
  }
}

/**
 * Puts `body` at `key` unless an object with the same MD5 is there. A different object at that key is never
 * overwritten (it may be the only copy of something): the body goes next to it under `<key>.<md5 prefix>`.
 */
async function putOnce(s3: S3Client, bucket: string, key: string, body: Buffer): Promise<{ key: string; md5: string; wrote: boolean }> {
  const md5 = createHash('md5').update(body).digest();
  const hex = md5.toString('hex');
  for (const k of [key, `${key}.${hex.slice(0, 12)}`]) {
    const have = await existingMd5(s3, bucket, k);
    if (have === hex) return { key: k, md5: hex, wrote: false };
    if (have !== null) continue;
    // Content-MD5: the server refuses a body that arrived damaged.
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: body, ContentMD5: md5.toString('base64') }));
    return { key: k, md5: hex, wrote: true };
  }
  throw new PreconditionFailedError(`s3://${bucket}/${key} and its alternate both hold other content: not overwriting`, { bucket, key });
}

export async function quarantineWal(region: RegionHandle, name: string, req: QuarantineRequest): Promise<QuarantineResult> {
  validateQuarantine(req);
  const info = needCluster(region, name);
  const runAs = runAsOf(region);
  const open: string[] = [];
  for (const s of memberStates(region, info)) if (s.postgresRunning || (await probePort(s.member.pgPort)) !== 'refused') open.push(s.member.name);
  // A segment being written while it is read is a torn copy; and a running primary keeps diverging.
  if (open.length) {
    throw new PreconditionFailedError(`${region.name}/${name}: Postgres runs on ${open.join(', ')}: fence it before quarantining its WAL`, {
      cluster: name, running: open,
    });
  }
  const leader = await formerLeader(info, await clusterView(info), runAs);
  return quarantineFrom({
    site: region.name, cluster: name, member: leader.name,
    cd: await readControlData(leader.dataDir, runAs),
    wal: localWalAccess(leader.dataDir, runAs),
    read: async (f) => readFileSync(join(leader.dataDir, 'pg_wal', f)),
  }, req);
}

/** The former leader's WAL as the quarantine reads it: its control file, its pg_wal, and a file's bytes. */
export interface QuarantineSource {
  site: string;
  cluster: string;
  member: string;
  cd: ControlData | null;
  wal: WalAccess;
  read(file: string): Promise<Buffer>;
}

/** Copies the WAL files of `src` from the fork point on, and the manifest, to S3 (the caller checked Postgres is down). */
export async function quarantineFrom(src: QuarantineSource, req: QuarantineRequest): Promise<QuarantineResult> {
  const prefix = validateQuarantine(req);
  const { cd, site, cluster: name } = src;
  const from = parseLsn(req.fromLsn);
  // From the last checkpoint when it is on this timeline and not after the fork point (a known record start),
  // else from the fork point itself (pg_waldump skips to the next record).
  const start = cd?.checkpointLsn && cd.timeline === req.timeline && parseLsn(cd.checkpointLsn) <= from ? cd.checkpointLsn : req.fromLsn;
  const end = await findEndOfWal(src.wal, req.timeline, start);
  const endPos = end ? parseLsn(end) : null;

  // Segments beyond the end of WAL are recycled files holding old WAL: not divergent, left out. With the end
  // unknown every segment after the fork point is kept: too much is better than losing the one that mattered.
  const files = src.wal.files.filter((f) => {
    const r = walFileRange(f);
    if (!r || r.timeline !== req.timeline) return false;
    if (r.partial) return true;
    return r.end > from && (endPos === null || r.start < endPos);
  });

  const { bucket } = req.destination.s3;
  let s3: S3Client;
  try {
    s3 = await s3Client(req.destination.s3);
  } catch (err) {
    throw new SiteUnreachableError(`quarantine bucket ${bucket}: ${(err as Error).message}`, { bucket });
  }
  const objects: Array<{ key: string; file: string; bytes: number; md5: string }> = [];
  let changed = false;
  try {
    for (const f of files) {
      const body = await src.read(f);
      const put = await putOnce(s3, bucket, `${prefix}/${f}`, body);
      changed = changed || put.wrote;
      objects.push({ key: put.key, file: f, bytes: body.length, md5: put.md5 });
    }
    const manifest = {
      site,
      cluster: name,
      member: src.member,
      systemIdentifier: cd?.systemIdentifier ?? null,
      clusterState: cd?.state ?? null,
      timeline: req.timeline,
      fromLsn: formatLsn(from),
      endOfWal: end,
      objects,
    };
    // No timestamp inside: the same quarantine gives the same manifest, so a retry writes nothing.
    const m = await putOnce(s3, bucket, `${prefix}/quarantine.json`, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
    changed = changed || m.wrote;
    return {
      changed,
      objects: objects.map((o) => `s3://${bucket}/${o.key}`),
      bytes: objects.reduce((n, o) => n + o.bytes, 0),
      manifest: `s3://${bucket}/${m.key}`,
      endOfWal: end,
      divergentBytes: endPos === null ? null : Number(endPos > from ? endPos - from : 0n),
    };
  } catch (err) {
    if (err instanceof PreconditionFailedError) throw err;
    throw new SiteUnreachableError(`quarantine of ${site}/${name} to s3://${bucket}/${prefix}/: ${(err as Error).message}`, {
      cluster: name, bucket, prefix,
    });
  } finally {
    s3.destroy();
  }
}
