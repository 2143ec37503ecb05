// How an incident tool signs a request to the bridge, for the tests: each caller its own key and key id, a
// timestamp and a delivery id per request. Every secret and signature made here is kept, so the tests can show
// none reaches the audit file, and the keys are handed to the secrets audit (test/audit/no-secrets.test.ts).
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUDIT_SECRETS_DIR } from '../helpers/test-env';

export interface TestKey {
  keyId: string;
  secret: string;
}

export const newKey = (keyId: string): TestKey => ({ keyId, secret: randomBytes(32).toString('hex') });

/** Every signature made by these helpers. */
export const sentSignatures: string[] = [];

/** Gives the secrets audit these values: no history, search attribute or log of the suite may hold one. */
export function registerSecretsForAudit(label: string, values: string[]): void {
  mkdirSync(AUDIT_SECRETS_DIR(), { recursive: true, mode: 0o700 });
  writeFileSync(join(AUDIT_SECRETS_DIR(), `${label}.json`), JSON.stringify(values), { mode: 0o600 });
}

export interface SignOptions {
  /** Unix seconds; default now. */
  ts?: number;
  deliveryId?: string;
  /** Sign with this secret instead of the key's own (another caller's key, a guess). */
  signWith?: string;
}

/** The headers of a generic request: X-DR-Key-Id, X-DR-Timestamp, X-DR-Delivery-Id, X-DR-Signature. */
export function drHeaders(body: string, key: TestKey, opts: SignOptions = {}): Record<string, string> {
  const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
  const deliveryId = opts.deliveryId ?? randomUUID();
  const sig = createHmac('sha256', opts.signWith ?? key.secret).update(`${ts}.${deliveryId}.${body}`).digest('hex');
  sentSignatures.push(sig);
  return {
    'content-type': 'application/json', 'x-dr-key-id': key.keyId, 'x-dr-timestamp': ts, 'x-dr-delivery-id': deliveryId, 'x-dr-signature': `v1=${sig}`,
  };
}

/** PagerDuty's: v1= HMAC-SHA256 of the raw body with the subscription's secret, next to a stale one (rotation). */
export function pdHeaders(body: string, secret: string): Record<string, string> {
  const sig = createHmac('sha256', secret).update(body).digest('hex');
  sentSignatures.push(sig);
  return { 'content-type': 'application/json', 'x-pagerduty-signature': `v1=${'0'.repeat(64)},v1=${sig}` };
}

export interface BridgeAnswer {
  status: number;
  body: Record<string, any>;
  retryAfter: string | null;
}

export async function postTo(baseUrl: string, route: string, body: string, headers: Record<string, string>): Promise<BridgeAnswer> {
  const r = await fetch(`${baseUrl}${route}`, { method: 'POST', body, headers });
  return { status: r.status, body: (await r.json()) as Record<string, any>, retryAfter: r.headers.get('retry-after') };
}
