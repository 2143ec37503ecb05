// The test sandbox's OpenID provider is a real one: it serves discovery and its keys, and its password grant gives
// an ID token with the user's groups and the nonce asked for, or refuses a wrong password.
import { readFileSync, statSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { obtainIdToken, LoginRefusedError } from '../../scripts/lib/identity/id-token-client';
import { loadSites } from '../../activities/sites/sites-file';
import { verifyIdToken } from '../../activities/identity/verify-id-token';
import { sandboxUsersFile } from '../../scripts/lib/sandbox/oidc-issuer';
import { sandboxIdentity, sandboxIdToken, sandboxUsers } from '../helpers/identity';
import { testLayout } from '../helpers/test-env';

describe('the sandbox OIDC issuer', () => {
  test('serves its discovery document and a JWKS of public signing keys', async () => {
    const { issuer } = sandboxUsers();
    expect(issuer).toBe(`http://127.0.0.1:${testLayout().portBase + 4100}`);
    const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>;
    expect(discovery.issuer).toBe(issuer);
    expect(discovery.grant_types_supported).toContain('password');
    const jwks = await (await fetch(String(discovery.jwks_uri))).json() as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) {
      expect(key.kid).toEqual(expect.any(String));
      // Public halves only: no private RSA or EC parameter is ever served.
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(key).not.toHaveProperty(priv);
    }
  });

  test('the users file is 0600 and the sites file names the issuer', () => {
    expect(statSync(sandboxUsersFile(testLayout())).mode & 0o777).toBe(0o600);
    expect(loadSites(testLayout().sitesFile).identity).toEqual(sandboxIdentity());
  });

  test("alice's token verifies with her groups and the nonce she asked for", async () => {
    const token = await sandboxIdToken('alice', 'gate-nonce-1');
    const claims = decodeJwt(token);
    expect(claims.aud).toBe('drctl');
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(600);
    const id = await verifyIdToken(sandboxIdentity(), token, { nonce: 'gate-nonce-1' });
    expect(id).toMatchObject({ issuer: sandboxUsers().issuer, subject: 'alice', groups: ['dr-approvers'], email: 'alice@sandbox.invalid' });
    expect(new Date(id.expiresAt).getTime()).toBeGreaterThan(Date.now());
    expect(id.tokenId).toEqual(expect.any(String));
    const carol = await verifyIdToken(sandboxIdentity(), await sandboxIdToken('carol'), {});
    expect(carol.groups).toEqual(['dr-approvers', 'dba-leads']);
    const mallory = await verifyIdToken(sandboxIdentity(), await sandboxIdToken('mallory'), {});
    expect(mallory.groups).toEqual([]);
  });

  test('a wrong password or an unknown user is refused by the issuer, without saying which', async () => {
    const { issuer, clientId, users } = sandboxUsers();
    const wrong = obtainIdToken({ issuer, clientId, username: 'alice', password: `${users.alice.password}x` });
    await expect(wrong).rejects.toThrow(LoginRefusedError);
    await expect(wrong).rejects.toThrow(/refused the login of alice: wrong username or password/);
    await expect(obtainIdToken({ issuer, clientId, username: 'eve', password: users.alice.password }))
      .rejects.toThrow(/refused the login of eve: wrong username or password/);
    // Another user's password does not open alice's account either.
    await expect(obtainIdToken({ issuer, clientId, username: 'alice', password: users.bob.password })).rejects.toThrow(LoginRefusedError);
  });

  test('the passwords are random per sandbox and never in the sites file', () => {
    const { users } = sandboxUsers();
    const passwords = Object.values(users).map((u) => u.password);
    expect(new Set(passwords).size).toBe(passwords.length);
    const sites = readFileSync(testLayout().sitesFile, 'utf8');
    for (const p of passwords) expect(sites).not.toContain(p);
  });
});
