// Configuration of the incident-tool bridge: one JSON file naming where the shared secrets come from (an
// environment variable or a file, never the value itself), the allow-list of identities, the audit file and the
// replay windows. Secrets are held in `Secret`, which prints and serializes as "[secret]".
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { inspect } from 'node:util';

/** A shared secret. Its value never reaches a log, an error message or JSON. */
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

/** The config file as written. Relative paths are relative to the file's folder. */
export interface BridgeConfigFile extends SecretSource {
  listen?: { host?: string; port?: number };
  /** The allow-list (see AllowListFile). */
  allowListFile: string;
  /** Where every call is recorded, one JSON line each. */
  auditFile: string;
  /** How far X-DR-Timestamp may be from the bridge's clock, and how long a signature is remembered. Default 300. */
  windowSeconds?: number;
  /** How long a call may wait for Temporal before the bridge answers 504. Default 15. */
  temporalTimeoutSeconds?: number;
  /** The PagerDuty v3 webhook route; absent: the route answers 404. */
  pagerduty?: SecretSource & {
    /** How old event.occurred_at may be, and how long an event id is remembered. Default: windowSeconds. */
    windowSeconds?: number;
  };
}

export interface BridgeConfig {
  listen: { host: string; port: number };
  secret: Secret;
  allowListFile: string;
  auditFile: string;
  windowSeconds: number;
  temporalTimeoutSeconds: number;
  pagerduty: { secret: Secret; windowSeconds: number } | null;
}

export class BridgeConfigError extends Error {}

const MIN_SECRET_BYTES = 16;

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

/** Checks a config object and reads its secrets. `baseDir` resolves relative paths. */
export function resolveBridgeConfig(file: BridgeConfigFile, baseDir: string, env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  const path = (p: unknown, field: string) => {
    if (typeof p !== 'string' || p.trim() === '') throw new BridgeConfigError(`${field} is missing: give a path`);
    return isAbsolute(p) ? p : resolve(baseDir, p);
  };
  const windowSeconds = positive(file.windowSeconds, 'windowSeconds', 300);
  const port = file.listen?.port ?? 8787;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new BridgeConfigError('listen.port must be a port number');
  const config: BridgeConfig = {
    listen: { host: file.listen?.host ?? '127.0.0.1', port },
    secret: readSecret(file, 'the bridge secret', baseDir, env),
    allowListFile: path(file.allowListFile, 'allowListFile'),
    auditFile: path(file.auditFile, 'auditFile'),
    windowSeconds,
    temporalTimeoutSeconds: positive(file.temporalTimeoutSeconds, 'temporalTimeoutSeconds', 15),
    pagerduty: file.pagerduty
      ? {
        secret: readSecret(file.pagerduty, 'pagerduty', baseDir, env),
        windowSeconds: positive(file.pagerduty.windowSeconds, 'pagerduty.windowSeconds', windowSeconds),
      }
      : null,
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
