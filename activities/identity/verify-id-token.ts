// Verifies an OpenID Connect ID token against its issuer's published keys (jose), so that an approval records who
// decided as the issuer proved it, never a typed name. Runs in an activity: key fetches are side effects, and the
// verified result lands in history, so replay stays deterministic and survives a later key rotation.
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { IdentityProviderUnreachableError, IdentityRefusedError } from '../../workflows/contracts/errors';
import { discoveredEndpoint } from './discovery';
import {
  DEFAULT_CLOCK_TOLERANCE_SECONDS, DEFAULT_GROUPS_CLAIM, DEFAULT_MAX_TOKEN_AGE_SECONDS, findIssuer,
  type IdentityConfig, type VerifiedIdentity,
} from '../../workflows/contracts/identity';

/** Asymmetric algorithms only: `none` and HMAC (a shared secret anyone holding the client id's secret could use) never. */
export const ALLOWED_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];
/** Least time between two JWKS fetches an unknown key id may cause (an attacker's random kids cannot flood the IdP). */
const JWKS_COOLDOWN_MS = 2_000;
const HTTP_TIMEOUT_MS = 5_000;
const MAX_TOKEN_LENGTH = 16_384;

type RemoteKeys = ReturnType<typeof createRemoteJWKSet>;
/** Per issuer in this process: its discovery document's JWKS, fetched again when an unknown key id shows up. */
const keySets = new Map<string, Promise<RemoteKeys>>();

const refused = (message: string, facts: Record<string, unknown> = {}) => new IdentityRefusedError(message, facts);

/** An issuer URL taken from an unverified token, safe to quote in one line. */
const quoted = (s: unknown) => JSON.stringify(String(s).slice(0, 200));

async function discoverKeys(issuer: string): Promise<RemoteKeys> {
  const jwksUri = await discoveredEndpoint(issuer, 'jwks_uri', HTTP_TIMEOUT_MS);
  return createRemoteJWKSet(new URL(jwksUri), { cooldownDuration: JWKS_COOLDOWN_MS, timeoutDuration: HTTP_TIMEOUT_MS });
}

function keysOf(issuer: string): Promise<RemoteKeys> {
  let keys = keySets.get(issuer);
  if (!keys) {
    keys = discoverKeys(issuer);
    keySets.set(issuer, keys);
    // A failed discovery is not cached: the next approval asks the issuer again.
    keys.catch(() => keySets.delete(issuer));
  }
  return keys;
}

/** Header and payload before any signature check: only to pick the issuer and give clear refusals. */
function inspect(token: string): { alg: unknown; iss: unknown } {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) {
    throw refused('the ID token is not a JWT (expected header.payload.signature)', { reason: 'not-a-jwt' });
  }
  try {
    return { alg: decodeProtectedHeader(token).alg, iss: decodeJwt(token).iss };
  } catch {
    throw refused('the ID token is not a JWT (its header or payload is not base64url JSON)', { reason: 'not-a-jwt' });
  }
}

/** Turns jose's verdict into one sentence that names what is wrong; anything not about the token means "try again". */
function explain(err: unknown, issuer: string, audience: string): Error {
  const e = err as { code?: string; claim?: string; message?: string; payload?: JWTPayload };
  const facts = { issuer, reason: e.code ?? 'unknown' };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      // jose reports a token older than maxTokenAge as expired too, naming the "iat" claim.
      if (e.claim === 'iat') return refused(`the ID token from ${issuer} is too old: log in again for a fresh one`, { ...facts, reason: 'too-old' });
      return refused(`the ID token from ${issuer} expired${typeof e.payload?.exp === 'number' ? ` at ${new Date(e.payload.exp * 1000).toISOString()}` : ''}`, { ...facts, reason: 'expired' });
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'aud') return refused(`the ID token was not issued to this service (audience is not ${quoted(audience)})`, { ...facts, reason: 'wrong-audience' });
      if (e.claim === 'iss') return refused(`the ID token's issuer is not ${quoted(issuer)}`, { ...facts, reason: 'foreign-issuer' });
      if (e.claim === 'iat') return refused(`the ID token from ${issuer} is too old or issued in the future (${e.message})`, { ...facts, reason: 'too-old' });
      if (e.claim === 'nbf') return refused(`the ID token from ${issuer} is not valid yet`, { ...facts, reason: 'not-yet-valid' });
      return refused(`the ID token from ${issuer} lacks or has an invalid "${e.claim}" claim`, { ...facts, reason: 'bad-claim' });
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refused(`the ID token's signature does not verify with the keys ${issuer} publishes (bad signature)`, { ...facts, reason: 'bad-signature' });
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return refused(`the ID token is signed with a key ${issuer} does not publish (bad signature)`, { ...facts, reason: 'bad-signature' });
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return refused(`the ID token is not a JWT signed with ${ALLOWED_ALGORITHMS.join(', ')}`, { ...facts, reason: 'not-a-jwt' });
    default:
      return new IdentityProviderUnreachableError(`the keys of ${issuer} could not be fetched (${e.message ?? String(err)})`, facts);
  }
}

function groupsFrom(payload: JWTPayload, claim: string, issuer: string): string[] {
  const v = payload[claim];
  if (v === undefined) return [];
  if (Array.isArray(v) && v.every((g) => typeof g === 'string')) return [...v];
  throw refused(`the ID token from ${issuer} has a "${claim}" claim that is not a list of group names`, { issuer, reason: 'bad-claim' });
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

export async function verifyIdToken(cfg: IdentityConfig, token: string, expect: { nonce?: string }): Promise<VerifiedIdentity> {
  const { alg, iss } = inspect(token);
  if (typeof alg !== 'string' || !ALLOWED_ALGORITHMS.includes(alg)) {
    throw refused(`the ID token is signed with ${quoted(alg)}, not one of ${ALLOWED_ALGORITHMS.join(', ')}`, { reason: 'alg-not-allowed' });
  }
  const entry = typeof iss === 'string' ? findIssuer(cfg, iss) : undefined;
  if (!entry) {
    throw refused(`the ID token comes from a foreign issuer ${quoted(iss)}, not one configured in the sites file's identity section`, { reason: 'foreign-issuer' });
  }
  const { issuer, audience } = entry;
  const keys = await keysOf(issuer);
  const options = {
    issuer,
    audience,
    algorithms: ALLOWED_ALGORITHMS,
    maxTokenAge: cfg.maxTokenAgeSeconds ?? DEFAULT_MAX_TOKEN_AGE_SECONDS,
    clockTolerance: cfg.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['sub', 'iat', 'exp'],
  };
  let payload: JWTPayload;
  try {
    try {
      ({ payload } = await jwtVerify(token, keys, options));
    } catch (err) {
      // A key id never seen may be a rotation that happened within the cooldown: look once more after it.
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || !keys.coolingDown) throw err;
      await new Promise((r) => setTimeout(r, JWKS_COOLDOWN_MS));
      ({ payload } = await jwtVerify(token, keys, options));
    }
  } catch (err) {
    throw explain(err, issuer, audience);
  }
  if (expect.nonce !== undefined && payload.nonce !== expect.nonce) {
    throw refused(`the ID token's nonce does not match the one this decision asked for (nonce mismatch)`, { issuer, reason: 'nonce-mismatch' });
  }
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const name = str(payload.name);
  const email = str(payload.email);
  const tokenId = str(payload.jti);
  return {
    issuer,
    subject: payload.sub!,
    groups: groupsFrom(payload, entry.groupsClaim ?? DEFAULT_GROUPS_CLAIM, issuer),
    ...(name ? { name } : {}),
    ...(email ? { email } : {}),
    ...(tokenId ? { tokenId } : {}),
    issuedAt: iso(payload.iat!),
    expiresAt: iso(payload.exp!),
  };
}
