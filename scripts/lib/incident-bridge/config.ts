// Configuration of the incident-tool bridge: one JSON file naming every caller by key id (each with its own secret,
// from an environment variable or a file, never the value itself) and the identity that key proves, the PagerDuty
// subscriptions, the allow-list, the audit file, the replay store and the windows and rate limits. Secrets are held
// in `Secret`, which prints and serializes as "[secret]".
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { inspect } from 'node:util';

/** A caller's secret. Its value never reaches a log, an error message or JSON. */
export class Secret {
  readonly #value: Buffer;
  constructor(value: Buffer) {
    this.#value = value;
  }
  /** The key bytes, for createHmac only. */
  key(): Buffer {
    return this.#value;
  }
  toJSON(): string {
    return '[secret]';
  }
  toString(): string {
    return '[secret]';
  }
  [inspect.custom](): string {
    return '[secret]';
  }
}

/** Where a secret comes from: an environment variable or a file (first line, trailing whitespace dropped). */
export interface SecretSource {
  secretEnv?: string;
  secretFile?: string;
}

/** At most `max` authenticated requests per caller in a fixed window of `windowSeconds`. */
export interface RateLimit {
  max: number;
  windowSeconds: number;
}

/** A caller of the generic route, by its key id (the X-DR-Key-Id header). */
export interface CallerFile extends SecretSource {
  /** The identity this key proves, as the allow-list names it (e.g. "opsgenie:prod"). */
  identity: string;
  rateLimit?: RateLimit;
}

/** The config file as written. Relative paths are relative to the file's folder. */
export interface BridgeConfigFile {
  listen?: { host?: string; port?: number };
  /** Key id -> the caller's identity and its own secret. Every integration gets its own key. */
  callers: Record<string, CallerFile>;
  /** The allow-list (see AllowListFile). */
  allowListFile: string;
  /** Where every call is recorded, one JSON line each. */
  auditFile: string;
  /** Where used delivery ids are kept until their window has passed, so a restart does not forget them. */
  replayStoreDir: string;
  /** How far X-DR-Timestamp may be from the bridge's clock. Default 300. */
  windowSeconds?: number;
  /** The default per-caller limit. Default 60 requests in 60 s. */
  rateLimit?: RateLimit;
  /** How long a call may wait for Temporal before the bridge answers 504. Default 15. */
  temporalTimeoutSeconds?: number;
  /** The PagerDuty v3 webhook route; absent: the route answers 404. */
  pagerduty?: {
    /** Subscription id -> its own secret (PagerDuty makes one per webhook subscription). */
    subscriptions: Record<string, SecretSource & { rateLimit?: RateLimit }>;
    /** How old event.occurred_at may be, and how long an event id is remembered. Default: windowSeconds. */
    windowSeconds?: number;
  };
}

/** A verified key: who it proves, and its limit. */
export interface CallerKey {
  keyId: string;
  identity: string;
  secret: Secret;
  rateLimit: RateLimit;
}

export interface BridgeConfig {
  listen: { host: string; port: number };
  callers: Map<string, CallerKey>;
  allowListFile: string;
  auditFile: string;
  replayStoreDir: string;
  windowSeconds: number;
  temporalTimeoutSeconds: number;
  pagerduty: { subscriptions: CallerKey[]; windowSeconds: number } | null;
}

export class BridgeConfigError extends Error {}

const MIN_SECRET_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

function readSecret(src: SecretSource, what: string, baseDir: string, env: NodeJS.ProcessEnv): Secret {
  if (src.secretEnv && src.secretFile) throw new BridgeConfigError(`${what}: give secretEnv or secretFile, not both`);
  let value: string;
  if (src.secretEnv) {
    const v = env[src.secretEnv];
    if (!v) throw new BridgeConfigError(`${what}: the environment variable ${src.secretEnv} named by secretEnv is not set`);
    value = v;
  } else if (src.secretFile) {
    const path = isAbsolute(src.secretFile) ? src.secretFile : resolve(baseDir, src.secretFile);
    try {
      value = readFileSync(path, 'utf8').split('\n')[0].trimEnd();
    } catch (err) {
      throw new BridgeConfigError(`${what}: cannot read secretFile ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  } else {
    throw new BridgeConfigError(`${what}: name the secret with secretEnv (an environment variable) or secretFile (a path)`);
  }
  const key = Buffer.from(value, 'utf8');
  if (key.length < MIN_SECRET_BYTES) throw new BridgeConfigError(`${what}: the secret is shorter than ${MIN_SECRET_BYTES} bytes`);
  return new Secret(key);
}

function positive(v: unknown, field: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new BridgeConfigError(`${field} must be a positive number of seconds`);
  return v;
}

function rateLimitOf(v: RateLimit | undefined, field: string, dflt: RateLimit): RateLimit {
  if (v === undefined) return dflt;
  if (!v || typeof v !== 'object' || !Number.isInteger(v.max) || v.max < 1) throw new BridgeConfigError(`${field}.max must be a whole number of requests, at least 1`);
  return { max: v.max, windowSeconds: positive(v.windowSeconds, `${field}.windowSeconds`, 60) };
}

/** A shared secret defeats per-caller keys: whoever holds it could sign as either caller. */
function refuseSharedSecrets(keys: CallerKey[]): void {
  for (let i = 0; i < keys.length; i++) {
    for (let j = i + 1; j < keys.length; j++) {
      if (keys[i].secret.key().equals(keys[j].secret.key())) {
        throw new BridgeConfigError(`keys "${keys[i].keyId}" and "${keys[j].keyId}" have the same secret: give every caller its own`);
      }
    }
  }
}

function readCallers(file: BridgeConfigFile, baseDir: string, env: NodeJS.ProcessEnv, dfltLimit: RateLimit): Map<string, CallerKey> {
  const legacy = file as { secretEnv?: unknown; secretFile?: unknown };
  if (legacy.secretEnv !== undefined || legacy.secretFile !== undefined) {
    throw new BridgeConfigError('one shared secret for every caller is no longer accepted: remove the top-level secretEnv/secretFile and give each ' +
      'caller its own key under "callers": {"<key id>": {"identity": "...", "secretEnv" or "secretFile": "..."}}');
  }
  const entries = file.callers && typeof file.callers === 'object' && !Array.isArray(file.callers) ? Object.entries(file.callers) : null;
  if (!entries) throw new BridgeConfigError('"callers" is missing: {"<key id>": {"identity": "...", "secretEnv" or "secretFile": "..."}}, one per integration');
  const callers = new Map<string, CallerKey>();
  for (const [keyId, c] of entries) {
    if (!KEY_ID.test(keyId)) throw new BridgeConfigError(`caller key id "${keyId}": use 1-64 letters, digits, ".", "_", ":" or "-"`);
    if (!c || typeof c.identity !== 'string' || c.identity.trim() === '') throw new BridgeConfigError(`caller "${keyId}" needs an "identity" (as the allow-list names it)`);
    callers.set(keyId, {
      keyId, identity: c.identity.trim(), secret: readSecret(c, `caller "${keyId}"`, baseDir, env),
      rateLimit: rateLimitOf(c.rateLimit, `callers.${keyId}.rateLimit`, dfltLimit),
    });
  }
  return callers;
}

function readPagerDuty(file: BridgeConfigFile, baseDir: string, env: NodeJS.ProcessEnv, dfltLimit: RateLimit, windowSeconds: number): BridgeConfig['pagerduty'] {
  const pd = file.pagerduty;
  if (!pd) return null;
  const legacy = pd as { secretEnv?: unknown; secretFile?: unknown };
  if (legacy.secretEnv !== undefined || legacy.secretFile !== undefined || !pd.subscriptions || typeof pd.subscriptions !== 'object') {
    throw new BridgeConfigError('pagerduty: name each webhook subscription with its own secret: "subscriptions": {"<subscription id>": {"secretEnv" or "secretFile": "..."}}');
  }
  const subscriptions = Object.entries(pd.subscriptions).map(([id, s]): CallerKey => {
    if (!KEY_ID.test(id)) throw new BridgeConfigError(`pagerduty subscription id "${id}": use 1-64 letters, digits, ".", "_", ":" or "-"`);
    return { keyId: id, identity: `pagerduty-subscription:${id}`, secret: readSecret(s ?? {}, `pagerduty subscription "${id}"`, baseDir, env),
      rateLimit: rateLimitOf(s?.rateLimit, `pagerduty.subscriptions.${id}.rateLimit`, dfltLimit) };
  });
  if (subscriptions.length === 0) throw new BridgeConfigError('pagerduty.subscriptions is empty: name at least one subscription, or leave "pagerduty" out');
  return { subscriptions, windowSeconds: positive(pd.windowSeconds, 'pagerduty.windowSeconds', windowSeconds) };
}

/** Checks a config object and reads its secrets. `baseDir` resolves relative paths. */
export function resolveBridgeConfig(file: BridgeConfigFile, baseDir: string, env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  const path = (p: unknown, field: string) => {
    if (typeof p !== 'string' || p.trim() === '') throw new BridgeConfigError(`${field} is missing: give a path`);
    return isAbsolute(p) ? p : resolve(baseDir, p);
  };
  const windowSeconds = positive(file.windowSeconds, 'windowSeconds', 300);
  const port = file.listen?.port ?? 8787;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new BridgeConfigError('listen.port must be a port number');
  const dfltLimit = rateLimitOf(file.rateLimit, 'rateLimit', { max: 60, windowSeconds: 60 });
  const callers = readCallers(file, baseDir, env, dfltLimit);
  const pagerduty = readPagerDuty(file, baseDir, env, dfltLimit, windowSeconds);
  refuseSharedSecrets([...callers.values(), ...(pagerduty?.subscriptions ?? [])]);
  const config: BridgeConfig = {
    listen: { host: file.listen?.host ?? '127.0.0.1', port },
    callers,
    allowListFile: path(file.allowListFile, 'allowListFile'),
    auditFile: path(file.auditFile, 'auditFile'),
    replayStoreDir: path(file.replayStoreDir, 'replayStoreDir'),
    windowSeconds,
    temporalTimeoutSeconds: positive(file.temporalTimeoutSeconds, 'temporalTimeoutSeconds', 15),
    pagerduty,
  };
  // Fail at start, not at the first call, when the allow-list is unusable.
  new AllowList(config.allowListFile).current();
  return config;
}

export function loadBridgeConfig(path: string, env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BridgeConfigError(`cannot read the bridge config ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let file: BridgeConfigFile;
  try {
    file = JSON.parse(text) as BridgeConfigFile;
  } catch (err) {
    throw new BridgeConfigError(`the bridge config ${path} is not JSON: ${(err as Error).message}`);
  }
  return resolveBridgeConfig(file, dirname(resolve(path)), env);
}

// ---- the allow-list ----

export type BridgeAction = 'approve' | 'reject' | 'start';
export const BRIDGE_ACTIONS: readonly BridgeAction[] = ['approve', 'reject', 'start'];

export interface Permission {
  /** "approve", "reject", "start", or a list of them; "*" for all. */
  action: BridgeAction | '*' | BridgeAction[];
  /** Runbook names (e.g. "promote", "failback-reseed"); "*" for all. */
  runbooks: string[];
  /** Sites of the cluster the run is about (the site in the workflow ID); "*" for all. */
  sites: string[];
}

export interface AllowListFile {
  identities: Record<string, {
    /** Recorded as the approver of every decision this identity takes. */
    approver: string;
    may: Permission[];
  }>;
}

function checkAllowList(v: unknown, path: string): AllowListFile {
  const bad = (why: string) => new BridgeConfigError(`allow-list ${path}: ${why}`);
  const ids = (v as AllowListFile | null)?.identities;
  if (!ids || typeof ids !== 'object' || Array.isArray(ids)) throw bad('needs an object "identities"');
  for (const [id, entry] of Object.entries(ids)) {
    if (!entry || typeof entry.approver !== 'string' || entry.approver.trim() === '') throw bad(`identity "${id}" needs an "approver"`);
    if (!Array.isArray(entry.may)) throw bad(`identity "${id}" needs a list "may"`);
    for (const p of entry.may) {
      const actions = Array.isArray(p?.action) ? p.action : [p?.action];
      if (!actions.every((a) => a === '*' || BRIDGE_ACTIONS.includes(a as BridgeAction))) {
        throw bad(`identity "${id}": action must be one of ${BRIDGE_ACTIONS.join(', ')} or "*"`);
      }
      if (!Array.isArray(p.runbooks) || !p.runbooks.every((r) => typeof r === 'string')) throw bad(`identity "${id}": "runbooks" must be a list of names`);
      if (!Array.isArray(p.sites) || !p.sites.every((s) => typeof s === 'string')) throw bad(`identity "${id}": "sites" must be a list of sites`);
    }
  }
  return v as AllowListFile;
}

export type Authorization = { ok: true; approver: string } | { ok: false; reason: string };

/** The allow-list file, re-read when it changes, so a revoked identity is refused at once. */
export class AllowList {
  private cached: { mtimeMs: number; size: number; list: AllowListFile } | null = null;
  constructor(readonly path: string) {}

  current(): AllowListFile {
    const st = statSync(this.path);
    if (!this.cached || this.cached.mtimeMs !== st.mtimeMs || this.cached.size !== st.size) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(this.path, 'utf8'));
      } catch (err) {
        throw new BridgeConfigError(`allow-list ${this.path} is not JSON: ${(err as Error).message}`);
      }
      this.cached = { mtimeMs: st.mtimeMs, size: st.size, list: checkAllowList(parsed, this.path) };
    }
    return this.cached.list;
  }

  authorize(identity: string, action: BridgeAction, runbook: string, site: string): Authorization {
    const entry = Object.prototype.hasOwnProperty.call(this.current().identities, identity) ? this.current().identities[identity] : undefined;
    if (!entry) return { ok: false, reason: `identity "${identity}" is not in the allow-list` };
    const has = (list: string[], v: string) => list.includes('*') || list.includes(v);
    const allowed = entry.may.some((p) => {
      const actions = Array.isArray(p.action) ? p.action : [p.action];
      return (actions.includes('*') || actions.includes(action)) && has(p.runbooks, runbook) && has(p.sites, site);
    });
    if (!allowed) return { ok: false, reason: `identity "${identity}" may not ${action} ${runbook} runs at site "${site}"` };
    return { ok: true, approver: entry.approver.trim() };
  }
}
