// Starts, stops and rotates the sandbox's OpenID Connect provider (oidc-issuer-server.mjs, its own node process).
// Its users, their random passwords and its signing keys live in 0600 files in the sandbox folder: sandbox only.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../activities/sites/local/fs-util';
import { alivePid, isAlive, startProcess, stopProcess } from '../../../activities/sites/local/processes';
import { CHILD_PATH } from '../../../activities/sites/local/tools';
import { sandboxIssuerUrl, SANDBOX_OIDC_CLIENT_ID, type SandboxLayout } from './layout';

export interface IssuerSpec {
  /** State folder: issuer.json, jwks.json, users.json, the log and the pid file. */
  dir: string;
  port: number;
}

export interface SandboxUser {
  password: string;
  groups: string[];
  name: string;
  email: string;
}

/** The users file: who may log in to the sandbox issuer, for drctl login and the tests. */
export interface SandboxUsersFile {
  issuer: string;
  clientId: string;
  users: Record<string, SandboxUser>;
}

/** The sandbox's people: approvers, DBA leads, and someone in no group at all. */
export const SANDBOX_PEOPLE: Record<string, { groups: string[]; name: string }> = {
  alice: { groups: ['dr-approvers'], name: 'Alice Approver' },
  bob: { groups: ['dr-approvers'], name: 'Bob Approver' },
  carol: { groups: ['dr-approvers', 'dba-leads'], name: 'Carol Lead' },
  dana: { groups: ['dba-leads'], name: 'Dana Lead' },
  mallory: { groups: [], name: 'Mallory Nogroup' },
};

export const sandboxIssuerSpec = (layout: SandboxLayout): IssuerSpec => ({ dir: join(layout.dir, 'identity'), port: layout.oidcPort });
export const issuerUrlOf = (spec: IssuerSpec) => `http://127.0.0.1:${spec.port}`;
export const usersFileOf = (spec: IssuerSpec) => join(spec.dir, 'users.json');
const jwksFileOf = (spec: IssuerSpec) => join(spec.dir, 'jwks.json');
const pidFileOf = (spec: IssuerSpec) => join(spec.dir, 'issuer.pid');

/** The sandbox's users file (exists once the sandbox issuer has been started). */
export function sandboxUsersFile(layout: SandboxLayout): string {
  return usersFileOf(sandboxIssuerSpec(layout));
}

function newSigningKey(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

/** Writes what the issuer needs, keeping users, passwords and keys that already exist (idempotent). */
export function ensureIssuerFiles(spec: IssuerSpec): void {
  mkdirSync(spec.dir, { recursive: true, mode: 0o700 });
  const issuer = issuerUrlOf(spec);
  const existing = existsSync(usersFileOf(spec)) ? (JSON.parse(readFileSync(usersFileOf(spec), 'utf8')) as SandboxUsersFile) : null;
  const users: Record<string, SandboxUser> = {};
  for (const [name, person] of Object.entries(SANDBOX_PEOPLE)) {
    users[name] = {
      password: existing?.users[name]?.password ?? randomBytes(12).toString('base64url'),
      groups: person.groups,
      name: person.name,
      email: `${name}@sandbox.invalid`,
    };
  }
  const usersFile: SandboxUsersFile = { issuer, clientId: SANDBOX_OIDC_CLIENT_ID, users };
  writeFileAtomic(usersFileOf(spec), `${JSON.stringify(usersFile, null, 2)}\n`, 0o600);
  if (!existsSync(jwksFileOf(spec))) writeFileAtomic(jwksFileOf(spec), `${JSON.stringify({ keys: [newSigningKey()] })}\n`, 0o600);
  const settings = {
    issuer,
    port: spec.port,
    idTokenSeconds: 600,
    cookieKey: existsSync(join(spec.dir, 'issuer.json'))
      ? (JSON.parse(readFileSync(join(spec.dir, 'issuer.json'), 'utf8')) as { cookieKey: string }).cookieKey
      : randomBytes(24).toString('base64url'),
    // drctl is a public client (no secret): in the sandbox it uses the password grant, for the sandbox only.
    clients: [{
      client_id: SANDBOX_OIDC_CLIENT_ID, token_endpoint_auth_method: 'none', grant_types: ['password'], response_types: [], redirect_uris: [],
    }],
  };
  writeFileAtomic(join(spec.dir, 'issuer.json'), `${JSON.stringify(settings, null, 2)}\n`, 0o600);
}

async function discoveryServed(issuer: string): Promise<boolean> {
  try {
    const r = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(2_000) });
    return r.ok;
  } catch {
    return false;
  }
}

async function poll(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

export async function startIssuer(spec: IssuerSpec): Promise<{ changed: boolean; issuer: string }> {
  ensureIssuerFiles(spec);
  const issuer = issuerUrlOf(spec);
  const { changed } = await startProcess({
    name: `oidc-issuer:${spec.port}`,
    cmd: process.execPath,
    args: [join(__dirname, 'oidc-issuer-server.mjs'), spec.dir],
    env: { PATH: CHILD_PATH, NODE_ENV: 'production' },
    cwd: spec.dir,
    logFile: join(spec.dir, 'issuer.log'),
    pidFile: pidFileOf(spec),
  });
  await poll(`OIDC issuer ${issuer} serving its discovery document`, 20_000, () => discoveryServed(issuer));
  return { changed, issuer };
}

export async function stopIssuer(spec: IssuerSpec): Promise<{ changed: boolean }> {
  const { changed } = await stopProcess(pidFileOf(spec), { signal: 'SIGTERM', timeoutMs: 10_000 });
  return { changed };
}

export function issuerRunning(spec: IssuerSpec): boolean {
  return isAlive(pidFileOf(spec));
}

async function publishedKids(issuer: string): Promise<string[]> {
  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
  const jwks = (await (await fetch(discovery.jwks_uri)).json()) as { keys: Array<{ kid: string }> };
  return jwks.keys.map((k) => k.kid);
}

/**
 * Rotates the signing key the way an IdP does: a new key signs from now on; the previous one stays published
 * (tokens it signed are still valid until they expire); older ones are dropped. Returns the new key's id.
 */
export async function rotateIssuerKey(spec: IssuerSpec): Promise<string> {
  const pid = alivePid(pidFileOf(spec));
  if (pid === null) throw new Error(`the OIDC issuer in ${spec.dir} is not running`);
  const { keys } = JSON.parse(readFileSync(jwksFileOf(spec), 'utf8')) as { keys: Array<Record<string, unknown>> };
  const next = newSigningKey();
  writeFileAtomic(jwksFileOf(spec), `${JSON.stringify({ keys: [next, keys[0]] })}\n`, 0o600);
  process.kill(pid, 'SIGHUP');
  const issuer = issuerUrlOf(spec);
  await poll(`OIDC issuer ${issuer} publishing key ${String(next.kid)}`, 20_000, async () => (await publishedKids(issuer).catch((): string[] => [])).includes(String(next.kid)));
  return String(next.kid);
}

/** The sandbox's issuer (started by `scripts/sandbox up` and the test suite's global setup). */
export const startSandboxIssuer = (layout: SandboxLayout) => startIssuer(sandboxIssuerSpec(layout));
export const stopSandboxIssuer = (layout: SandboxLayout) => stopIssuer(sandboxIssuerSpec(layout));
export const sandboxIssuerRunning = (layout: SandboxLayout) => issuerRunning(sandboxIssuerSpec(layout));
export { sandboxIssuerUrl };
