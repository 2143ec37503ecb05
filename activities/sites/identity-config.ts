// The sites file's `identity` section: which OpenID Connect issuers may sign approvals. Checked when the file is
// loaded, so a typo fails the worker's start with a message naming the field, not a later approval.
import type { BadInputError } from '../../workflows/contracts/errors';
import { MAX_CLOCK_TOLERANCE_SECONDS, type IdentityConfig } from '../../workflows/contracts/identity';

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const isSeconds = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

/** An issuer URL as OpenID Connect Discovery allows it: https (http only on loopback), no query or fragment. */
function issuerProblem(issuer: string): string | null {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return 'is not a URL';
  }
  if (url.search || url.hash) return 'must not have a query or fragment';
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) return 'must use https (http only on loopback, for the sandbox)';
  return null;
}

export function parseIdentityConfig(raw: unknown, bad: (what: string) => BadInputError): IdentityConfig {
  if (!isObject(raw)) throw bad('must be an object: { "issuers": [{ "issuer", "audience" }] }');
  const known = new Set(['issuers', 'maxTokenAgeSeconds', 'clockToleranceSeconds']);
  const unknown = Object.keys(raw).filter((k) => !known.has(k));
  if (unknown.length > 0) throw bad(`has unknown field(s) ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
  if (!Array.isArray(raw.issuers) || raw.issuers.length === 0) throw bad('needs "issuers": a non-empty list of { "issuer", "audience" }');
  const issuers = raw.issuers.map((entry: unknown, i: number) => {
    const at = `issuers[${i}]`;
    if (!isObject(entry)) throw bad(`${at} must be an object { "issuer", "audience", "groupsClaim"? }`);
    const { issuer, audience, groupsClaim } = entry;
    if (typeof issuer !== 'string' || issuer === '') throw bad(`${at} needs "issuer": the issuer URL exactly as its tokens' "iss" says`);
    const problem = issuerProblem(issuer);
    if (problem) throw bad(`${at}.issuer "${issuer}" ${problem}`);
    if (typeof audience !== 'string' || audience === '') throw bad(`${at} needs "audience": the client id its ID tokens are issued to`);
    if (groupsClaim !== undefined && (typeof groupsClaim !== 'string' || groupsClaim === '')) throw bad(`${at}.groupsClaim must be a claim name`);
    return { issuer, audience, ...(groupsClaim ? { groupsClaim } : {}) };
  });
  const seen = new Set<string>();
  for (const { issuer } of issuers) {
    if (seen.has(issuer)) throw bad(`lists issuer "${issuer}" twice`);
    seen.add(issuer);
  }
  const { maxTokenAgeSeconds, clockToleranceSeconds } = raw;
  if (maxTokenAgeSeconds !== undefined && !(isSeconds(maxTokenAgeSeconds, 86_400) && maxTokenAgeSeconds > 0)) {
    throw bad('"maxTokenAgeSeconds" must be a whole number of seconds from 1 to 86400');
  }
  if (clockToleranceSeconds !== undefined && !isSeconds(clockToleranceSeconds, MAX_CLOCK_TOLERANCE_SECONDS)) {
    throw bad(`"clockToleranceSeconds" must be a whole number of seconds from 0 to ${MAX_CLOCK_TOLERANCE_SECONDS}`);
  }
  return {
    issuers,
    ...(maxTokenAgeSeconds !== undefined ? { maxTokenAgeSeconds: maxTokenAgeSeconds as number } : {}),
    ...(clockToleranceSeconds !== undefined ? { clockToleranceSeconds: clockToleranceSeconds as number } : {}),
  };
}
