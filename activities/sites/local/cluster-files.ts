// The persisted shape of a local cluster (`<dataDir>/clusters/<name>/cluster.json`) and the region lock that
// serialises port allocation between concurrent activities.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { S3ArchiveConfig } from '../sites-file';
import { BadInputError, NotReadyError } from '../../../workflows/contracts/errors';
import { writeFileAtomic } from './fs-util';

export interface StandbySpec {
  fromArchive?: {
    s3: S3ArchiveConfig;
    /** s3://bucket/spilo/<src>/<uid>/wal/15 */
    walPrefix: string;
    /** Default: the newest complete backup by timeline and LSN, resolved and pinned at creation. */
    backupName?: string;
  };
  fromHost?: { host: string; port: number };
  /** The source's permanent slot this standby streams through (`primary_slot_name`); absent before slots existed. */
  slotName?: string;
  /** The source cluster as `<site>/<cluster>`, so later runbooks (promote, failback) know where it came from. */
  sourceRef?: string;
  /** The source's system identifier and timeline seen at provisioning: a promotion checks the data descends from it. */
  sourceSystemIdentifier?: string;
  sourceTimeline?: number;
}

export interface CreateLocalClusterSpec {
  /** Zalando-style name, e.g. 'acid-demo' (Patroni scope = name). */
  name: string;
  /** Like metadata.uid; generated when absent, persisted. */
  uid?: string;
  pgVersion: 15;
  /** Default 2 (leader + replica). */
  members?: number;
  /** Archive WAL and allow base backups with WAL-G to THIS site's bucket, Spilo layout. */
  archive: boolean;
  /** Application users to create with random passwords (source clusters only). */
  users?: string[];
  standby?: StandbySpec;
  /** Like metadata.labels: selectors and tiers of region-failover read them. */
  labels?: Record<string, string>;
  /** A drill's throwaway: `drill/<site>/<cluster>` of the drill (the only one allowed to delete it). */
  drill?: string;
}

export interface LocalMemberInfo {
  name: string;
  pgPort: number;
  restPort: number;
  dataDir: string;
}

export interface LocalClusterInfo {
  name: string;
  uid: string;
  pgVersion: 15;
  site: string;
  archive: boolean;
  /** This cluster's OWN WAL-G prefix (s3://.../wal/15), null when it does not archive. */
  archivePrefix: string | null;
  members: LocalMemberInfo[];
  standby: StandbySpec | null;
  /** What `standby` held before a native demotion of the running primary (native-demote.ts), restored if it is undone. */
  standbyBeforeDemotion?: StandbySpec | null;
  /** The source backup the standby leader was (or will be) restored from. */
  bootstrapBackup: string | null;
  users: string[];
  /** Absent in cluster files written before labels existed. */
  labels?: Record<string, string>;
  /** Set only on a drill's throwaway: `drill/<site>/<cluster>` of the drill that created it. */
  drill?: string;
  createdAt: string;
}

export const clustersDir = (dataDir: string): string => join(dataDir, 'clusters');
export const clusterDir = (dataDir: string, name: string): string => join(clustersDir(dataDir), name);

export function readClusterFile(dataDir: string, name: string): LocalClusterInfo | null {
  const f = join(clusterDir(dataDir, name), 'cluster.json');
  if (!existsSync(f)) return null;
  return JSON.parse(readFileSync(f, 'utf8')) as LocalClusterInfo;
}

export function writeClusterFile(dataDir: string, info: LocalClusterInfo): void {
  writeFileAtomic(join(clusterDir(dataDir, info.name), 'cluster.json'), JSON.stringify(info, null, 2) + '\n', 0o644);
}

export function listClusterFiles(dataDir: string): LocalClusterInfo[] {
  const d = clustersDir(dataDir);
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .filter((n) => !n.startsWith('.'))
    .map((n) => readClusterFile(dataDir, n))
    .filter((c): c is LocalClusterInfo => c !== null)
    .sort((a, b) => a.name.localeCompare(b.name));
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** `count` ports from the range, skipping those held by other clusters of the region and those bound now. */
export async function allocatePorts(
  dataDir: string,
  range: { first: number; last: number },
  count: number,
  reserved: number[],
): Promise<number[]> {
  const used = new Set<number>(reserved);
  for (const c of listClusterFiles(dataDir)) for (const m of c.members) used.add(m.pgPort).add(m.restPort);
  const out: number[] = [];
  for (let p = range.first; p <= range.last && out.length < count; p++) {
    if (!used.has(p) && (await portFree(p))) out.push(p);
  }
  if (out.length < count) {
    throw new BadInputError(`memberPorts ${range.first}-${range.last} has fewer than ${count} free ports`, { range });
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function lockHolderAlive(lockFile: string): boolean {
  try {
    const pid = Number(readFileSync(lockFile, 'utf8').trim());
    if (!pid) return false;
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A cross-process lock file (O_EXCL) with stale-holder detection by pid. */
export async function withRegionLock<T>(dataDir: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  mkdirSync(clustersDir(dataDir), { recursive: true });
  const lock = join(clustersDir(dataDir), '.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!lockHolderAlive(lock)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new NotReadyError(`region lock ${lock} held for more than ${timeoutMs} ms`);
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
