// Who runs drctl, proven: the user `drctl login` names, and a fresh ID token of that user bound to one purpose by its
// nonce (one gate's decision, or one run's start). Against the sandbox the password comes from the sandbox's users
// file; anywhere else it is asked for without echo (never an option: argv is world readable).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadSites } from '../../../activities/sites/sites-file';
import { IdentityProviderUnreachableError } from '../../../workflows/contracts/errors';
import type { IdentityConfig } from '../../../workflows/contracts/identity';
import { LoginRefusedError, obtainIdToken } from '../identity/id-token-client';
import { readStoredIdToken, type StoredIdToken } from '../identity/token-cache';
import type { SandboxUsersFile } from '../sandbox/oidc-issuer';
import { CliError } from './output';

export function pickIssuer(identity: IdentityConfig | undefined, sitesPath: string, wanted?: string): IdentityConfig['issuers'][number] {
  if (!identity) throw new CliError('usage', `the sites file ${sitesPath} has no "identity" section: no issuer to log in to`);
  if (wanted) {
    const entry = identity.issuers.find((i) => i.issuer === wanted);
    if (!entry) throw new CliError('usage', `--issuer ${wanted} is not in the identity section of ${sitesPath} (known: ${identity.issuers.map((i) => i.issuer).join(', ')})`);
    return entry;
  }
  if (identity.issuers.length > 1) throw new CliError('usage', `the sites file lists ${identity.issuers.length} issuers: choose one with --issuer`);
  return identity.issuers[0];
}

/** The sandbox writes its users file beside its sites file; it counts only for the issuer it names. */
export function sandboxPassword(sitesPath: string, issuer: string, user: string): string | null {
  const file = join(dirname(sitesPath), 'identity', 'users.json');
  if (!existsSync(file)) return null;
  const users = JSON.parse(readFileSync(file, 'utf8')) as SandboxUsersFile;
  return users.issuer === issuer ? users.users[user]?.password ?? null : null;
}

/** A password typed at the terminal without echo, or the first line of stdin when it is not a terminal. */
export async function askPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').split('\n')[0];
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new CliError('usage', 'login cancelled'));
        typed = ch === '\u007f' ? typed.slice(0, -1) : typed + ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** The password of `user` at `issuer`: the sandbox's users file when the sites file is the sandbox's, else asked. */
export async function passwordOf(sitesPath: string, issuer: string, user: string): Promise<string> {
  const password = sandboxPassword(sitesPath, issuer, user) ?? await askPassword(`password of ${user} at ${issuer}: `);
  if (password === '') throw new CliError('usage', `no password given for ${user}`);
  return password;
}

/** An ID token of `user` with `nonce`, the issuer's refusal or silence turned into drctl's exit codes. */
export async function idTokenFor(opts: { issuer: string; clientId: string; user: string; password: string; nonce: string }): Promise<string> {
  try {
    return await obtainIdToken({ issuer: opts.issuer, clientId: opts.clientId, username: opts.user, password: opts.password, nonce: opts.nonce });
  } catch (err) {
    if (err instanceof LoginRefusedError) throw new CliError('refused', err.message);
    if (err instanceof IdentityProviderUnreachableError) throw new CliError('connect', err.message);
    throw err;
  }
}

/** Who `drctl login` logged in (null when nobody has); a login from before it kept the user's name is no login. */
export function loggedIn(): (StoredIdToken & { username: string }) | null {
  let stored: StoredIdToken | null;
  try {
    stored = readStoredIdToken();
  } catch (err) {
    throw new CliError('usage', (err as Error).message);
  }
  if (!stored?.username) return null;
  return stored as StoredIdToken & { username: string };
}

/**
 * A fresh ID token of the logged-in user whose nonce is `nonce`, or null when nobody is logged in. The issuer must
 * still be one the sites file (DR_SITES_FILE, else the one logged in with) trusts.
 */
export async function tokenOfLoggedInUser(nonce: string): Promise<{ token: string; user: string; issuer: string } | null> {
  const login = loggedIn();
  if (!login) return null;
  const sites = loadSites(process.env.DR_SITES_FILE ?? login.sitesFile);
  if (!sites.identity?.issuers.some((i) => i.issuer === login.issuer && i.audience === login.clientId)) {
    throw new CliError('usage', `you logged in at ${login.issuer} (client ${login.clientId}), which the sites file ${sites.path} does not trust: drctl login again`);
  }
  const password = await passwordOf(sites.path, login.issuer, login.username);
  const token = await idTokenFor({ issuer: login.issuer, clientId: login.clientId, user: login.username, password, nonce });
  return { token, user: login.username, issuer: login.issuer };
}
