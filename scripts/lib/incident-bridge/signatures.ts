// Request authentication of the bridge: HMAC-SHA256 signatures compared in constant time, a time window and a
// cache of what was already seen, so a captured request cannot be sent again.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Secret } from './config';

export const DR_SIGNATURE_HEADER = 'x-dr-signature';
export const DR_TIMESTAMP_HEADER = 'x-dr-timestamp';
export const PAGERDUTY_SIGNATURE_HEADER = 'x-pagerduty-signature';

export function hmacHex(secret: Secret, ...parts: (string | Buffer)[]): string {
  const h = createHmac('sha256', secret.key());
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Constant-time comparison of two hex digests (a length mismatch is not secret: every digest is 64 characters). */
function sameDigest(expectedHex: string, givenHex: string): boolean {
  if (!/^[0-9a-f]{64}$/i.test(givenHex)) return false;
  const a = Buffer.from(expectedHex, 'hex');
  const b = Buffer.from(givenHex.toLowerCase(), 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The `v1=<hex>` values of a signature header (PagerDuty sends several, comma-separated, while rotating secrets). */
function v1Signatures(header: string | string[] | undefined): string[] {
  const text = Array.isArray(header) ? header.join(',') : header ?? '';
  return text.split(',').map((s) => s.trim()).filter((s) => s.startsWith('v1=')).map((s) => s.slice(3));
}

export type Verdict = { ok: true; replayKey: string; expiresAtMs: number } | { ok: false; reason: string };

/**
 * The bridge's own scheme: `X-DR-Timestamp: <unix seconds>`, `X-DR-Signature: v1=<hex HMAC-SHA256 of
 * "<timestamp>.<raw body>">`. The timestamp must be within `windowSeconds` of now, either way.
 */
export function verifyDrRequest(
  secret: Secret, headers: Record<string, string | string[] | undefined>, raw: Buffer, windowSeconds: number, nowMs = Date.now(),
): Verdict {
  const tsHeader = headers[DR_TIMESTAMP_HEADER];
  const ts = Array.isArray(tsHeader) ? tsHeader[0] : tsHeader;
  const given = v1Signatures(headers[DR_SIGNATURE_HEADER]);
  if (!ts || given.length === 0) {
    return { ok: false, reason: 'unsigned request: send X-DR-Timestamp (unix seconds) and X-DR-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>">' };
  }
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: 'X-DR-Timestamp must be unix seconds' };
  const expected = hmacHex(secret, `${ts}.`, raw);
  const match = given.find((g) => sameDigest(expected, g));
  if (!match) return { ok: false, reason: 'bad signature: X-DR-Signature is not the HMAC-SHA256 of "<X-DR-Timestamp>.<raw body>" with the shared secret' };
  const skew = Math.round(nowMs / 1000 - Number(ts));
  if (Math.abs(skew) > windowSeconds) {
    return { ok: false, reason: `stale request: X-DR-Timestamp is ${skew} s ${skew > 0 ? 'old' : 'in the future'} (window ${windowSeconds} s): sign with the current time` };
  }
  return { ok: true, replayKey: `dr:${match.toLowerCase()}`, expiresAtMs: (Number(ts) + windowSeconds + 1) * 1000 };
}

/** PagerDuty v3: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>[,v1=...]`; no timestamp. */
export function verifyPagerDutySignature(secret: Secret, header: string | string[] | undefined, raw: Buffer): { ok: true } | { ok: false; reason: string } {
  const given = v1Signatures(header);
  if (given.length === 0) return { ok: false, reason: 'unsigned request: X-PagerDuty-Signature with a v1= signature is required' };
  const expected = hmacHex(secret, raw);
  if (!given.some((g) => sameDigest(expected, g))) {
    return { ok: false, reason: 'bad signature: no v1 value in X-PagerDuty-Signature is the HMAC-SHA256 of the raw body with the subscription secret' };
  }
  return { ok: true };
}

/** Signatures (or event ids) seen within their window; `claim` refuses the second use of one. */
export class ReplayCache {
  private readonly seen = new Map<string, number>();

  /** True when the key is new (and now remembered until expiresAtMs), false when it was seen before. */
  claim(key: string, expiresAtMs: number, nowMs = Date.now()): boolean {
    this.prune(nowMs);
    if (this.seen.has(key)) return false;
    this.seen.set(key, expiresAtMs);
    return true;
  }

  /** Forgets a key, so a sender may retry after the bridge failed on its side (a 5xx). */
  release(key: string): void {
    this.seen.delete(key);
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(nowMs: number): void {
    for (const [k, exp] of this.seen) if (exp <= nowMs) this.seen.delete(k);
  }
}
