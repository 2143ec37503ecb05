// verifyIdToken refuses every token that does not prove who decides, with one sentence that names the problem and
// never quotes the token. Tokens come from the test sandbox's real issuer, from a second real issuer, or are signed
// here with jose (with the issuer's own key, read from the sandbox folder, where a forgery needs a valid signature).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, UnsecuredJWT, type JWK } from 'jose';
import { verifyIdToken } from '../../activities/identity/verify-id-token';
import { obtainIdToken } from '../../scripts/lib/identity/id-token-client';
import { startIssuer, stopIssuer, usersFileOf, type IssuerSpec, type SandboxUsersFile } from '../../scripts/lib/sandbox/oidc-issuer';
import { IdentityProviderUnreachableError, IdentityRefusedError } from '../../workflows/contracts/errors';
import type { IdentityConfig } from '../../workflows/contracts/identity';
import { sandboxIdentity, sandboxIdToken, sandboxUsers } from '../helpers/identity';
import { testLayout } from '../helpers/test-env';

const now = () => Math.floor(Date.now() / 1000);

/** The sandbox issuer's current signing key (a private JWK from its 0600 key file). */
function issuerSigningKey(): JWK {
  return (JSON.parse(readFileSync(join(testLayout().dir, 'identity', 'jwks.json'), 'utf8')) as { keys: JWK[] }).keys[0];
}

async function signAsIssuer(claims: Record<string, unknown>, key: JWK = issuerSigningKey()): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: key.kid }).sign(await importJWK(key, 'RS256'));
}

/** The refusal verifyIdToken throws: typed, final, and free of any part of the token. */
async function refusal(token: string, expect_: { nonce?: string } = {}, cfg: IdentityConfig = sandboxIdentity()): Promise<IdentityRefusedError> {
  const err = await verifyIdToken(cfg, token, expect_).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(IdentityRefusedError);
  const refused = err as IdentityRefusedError;
  expect(refused.retryable).toBe(false);
  const text = `${refused.message} ${JSON.stringify(refused.facts)}`;
  if (token.length > 8) expect(text).not.toContain(token);
  for (const part of token.split('.').filter((p) => p.length > 8)) expect(text).not.toContain(part);
  expect(refused.message.split(/\.\s/).length).toBe(1);
  return refused;
}

describe('verifyIdToken refuses', () => {
  const foreign: IssuerSpec = { dir: join(testLayout().dir, 'identity-foreign'), port: testLayout().portBase + 4101 };
  beforeAll(async () => { await startIssuer(foreign); });
  afterAll(async () => { await stopIssuer(foreign); });

  test('an expired token signed by the issuer itself', async () => {
    const { issuer } = sandboxUsers();
    const token = await signAsIssuer({ iss: issuer, aud: 'drctl', sub: 'alice', groups: ['dr-approvers'], iat: now() - 3600, exp: now() - 1800 });
    expect((await refusal(token)).message).toMatch(/^the ID token from http:\/\/127\.0\.0\.1:\d+ expired at \d{4}-/);
  });

  test('a token issued longer ago than maxTokenAgeSeconds, though not expired', async () => {
    const { issuer } = sandboxUsers();
    const token = await signAsIssuer({ iss: issuer, aud: 'drctl', sub: 'alice', iat: now() - 900, exp: now() + 300 });
    expect((await refusal(token)).message).toMatch(/too old/);
  });

  test('a token from another real OpenID provider that is not configured', async () => {
    const other = JSON.parse(readFileSync(usersFileOf(foreign), 'utf8')) as SandboxUsersFile;
    expect(other.issuer).not.toBe(sandboxUsers().issuer);
    const token = await obtainIdToken({ issuer: other.issuer, clientId: other.clientId, username: 'alice', password: other.users.alice.password });
    expect((await refusal(token)).message).toMatch(/foreign issuer "http:\/\/127\.0\.0\.1:\d+"/);
  });

  test('a token claiming the sandbox issuer but signed with a key it does not publish', async () => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const forged = { ...(await exportJWK(privateKey)), kid: 'attacker-key' };
    const claims = { iss: sandboxUsers().issuer, aud: 'drctl', sub: 'carol', groups: ['dba-leads'], iat: now(), exp: now() + 300 };
    expect((await refusal(await signAsIssuer(claims, forged))).message).toMatch(/signed with a key .* does not publish \(bad signature\)/);
    // The same forgery naming the issuer's real key id: the signature itself fails.
    const sameKid = { ...forged, kid: issuerSigningKey().kid };
    expect((await refusal(await signAsIssuer(claims, sameKid))).message).toMatch(/signature does not verify .* \(bad signature\)/);
  });

  test('a token issued to another client (wrong audience)', async () => {
    const cfg: IdentityConfig = { issuers: [{ issuer: sandboxUsers().issuer, audience: 'approvals-prod' }] };
    const err = await refusal(await sandboxIdToken('alice'), {}, cfg);
    expect(err.message).toMatch(/not issued to this service \(audience is not "approvals-prod"\)/);
  });

  test('a nonce that is not the one the decision asked for, or none at all', async () => {
    expect((await refusal(await sandboxIdToken('bob', 'gate-a'), { nonce: 'gate-b' })).message).toMatch(/nonce mismatch/);
    expect((await refusal(await sandboxIdToken('bob'), { nonce: 'gate-b' })).message).toMatch(/nonce mismatch/);
  });

  test('a real token whose payload was edited (groups added)', async () => {
    const [header, payload, signature] = (await sandboxIdToken('mallory')).split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(claims.groups).toEqual([]);
    const edited = Buffer.from(JSON.stringify({ ...claims, groups: ['dr-approvers', 'dba-leads'] })).toString('base64url');
    expect((await refusal(`${header}.${edited}.${signature}`)).message).toMatch(/\(bad signature\)/);
  });

  test('an unsigned token (alg none), and an HMAC one', async () => {
    const claims = { iss: sandboxUsers().issuer, aud: 'drctl', sub: 'mallory', groups: ['dr-approvers'], iat: now(), exp: now() + 300 };
    const unsigned = new UnsecuredJWT(claims).encode();
    expect((await refusal(unsigned)).message).toMatch(/signed with "none", not one of RS256, ES256, EdDSA/);
    const hmac = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('drctl'.repeat(8)));
    expect((await refusal(hmac)).message).toMatch(/signed with "HS256", not one of/);
  });

  test('something that is not a JWT', async () => {
    for (const junk of ['', 'not-a-token', 'a.b.c', `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.x.y.z.w`]) {
      expect((await refusal(junk)).message).toMatch(/^the ID token is not a JWT/);
    }
  });
});

describe('verifyIdToken and an issuer that does not answer', () => {
  test('says so with a retryable error, not a refusal', async () => {
    const silent = `http://127.0.0.1:${testLayout().portBase + 4102}`;
    const cfg: IdentityConfig = { issuers: [{ issuer: silent, audience: 'drctl' }] };
    const token = await signAsIssuer({ iss: silent, aud: 'drctl', sub: 'alice', iat: now(), exp: now() + 300 });
    const err = await verifyIdToken(cfg, token, {}).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityProviderUnreachableError);
    expect((err as IdentityProviderUnreachableError).retryable).toBe(true);
    expect((err as Error).message).toMatch(/did not serve its discovery document/);
    expect((err as Error).message).not.toContain(token);
  });
});
