// The sandbox's OpenID Connect provider (oidc-provider, ESM-only, hence its own node process). It stands in for a
// company IdP on loopback: discovery, JWKS, and a password grant for the sandbox's users only, which answers with an
// ID token carrying the user's groups and the nonce the client sent. Production never runs this file.
//
//   node oidc-issuer-server.mjs <state-dir>
// <state-dir>/issuer.json  { "issuer": "http://127.0.0.1:<port>", "port": <port>, "clients": [...] }
// <state-dir>/jwks.json    private signing keys, newest first (0600); SIGHUP reloads them (key rotation)
// <state-dir>/users.json   { "users": { "<name>": { "password", "groups", "name", "email" } } } (0600), read per request
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import Provider, { errors } from 'oidc-provider';

const stateDir = process.argv[2];
if (!stateDir) {
  console.error('usage: oidc-issuer-server.mjs <state-dir>');
  process.exit(2);
}
const readJson = (name) => JSON.parse(readFileSync(join(stateDir, name), 'utf8'));
const settings = readJson('issuer.json');
const ID_TOKEN_SECONDS = settings.idTokenSeconds ?? 600;

// Compares digests so that neither the length nor the content of a wrong password shows in the timing.
const samePassword = (given, expected) =>
  timingSafeEqual(createHash('sha256').update(String(given)).digest(), createHash('sha256').update(String(expected)).digest());

function findUser(username) {
  const { users } = readJson('users.json');
  return Object.hasOwn(users, username) ? users[username] : undefined;
}

async function passwordGrant(ctx) {
  const { username, password, nonce } = ctx.oidc.params;
  const scopes = new Set(String(ctx.oidc.params.scope ?? 'openid').split(' '));
  if (!scopes.has('openid')) throw new errors.InvalidScope('the password grant of this issuer needs the openid scope', 'openid');
  const user = username ? findUser(username) : undefined;
  // The same answer for an unknown user and a wrong password: the issuer does not tell which names exist.
  if (!user || !password || !samePassword(password, user.password)) throw new errors.InvalidGrant('invalid username or password');
  const { client } = ctx.oidc;
  const provider = ctx.oidc.provider;
  const grant = new provider.Grant({ accountId: username, clientId: client.clientId });
  grant.addOIDCScope('openid');
  const grantId = await grant.save();
  const accessToken = new provider.AccessToken({ accountId: username, client, grantId, scope: 'openid', gty: 'password' });
  const idToken = new provider.IdToken({ sub: username }, { ctx });
  idToken.scope = 'openid';
  idToken.set('groups', user.groups ?? []);
  if (user.name) idToken.set('name', user.name);
  if (user.email) idToken.set('email', user.email);
  if (nonce) idToken.set('nonce', String(nonce));
  idToken.set('auth_time', Math.floor(Date.now() / 1000));
  // A token id, as many IdPs set, so that an approval can refuse the same token used twice.
  idToken.set('jti', randomUUID());
  ctx.body = {
    access_token: await accessToken.save(),
    token_type: 'Bearer',
    expires_in: accessToken.expiration,
    scope: 'openid',
    id_token: await idToken.issue({ use: 'idtoken' }),
  };
}

function buildProvider() {
  const { keys } = readJson('jwks.json');
  const provider = new Provider(settings.issuer, {
    clients: settings.clients,
    jwks: { keys },
    features: { devInteractions: { enabled: false }, introspection: { enabled: false }, revocation: { enabled: false } },
    claims: { openid: ['sub'], profile: ['name'], email: ['email'], groups: ['groups'] },
    scopes: ['openid', 'profile', 'email', 'groups'],
    ttl: { IdToken: ID_TOKEN_SECONDS, AccessToken: ID_TOKEN_SECONDS, Grant: ID_TOKEN_SECONDS },
    cookies: { keys: [settings.cookieKey] },
    findAccount: (ctx, sub) => (findUser(sub) ? { accountId: sub, claims: () => ({ sub }) } : undefined),
    renderError: (ctx, out) => {
      ctx.type = 'application/json';
      ctx.body = out;
    },
  });
  provider.registerGrantType('password', passwordGrant, ['username', 'password', 'nonce', 'scope']);
  provider.on('server_error', (ctx, err) => console.error(`server_error: ${err?.stack ?? err}`));
  return provider;
}

let current = buildProvider();
let handler = current.callback();
const server = createServer((req, res) => handler(req, res));
server.listen(settings.port, '127.0.0.1', () => console.log(`issuer ${settings.issuer} listening`));

process.on('SIGHUP', () => {
  try {
    current = buildProvider();
    handler = current.callback();
    console.log('signing keys reloaded');
  } catch (err) {
    console.error(`keeping the old keys: cannot reload them: ${err?.message ?? err}`);
  }
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
