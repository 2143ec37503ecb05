// drctl login: an ID token from the identity provider the sites file names, verified here as the worker would
// verify it, kept in the user's cache (0600) with who logged in: approve, reject and start then ask the issuer for
// tokens of that user bound to one gate or run. Against the sandbox the password comes from the sandbox's users
// file; anywhere else it is asked for (never an option: argv is world readable).
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { verifyIdToken } from '../../../activities/identity/verify-id-token';
import { loadSites } from '../../../activities/sites/sites-file';
import { IdentityRefusedError } from '../../../workflows/contracts/errors';
import { storeIdToken } from '../identity/token-cache';
import type { Register } from './context';
import { CliError } from './output';
import { idTokenFor, passwordOf, pickIssuer } from './user-token';

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
    const password = await passwordOf(sites.path, issuer, user);
    const nonce = randomBytes(16).toString('base64url');
    const token = await idTokenFor({ issuer, clientId: audience, user, password, nonce });
    let id;
    try {
      id = await verifyIdToken(sites.identity!, token, { nonce });
    } catch (err) {
      if (err instanceof IdentityRefusedError) throw new CliError('refused', `the issuer's token does not verify: ${err.message}`);
      throw err;
    }
    const file = storeIdToken({ issuer, clientId: audience, token, username: user, sitesFile: sites.path });
    out.progress(`token kept in ${file} (0600)`);
    return {
      ok: true,
      data: { subject: id.subject, groups: id.groups, issuer: id.issuer, expiresAt: id.expiresAt },
      human: `logged in as ${id.subject} (${id.groups.join(', ') || 'no groups'}) at ${id.issuer}, until ${id.expiresAt}`,
    };
  });
}
