// Patroni's dynamic configuration (the `/service/<scope>/config` key) of a local cluster: read and patched
// through any member's REST API, or straight in etcd when no Patroni answers. The etcd path exists so a
// fence can still pause a cluster whose Patroni processes are dead, and so a later start of those processes
// comes up paused instead of starting Postgres and racing for the leader key.
import { SiteUnreachableError } from '../../../workflows/contracts/errors';
import type { LocalClusterInfo } from './cluster-files';
import { etcdGet, etcdPutIfUnchanged } from './etcd';
import { restUrl } from './members';
import { patroniGet } from './patroni-api';

export type DynamicConfig = Record<string, unknown>;
export type ConfigVia = 'patroni' | 'etcd';

const configKey = (scope: string) => `/service/${scope}/config`;
const leaderKey = (scope: string) => `/service/${scope}/leader`;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Patroni's patch_config: objects merge recursively, null removes a key, anything else replaces. */
export function mergePatch(target: Record<string, unknown>, patch: Record<string, unknown>): boolean {
  let changed = false;
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      if (k in target) {
        delete target[k];
        changed = true;
      }
    } else if (isObject(v) && isObject(target[k])) {
      changed = mergePatch(target[k] as Record<string, unknown>, v) || changed;
    } else if (isObject(v)) {
      const fresh: Record<string, unknown> = {};
      mergePatch(fresh, v);
      target[k] = fresh;
      changed = true;
    } else if (JSON.stringify(target[k]) !== JSON.stringify(v)) {
      target[k] = v;
      changed = true;
    }
  }
  return changed;
}

/** The dynamic config as the first answering member sees it, else from etcd; null when neither answers. */
export async function readDynamicConfig(
  info: LocalClusterInfo,
  etcdPort: number,
): Promise<{ config: DynamicConfig; via: ConfigVia } | null> {
  for (const m of info.members) {
    const c = await patroniGet<DynamicConfig>(restUrl(m), '/config');
    if (isObject(c)) return { config: c, via: 'patroni' };
  }
  const kv = await etcdGet(etcdPort, configKey(info.name)).catch(() => null);
  if (!kv) return null;
  return { config: JSON.parse(kv.value) as DynamicConfig, via: 'etcd' };
}

export async function patchViaPatroni(url: string, patch: DynamicConfig): Promise<DynamicConfig | null> {
  try {
    const r = await fetch(`${url}/config`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(patch),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    // 503: this Patroni cannot read the DCS; 409: the config moved under it. Both: try elsewhere or again.
    return r.status === 200 && text ? (JSON.parse(text) as DynamicConfig) : null;
  } catch {
    return null;
  }
}

/** Applies `patch` through the first member whose Patroni accepts it; null when none does. */
export async function patchThroughPatroni(info: LocalClusterInfo, patch: DynamicConfig): Promise<DynamicConfig | null> {
  for (const m of info.members) {
    const c = await patchViaPatroni(restUrl(m), patch);
    if (c) return c;
  }
  return null;
}

async function patchViaEtcd(scope: string, etcdPort: number, patch: DynamicConfig): Promise<DynamicConfig | null> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const kv = await etcdGet(etcdPort, configKey(scope)).catch(() => null);
    if (!kv) return null;
    const config = JSON.parse(kv.value) as DynamicConfig;
    if (!mergePatch(config, patch)) return config;
    if (await etcdPutIfUnchanged(etcdPort, configKey(scope), JSON.stringify(config), kv.modRevision).catch(() => false)) {
      return config;
    }
  }
  return null;
}

/**
 * Applies `patch` (Patroni PATCH semantics) through the first member that accepts it, else in etcd.
 * Throws SiteUnreachableError when neither Patroni nor etcd takes it.
 */
export async function patchDynamicConfig(
  info: LocalClusterInfo,
  etcdPort: number,
  patch: DynamicConfig,
): Promise<{ config: DynamicConfig; via: ConfigVia }> {
  const viaPatroni = await patchThroughPatroni(info, patch);
  if (viaPatroni) return { config: viaPatroni, via: 'patroni' };
  const c = await patchViaEtcd(info.name, etcdPort, patch);
  if (c) return { config: c, via: 'etcd' };
  throw new SiteUnreachableError(`cluster ${info.name}: neither Patroni nor etcd (port ${etcdPort}) accepted a config change`, {
    cluster: info.name,
    keys: Object.keys(patch),
  });
}

/** The member named by the cluster's leader key in etcd, or null when no member holds it. */
export async function leaderKeyHolder(info: LocalClusterInfo, etcdPort: number): Promise<string | null> {
  return (await etcdGet(etcdPort, leaderKey(info.name)))?.value ?? null;
}
