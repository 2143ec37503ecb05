// Request authentication of the bridge: every caller signs with its own key (HMAC-SHA256, compared in constant
// time); the key id names the key, so the identity is the one that key proves and never one the body names. A
// time window and the delivery id (kept in the replay store) stop a captured request from being sent again.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { CallerKey, Secret } from './config';

export const DR_KEY_ID_HEADER = 'x-dr-key-id';
export const DR_DELIVERY_ID_HEADER = 'x-dr-delivery-id';
export const DR_SIGNATURE_HEADER = 'x-dr-signature';
export const DR_TIMESTAMP_HEADER = 'x-dr-timestamp';
export const PAGERDUTY_SIGNATURE_HEADER = 'x-pagerduty-signature';

/** What the generic scheme signs: the timestamp, the delivery id and the exact body bytes. */
export const DR_SIGNED_TEXT = '"<X-DR-Timestamp>.<X-DR-Delivery-Id>.<raw body>"';

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

const one = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h[0] : h);

export type Verdict =
  | { ok: true; caller: CallerKey; replayKey: string; deliveryId: string; expiresAtMs: number }
  | { ok: false; reason: string };

const DELIVERY_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * The bridge's own scheme: `X-DR-Key-Id: <key id>`, `X-DR-Timestamp: <unix seconds>`, `X-DR-Delivery-Id: <unique
 * per request>`, `X-DR-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<delivery id>.<raw body>">` with that key's
 * secret. The timestamp must be within `windowSeconds` of now, either way.
 */
export function verifyDrRequest(
  callers: Map<string, CallerKey>, headers: Record<string, string | string[] | undefined>, raw: Buffer, windowSeconds: number, nowMs = Date.now(),
): Verdict {
  const keyId = one(headers[DR_KEY_ID_HEADER]);
  const ts = one(headers[DR_TIMESTAMP_HEADER]);
  const deliveryId = one(headers[DR_DELIVERY_ID_HEADER]);
  const given = v1Signatures(headers[DR_SIGNATURE_HEADER]);
  if (!keyId || !ts || !deliveryId || given.length === 0) {
    return { ok: false, reason: 'unsigned request: send X-DR-Key-Id (your key id), X-DR-Timestamp (unix seconds), X-DR-Delivery-Id (unique per request) ' +
      `and X-DR-Signature: v1=<hex HMAC-SHA256 of ${DR_SIGNED_TEXT} with your key>` };
  }
  const caller = callers.get(keyId);
  if (!caller) return { ok: false, reason: `unknown key id "${keyId.slice(0, 64)}": X-DR-Key-Id must name a key the bridge config lists under "callers"` };
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: 'X-DR-Timestamp must be unix seconds' };
  if (!DELIVERY_ID.test(deliveryId)) return { ok: false, reason: 'X-DR-Delivery-Id must be 8-128 letters, digits, ".", "_", ":" or "-" (a UUID will do)' };
  const expected = hmacHex(caller.secret, `${ts}.${deliveryId}.`, raw);
  if (!given.some((g) => sameDigest(expected, g))) {
    return { ok: false, reason: `bad signature: X-DR-Signature is not the HMAC-SHA256 of ${DR_SIGNED_TEXT} with the key "${keyId}"` };
  }
  const skew = Math.round(nowMs / 1000 - Number(ts));
  if (Math.abs(skew) > windowSeconds) {
    return { ok: false, reason: `stale request: X-DR-Timestamp is ${skew} s ${skew > 0 ? 'old' : 'in the future'} (window ${windowSeconds} s): sign with the current time` };
  }
  return { ok: true, caller, deliveryId, replayKey: `dr:${keyId}:${deliveryId}`, expiresAtMs: (Number(ts) + windowSeconds + 1) * 1000 };
}

/**
 * PagerDuty v3: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>[,v1=...]`, no timestamp and no key id:
 * the subscription whose own secret made one of the signatures is the caller.
 */
export function verifyPagerDutySignature(
  subscriptions: CallerKey[], header: string | string[] | undefined, raw: Buffer,
): { ok: true; caller: CallerKey } | { ok: false; reason: string } {
  const given = v1Signatures(header);
  if (given.length === 0) return { ok: false, reason: 'unsigned request: X-PagerDuty-Signature with a v1= signature is required' };
  const caller = subscriptions.find((s) => {
    const expected = hmacHex(s.secret, raw);
    return given.some((g) => sameDigest(expected, g));
  });
  if (!caller) {
    return { ok: false, reason: 'bad signature: no v1 value in X-PagerDuty-Signature is the HMAC-SHA256 of the raw body with a configured subscription\'s secret' };
  }
  return { ok: true, caller };
}
