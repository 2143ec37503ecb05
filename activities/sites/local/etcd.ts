// One single-node etcd 3.4 per region. Patroni talks to it through the v3 gRPC gateway (`etcd3:` section);
// the v2 API is enabled too so that older tooling (patronictl with `etcd:`) can still look.
import { join } from 'node:path';
import { SiteUnreachableError } from '../../../workflows/contracts/errors';
import { mkdirOwned } from './fs-util';
import { isAlive, startProcess, stopProcess } from './processes';
import { CHILD_PATH, etcdBin } from './tools';

export interface EtcdSpec {
  name: string;
  dir: string;
  clientPort: number;
  peerPort: number;
  logFile: string;
}

export const etcdPidFile = (spec: EtcdSpec): string => join(spec.dir, 'etcd.pid');

export async function startEtcd(spec: EtcdSpec): Promise<{ changed: boolean }> {
  mkdirOwned(spec.dir, 0o700);
  const client = `http://127.0.0.1:${spec.clientPort}`;
  const peer = `http://127.0.0.1:${spec.peerPort}`;
  const { changed } = await startProcess({
    name: `etcd:${spec.name}`,
    cmd: etcdBin(),
    args: [
      '--name', spec.name,
      '--data-dir', join(spec.dir, 'data'),
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `${spec.name}=${peer}`,
      '--initial-cluster-token', `region-${spec.name}`,
      '--initial-cluster-state', 'new',
      '--enable-v2=true',
      // A sandbox region: a small backend, history compacted hourly.
      '--quota-backend-bytes', String(512 * 1024 * 1024),
      '--auto-compaction-retention', '1',
    ],
    env: { PATH: CHILD_PATH, HOME: '/root' },
    cwd: spec.dir,
    logFile: spec.logFile,
    pidFile: etcdPidFile(spec),
  });
  const deadline = Date.now() + 30_000;
  while (!(await etcdHealthy(spec.clientPort))) {
    if (Date.now() > deadline) {
      throw new SiteUnreachableError(`etcd of region ${spec.name} not healthy 30 s after start (see ${spec.logFile})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { changed };
}

export async function stopEtcd(spec: EtcdSpec): Promise<{ changed: boolean }> {
  const { changed } = await stopProcess(etcdPidFile(spec), { signal: 'SIGTERM', timeoutMs: 15_000 });
  return { changed };
}

export function etcdRunning(spec: EtcdSpec): boolean {
  return isAlive(etcdPidFile(spec));
}

export async function etcdHealthy(clientPort: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${clientPort}/health`, { signal: AbortSignal.timeout(2_000) });
    if (!r.ok) return false;
    const body = (await r.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

/** Deletes every v3 key under `prefix` (a Patroni scope's leftovers); returns how many were deleted. */
export async function etcdDeletePrefix(clientPort: number, prefix: string): Promise<number> {
  const end = Buffer.from(prefix);
  end[end.length - 1] += 1;
  let r: Response;
  try {
    r = await fetch(`http://127.0.0.1:${clientPort}/v3/kv/deleterange`, {
      method: 'POST',
      body: JSON.stringify({ key: b64(prefix), range_end: b64(end) }),
      signal: AbortSignal.timeout(5_000),
    });
  } catch (err) {
    throw new SiteUnreachableError(`etcd on port ${clientPort}: ${(err as Error).message}`);
  }
  if (!r.ok) throw new SiteUnreachableError(`etcd deleterange ${prefix}: HTTP ${r.status}`);
  const body = (await r.json()) as { deleted?: string };
  return Number(body.deleted ?? 0);
}

/** Deletes one v3 key (no range: a key named like it with a suffix stays); true when it existed. */
export async function etcdDeleteKey(clientPort: number, key: string): Promise<boolean> {
  const body = await etcdPost<{ deleted?: string }>(clientPort, 'kv/deleterange', { key: b64(key) });
  return Number(body.deleted ?? 0) > 0;
}

/** Number of v3 keys under `prefix`. */
export async function etcdCountPrefix(clientPort: number, prefix: string): Promise<number> {
  const end = Buffer.from(prefix);
  end[end.length - 1] += 1;
  const r = await fetch(`http://127.0.0.1:${clientPort}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: b64(prefix), range_end: b64(end), count_only: true }),
    signal: AbortSignal.timeout(5_000),
  });
  if (!r.ok) throw new SiteUnreachableError(`etcd range ${prefix}: HTTP ${r.status}`);
  const body = (await r.json()) as { count?: string };
  return Number(body.count ?? 0);
}

async function etcdPost<T>(clientPort: number, path: string, body: unknown): Promise<T> {
  let r: Response;
  try {
    r = await fetch(`http://127.0.0.1:${clientPort}/v3/${path}`, {
      method: 'POST',
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
  } catch (err) {
    throw new SiteUnreachableError(`etcd on port ${clientPort}: ${(err as Error).message}`);
  }
  if (!r.ok) throw new SiteUnreachableError(`etcd ${path}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

/** One v3 key with its mod_revision (for a compare-and-swap), or null when absent. */
export async function etcdGet(clientPort: number, key: string): Promise<{ value: string; modRevision: string } | null> {
  const body = await etcdPost<{ kvs?: Array<{ value?: string; mod_revision?: string }> }>(clientPort, 'kv/range', { key: b64(key) });
  const kv = body.kvs?.[0];
  if (!kv) return null;
  return { value: Buffer.from(kv.value ?? '', 'base64').toString('utf8'), modRevision: String(kv.mod_revision ?? '0') };
}

/** Puts `value` only if the key still has `modRevision` (what Patroni's own config writes do); false when it moved. */
export async function etcdPutIfUnchanged(clientPort: number, key: string, value: string, modRevision: string): Promise<boolean> {
  const body = await etcdPost<{ succeeded?: boolean }>(clientPort, 'kv/txn', {
    compare: [{ key: b64(key), result: 'EQUAL', target: 'MOD', mod_revision: modRevision }],
    success: [{ request_put: { key: b64(key), value: b64(value) } }],
  });
  return body.succeeded === true;
}
