// Option parsers: bad input fails in commander (exit 2, with what to fix) before anything is started.
// Cluster refs and LSNs go through the contracts' own parsers, so drctl refuses exactly what the runbooks refuse.
import { InvalidArgumentError } from 'commander';
import { parseClusterRef, sameCluster } from '../../../workflows/contracts/clusters';
import { parseLsn } from '../../../workflows/contracts/lsn';
import { CliError } from './output';

function contract<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** `<site>/<cluster>`, checked by parseClusterRef. */
export const clusterRef = (field: string) => (value: string): string => {
  contract(() => parseClusterRef(value, field));
  return value;
};

export const lsn = (value: string): string => {
  contract(() => parseLsn(value));
  return value;
};

export const positiveSeconds = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`"${value}" is not a positive number of seconds`);
  return n;
};

export const nonNegativeNumber = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a number >= 0`);
  return n;
};

export const positiveInteger = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return n;
};

/** Two refs that must name different clusters (and, when `otherSite`, be at different sites). */
export function distinctClusters(a: { flag: string; ref: string }, b: { flag: string; ref: string }, otherSite = false): void {
  const ra = parseClusterRef(a.ref, a.flag);
  const rb = parseClusterRef(b.ref, b.flag);
  if (sameCluster(ra, rb)) throw new CliError('usage', `${a.flag} and ${b.flag} are both "${a.ref}": name two different clusters`);
  if (otherSite && ra.site === rb.site) {
    throw new CliError('usage', `${a.flag} and ${b.flag} are both at site "${ra.site}": a standby belongs in another region`);
  }
}

/** Drops undefined fields, so the runbook applies its own defaults (and the input shows only what was asked). */
export function compact<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const inner = compact(v as Record<string, unknown>);
      if (Object.keys(inner).length) out[k] = inner;
    } else {
      out[k] = v;
    }
  }
  return out as T;
}
