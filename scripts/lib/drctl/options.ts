// Option parsers: bad input fails in commander (exit 2, with what to fix) before anything is started.
// Cluster refs and LSNs go through the contracts' own parsers, so drctl refuses exactly what the runbooks refuse.
import { msToNumber } from '@temporalio/common/lib/time';
import { InvalidArgumentError } from 'commander';
import { parseClusterRef, sameCluster, zalandoClusterNameProblem } from '../../../workflows/contracts/clusters';
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

/** A site name, by the site rule of parseClusterRef. */
export const siteName = (field: string) => (value: string): string => {
  contract(() => parseClusterRef(`${value}/acid-x`, field));
  return value;
};

/** `a,b` or `eu/a,eu/b`: cluster names, each checked as the contracts check them. */
export const clusterList = (field: string) => (value: string, previous: string[] = []): string[] => {
  const names = value.split(',').map((v) => v.trim()).filter(Boolean);
  if (!names.length) throw new InvalidArgumentError(`${field} is empty: give cluster names, e.g. acid-a,acid-b`);
  for (const n of names) {
    if (n.includes('/')) {
      contract(() => parseClusterRef(n, field));
    } else {
      const problem = zalandoClusterNameProblem(n);
      if (problem) throw new InvalidArgumentError(problem);
    }
  }
  return [...previous, ...names];
};

/** A repeatable `key=value`, collected into one object. */
export const keyValue = (field: string, parseValue: (v: string) => unknown = (v) => v) =>
  (value: string, previous: Record<string, unknown> = {}): Record<string, any> => {
    const eq = value.indexOf('=');
    if (eq <= 0 || eq === value.length - 1) throw new InvalidArgumentError(`${field} "${value}" must be key=value`);
    return { ...previous, [value.slice(0, eq)]: parseValue(value.slice(eq + 1)) };
  };

export const integerAtLeast = (min: number) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`"${value}" is not an integer >= ${min}`);
  return n;
};

/** `schema.table` for a row-count check. */
export const tableName = (value: string, previous: string[] = []): string[] => {
  if (!/^[a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$]*$/.test(value)) {
    throw new InvalidArgumentError(`"${value}" must be <schema>.<table> in lower case, e.g. public.orders`);
  }
  return [...previous, value];
};

/** A duration with its unit (`90s`, `10m`, `24h`, `7d`), in milliseconds; Temporal reads the same format. */
export const duration = (field: string, minMs = 1000) => (value: string): number => {
  let ms: number;
  try {
    // A bare number would be read as milliseconds: too easy to get wrong for a schedule.
    ms = /^\d+(\.\d+)?\s*[a-z]+$/i.test(value.trim()) ? msToNumber(value.trim() as `${number}s`) : NaN;
  } catch {
    ms = NaN;
  }
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(`${field} "${value}" is not a duration with a unit, e.g. 90s, 10m, 24h, 7d`);
  if (ms < minMs) throw new InvalidArgumentError(`${field} "${value}" is shorter than ${formatDuration(minMs)}`);
  return ms;
};

/** 86400000 -> "1d", 5400000 -> "90m": the largest unit that divides it. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

// Temporal compiles a cron string on the server; these are its documented forms (ScheduleSpec.cronExpressions:
// 5, 6 or 7 fields, @yearly..@hourly, @every <interval>[/<phase>], a TZ= or CRON_TZ= prefix). Checking them here
// turns a typo into a usage error before anything is created; the server's own parse still has the last word.
const CRON_FIELDS = {
  5: ['minute', 'hour', 'day of month', 'month', 'day of week'],
  6: ['minute', 'hour', 'day of month', 'month', 'day of week', 'year'],
  7: ['second', 'minute', 'hour', 'day of month', 'month', 'day of week', 'year'],
} as const;
const CRON_LIMITS: Record<string, [number, number]> = {
  second: [0, 59], minute: [0, 59], hour: [0, 23], 'day of month': [1, 31], month: [1, 12], 'day of week': [0, 7], year: [1970, 2999],
};
const NAMED = new Set(['month', 'day of week']);

function cronFieldProblem(field: string, text: string): string | undefined {
  const [lo, hi] = CRON_LIMITS[field];
  for (const part of text.split(',')) {
    const m = /^(\*|\?|[0-9]+|[a-z]{3,9})(?:-([0-9]+|[a-z]{3,9}))?(?:\/([0-9]+))?$/i.exec(part);
    if (!m) return `${field} "${part}" is not a value, range (a-b), step (*/n) or list (a,b)`;
    for (const v of [m[1], m[2]]) {
      if (v === undefined || v === '*' || v === '?') continue;
      if (/^[a-z]/i.test(v)) {
        if (!NAMED.has(field)) return `${field} "${part}": names are only for months and days of the week`;
      } else if (Number(v) < lo || Number(v) > hi) {
        return `${field} "${part}": ${v} is outside ${lo}-${hi}`;
      }
    }
    if (m[3] !== undefined && Number(m[3]) < 1) return `${field} "${part}": a step must be at least 1`;
  }
  return undefined;
}

export const cronExpression = (value: string): string => {
  const text = value.trim().replace(/^(CRON_TZ|TZ)=\S+\s+/, '');
  const fail = (why: string) => new InvalidArgumentError(`cron "${value}": ${why}`);
  if (text.includes('#')) throw fail('no "#" comments: drctl keeps its own');
  if (/^@(yearly|annually|monthly|weekly|daily|hourly)$/.test(text)) return value.trim();
  if (text.startsWith('@every')) {
    if (!/^@every \d+[smhd](\/\d+[smhd])?$/.test(text)) throw fail('@every takes <n><s|m|h|d>[/<phase>], e.g. "@every 24h"');
    return value.trim();
  }
  const fields = text.split(/\s+/);
  const names = CRON_FIELDS[fields.length as 5 | 6 | 7];
  if (!names) throw fail(`has ${fields.length} fields; give 5 (minute hour day-of-month month day-of-week), 6 (+ year) or 7 (second first)`);
  for (let i = 0; i < names.length; i++) {
    const problem = cronFieldProblem(names[i], fields[i]);
    if (problem) throw fail(problem);
  }
  return value.trim();
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
