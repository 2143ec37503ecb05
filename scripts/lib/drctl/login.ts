// drctl login: an ID token from the identity provider the sites file names, verified here as the worker would
// verify it, kept in the user's cache (0600) for approve/reject. Against the sandbox the password comes from the
// sandbox's users file; anywhere else it is asked for (never an option: argv is world readable).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { verifyIdToken } from '../../../activities/identity/verify-id-token';
import { loadSites } from '../../../activities/sites/sites-file';
import { IdentityProviderUnreachableError, IdentityRefusedError } from '../../../workflows/contracts/errors';
import type { IdentityConfig } from '../../../workflows/contracts/identity';
import { LoginRefusedError, obtainIdToken } from '../identity/id-token-client';
import { storeIdToken } from '../identity/token-cache';
import type { SandboxUsersFile } from '../sandbox/oidc-issuer';
import type { Register } from './context';
import { CliError } from './output';

function pickIssuer(identity: IdentityConfig | undefined, sitesPath: string, wanted?: string): IdentityConfig['issuers'][number] {
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
function sandboxPassword(sitesPath: string, issuer: string, user: string): string | null {
  const file = join(dirname(sitesPath), 'identity', 'users.json');
  if (!existsSync(file)) return null;
  const users = JSON.parse(readFileSync(file, 'utf8')) as SandboxUsersFile;
  return users.issuer === issuer ? users.users[user]?.password ?? null : null;
}

/** A password typed at the terminal without echo, or the first line of stdin when it is not a terminal. */
async function askPassword(prompt: string): Promise<string> {
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

export function defineLoginCommand(program: Command, register: Register): void {
  const cmd = program.command('login')
    .description('get an ID token from the identity provider of the sites file (the sandbox\'s own issuer there), for approve/reject')
    .requiredOption('--user <name>', 'who logs in (sandbox: alice, bob, carol, dana, mallory)')
    .option('--issuer <url>', 'which issuer of the sites file\'s identity section (needed when it lists several)')
    .option('--sites <file>', 'sites file (default: DR_SITES_FILE)');
  register(cmd, async ({ out, opts }) => {
    const sites = loadSites(opts.sites);
    const { issuer, audience } = pickIssuer(sites.identity, sites.path, opts.issuer);
    const user = String(opts.user);
    const password = sandboxPassword(sites.path, issuer, user) ?? await askPassword(`password of ${user} at ${issuer}: `);
    if (password === '') throw new CliError('usage', `no password given for ${user}`);
    const nonce = randomBytes(16).toString('base64url');
    let token: string;
    try {
      token = await obtainIdToken({ issuer, clientId: audience, username: user, password, nonce });
    } catch (err) {
      if (err instanceof LoginRefusedError) throw new CliError('refused', err.message);
      if (err instanceof IdentityProviderUnreachableError) throw new CliError('connect', err.message);
      throw err;
    }
    let id;
    try {
      id = await verifyIdToken(sites.identity!, token, { nonce });
    } catch (err) {
      if (err instanceof IdentityRefusedError) throw new CliError('refused', `the issuer's token does not verify: ${err.message}`);
      throw err;
    }
    const file = storeIdToken({ issuer, clientId: audience, token });
    out.progress(`token kept in ${file} (0600)`);
    return {
      ok: true,
      data: { subject: id.subject, groups: id.groups, issuer: id.issuer, expiresAt: id.expiresAt },
      human: `logged in as ${id.subject} (${id.groups.join(', ') || 'no groups'}) at ${id.issuer}, until ${id.expiresAt}`,
    };
  });
}
