// Who may read decrypted payloads through the codec server, when it trusts an OpenID Connect issuer: the bearer
// token the Temporal UI forwards ("pass access token") is verified against the issuer's published keys, then its
// groups and the namespace the UI asks for (X-Namespace) are checked against what the operator configured.
import { verifyIdToken } from '../../../activities/identity/verify-id-token';
import { IdentityRefusedError } from '../../../workflows/contracts/errors';
import type { IdentityConfig } from '../../../workflows/contracts/identity';

export interface BearerPolicy {
  identity: IdentityConfig;
  /** Groups whose members may decode; empty: every verified user of the issuer. */
  groups: string[];
  /** Namespaces the UI may ask about; empty: any. */
  namespaces: string[];
}

export type BearerVerdict = { status: 200; subject: string } | { status: 401 | 403 | 503; message: string };

export async function judgeBearer(policy: BearerPolicy, authorization: string | undefined, namespace: string | undefined): Promise<BearerVerdict> {
  const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(authorization ?? '');
  if (!m) return { status: 401, message: 'a bearer token of the configured issuer is required (Authorization: Bearer <token>)' };
  let subject: string;
  let groups: string[];
  try {
    ({ subject, groups } = await verifyIdToken(policy.identity, m[1], {}));
  } catch (err) {
    if (err instanceof IdentityRefusedError) return { status: 401, message: `the bearer token was refused: ${err.message}` };
    return { status: 503, message: `the identity provider could not be asked: ${(err as Error).message}` };
  }
  if (policy.groups.length && !groups.some((g) => policy.groups.includes(g))) {
    return { status: 403, message: `${subject} is in none of the groups that may read payloads (${policy.groups.join(', ')})` };
  }
  if (policy.namespaces.length && !policy.namespaces.includes(namespace ?? '')) {
    return { status: 403, message: `namespace ${JSON.stringify(namespace ?? '')} is not one this codec server serves (${policy.namespaces.join(', ')})` };
  }
  return { status: 200, subject };
}

/** DR_CODEC_OIDC_ISSUER/_AUDIENCE/_GROUPS/_NAMESPACES, or null when no issuer is configured. */
export function bearerPolicyFromEnv(env: NodeJS.ProcessEnv): BearerPolicy | null {
  const issuer = env.DR_CODEC_OIDC_ISSUER;
  if (!issuer) return null;
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return {
    // The UI's access tokens live up to an hour; age is judged by their own expiry, not the approval's 10 minutes.
    identity: { issuers: [{ issuer, audience: env.DR_CODEC_OIDC_AUDIENCE ?? 'temporal-ui' }], maxTokenAgeSeconds: 3600 },
    groups: list(env.DR_CODEC_OIDC_GROUPS),
    namespaces: list(env.DR_CODEC_NAMESPACES),
  };
}
