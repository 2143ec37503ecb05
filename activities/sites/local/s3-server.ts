// A real S3 server on loopback: versitygw with its posix backend (each bucket a folder, each object a plain
// file), one root account. The keys reach versitygw through its environment, never its argv (argv is world
// readable in /proc).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateBucketCommand, HeadBucketCommand, ListObjectsV2Command, S3Client, type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { fromIni, fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { S3ArchiveConfig } from '../sites-file';
import { BadInputError, SiteUnreachableError } from '../../../workflows/contracts/errors';
import { isAlive, startProcess, stopProcess } from './processes';
import { CHILD_PATH, versitygwBin } from './tools';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Set for temporary credentials (STS, web identity, SSO): without it their key pair is refused. */
  sessionToken?: string;
}

/** Keys of the profile named by the site config (shared credentials file), or the SDK default chain. */
export async function resolveS3Credentials(s3: S3ArchiveConfig): Promise<S3Credentials> {
  const provider = s3.profile || s3.credentialsFile
    ? fromIni({ profile: s3.profile, filepath: s3.credentialsFile, ignoreCache: true })
    : fromNodeProviderChain();
  try {
    const c = await provider();
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) };
  } catch (err) {
    throw new BadInputError(
      `cannot resolve S3 credentials (profile ${s3.profile ?? '(default)'}${s3.credentialsFile ? ` in ${s3.credentialsFile}` : ''}): ${(err as Error).message}`,
      { profile: s3.profile ?? null, credentialsFile: s3.credentialsFile ?? null },
    );
  }
}

export async function s3Client(s3: S3ArchiveConfig): Promise<S3Client> {
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: s3.forcePathStyle ?? false,
    credentials: await resolveS3Credentials(s3),
    maxAttempts: 2,
  });
}

export interface S3ServerSpec {
  /** Root of the posix backend: buckets are its sub-folders. */
  dataDir: string;
  /** Listens on 127.0.0.1:port only. */
  port: number;
  credentials: S3Credentials;
  logFile: string;
  pidFile: string;
}

export async function startS3Server(spec: S3ServerSpec): Promise<{ changed: boolean; endpoint: string }> {
  const endpoint = `http://127.0.0.1:${spec.port}`;
  mkdirSync(spec.dataDir, { recursive: true, mode: 0o700 });
  const { changed } = await startProcess({
    name: `versitygw:${spec.port}`,
    cmd: versitygwBin(),
    args: ['--port', `127.0.0.1:${spec.port}`, '--health', '/health', '--quiet', 'posix', spec.dataDir],
    env: {
      PATH: CHILD_PATH,
      HOME: '/root',
      ROOT_ACCESS_KEY_ID: spec.credentials.accessKeyId,
      ROOT_SECRET_ACCESS_KEY: spec.credentials.secretAccessKey,
    },
    cwd: spec.dataDir,
    logFile: spec.logFile,
    pidFile: spec.pidFile,
  });
  await waitS3Healthy(endpoint, 20_000);
  return { changed, endpoint };
}

/**
 * Starts the S3 server that `s3.endpoint` names (it must be http://127.0.0.1:<port>), with the keys of the
 * config's profile as root account, keeping objects under `<dir>/objects`.
 */
export async function startS3ServerFor(s3: S3ArchiveConfig, dir: string): Promise<{ changed: boolean; endpoint: string }> {
  const m = /^http:\/\/127\.0\.0\.1:(\d+)\/?$/.exec(s3.endpoint ?? '');
  if (!m) throw new BadInputError(`a local S3 server needs an endpoint http://127.0.0.1:<port>, not ${s3.endpoint ?? '(none)'}`);
  return startS3Server({
    dataDir: join(dir, 'objects'),
    port: Number(m[1]),
    credentials: await resolveS3Credentials(s3),
    logFile: join(dir, 'versitygw.log'),
    pidFile: join(dir, 'versitygw.pid'),
  });
}

export async function stopS3Server(pidFile: string): Promise<{ changed: boolean }> {
  const { changed } = await stopProcess(pidFile, { signal: 'SIGTERM', timeoutMs: 10_000 });
  return { changed };
}

export function s3ServerRunning(pidFile: string): boolean {
  return isAlive(pidFile);
}

export async function s3Healthy(endpoint: string): Promise<boolean> {
  try {
    const r = await fetch(`${endpoint.replace(/\/$/, '')}/health`, { signal: AbortSignal.timeout(2_000) });
    return r.ok;
  } catch {
    return false;
  }
}

async function waitS3Healthy(endpoint: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await s3Healthy(endpoint)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new SiteUnreachableError(`S3 server at ${endpoint} did not become healthy in ${timeoutMs} ms`, { endpoint });
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export async function ensureBucket(s3: S3ArchiveConfig): Promise<{ changed: boolean }> {
  const client = await s3Client(s3);
  try {
    try {
      await client.send(new HeadBucketCommand({ Bucket: s3.bucket }));
      return { changed: false };
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
    }
    try {
      await client.send(new CreateBucketCommand({ Bucket: s3.bucket }));
    } catch (err) {
      const name = (err as Error).name;
      // Lost a race with another creator: the bucket is there, which is all that was asked.
      if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') return { changed: false };
      throw err;
    }
    return { changed: true };
  } catch (err) {
    if (err instanceof BadInputError) throw err;
    throw new SiteUnreachableError(`S3 bucket ${s3.bucket} at ${s3.endpoint ?? 'AWS'}: ${(err as Error).message}`, {
      bucket: s3.bucket,
      endpoint: s3.endpoint ?? null,
    });
  } finally {
    client.destroy();
  }
}

/** Every key under `prefix` (no leading slash), following continuation tokens. */
export async function listKeys(s3: S3ArchiveConfig, bucket: string, prefix: string): Promise<string[]> {
  const client = await s3Client(s3);
  const keys: string[] = [];
  try {
    let token: string | undefined;
    do {
      const page: ListObjectsV2CommandOutput = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    client.destroy();
  }
  return keys;
}
