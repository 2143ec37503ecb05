// Who decided: the identity an approval carries, proven by an OpenID Connect ID token that an activity verified.
// Bundle-safe: types and pure helpers only (the workflow records these facts; it never sees a token's signature).

/** What a verified ID token says about its holder. Only verified claims; never the token itself. */
export interface VerifiedIdentity {
  issuer: string;
  subject: string;
  groups: string[];
  name?: string;
  email?: string;
  /** The token's `jti`, when the issuer sets one (for duplicate detection). */
  tokenId?: string;
  /** ISO-8601 times from the token's `iat` and `exp`. */
  issuedAt: string;
  expiresAt: string;
}

/** The issuers whose ID tokens count, from the sites file's `identity` section. */
export interface IdentityConfig {
  /** `audience`: the client id the tokens are issued to; `groupsClaim`: the claim listing groups (default `groups`). */
  issuers: { issuer: string; audience: string; groupsClaim?: string }[];
  /** A token issued longer ago than this is refused even if not expired (default 600). */
  maxTokenAgeSeconds?: number;
  /** Allowed clock skew between the issuer and the worker (default 30, at most 300). */
  clockToleranceSeconds?: number;
}

export const DEFAULT_GROUPS_CLAIM = 'groups';
export const DEFAULT_MAX_TOKEN_AGE_SECONDS = 600;
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;
export const MAX_CLOCK_TOLERANCE_SECONDS = 300;

/** One line for a journal entry: who, from which issuer, in which groups. */
export function describeIdentity(id: VerifiedIdentity): string {
  const groups = id.groups.length > 0 ? id.groups.join(', ') : 'no groups';
  return `${id.subject} (${id.issuer}; ${groups})`;
}

/** The configured issuer entry a token's `iss` names, compared exactly (an issuer URL is an identifier). */
export function findIssuer(cfg: IdentityConfig, issuer: string): IdentityConfig['issuers'][number] | undefined {
  return cfg.issuers.find((i) => i.issuer === issuer);
}

/** Who decided, as the identity check established it: verified claims, or a typed name marked unauthenticated. */
export interface ApproverIdentity {
  issuer: string;
  subject: string;
  groups: string[];
  name?: string;
  /** false only for a typed name that a sites file with `approvals.acceptTypedNames` let through. */
  authenticated: boolean;
}
