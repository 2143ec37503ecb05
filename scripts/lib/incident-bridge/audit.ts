// The bridge's audit trail: one JSON line per call, accepted or not. It never holds a secret or a signature:
// only who (the key id and the identity it proved, or what an unauthenticated request claimed), what, on which run,
// and why.
import { appendFileSync, mkdirSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export type AuditOutcome = 'accepted' | 'refused' | 'ignored' | 'failed';

export interface AuditRecord {
  time: string;
  route: string;
  /** The identity the verified key proved; null before verification (PagerDuty: the user the event names, unverified). */
  identity: string | null;
  /** The key id (generic route: X-DR-Key-Id, as sent; PagerDuty: the subscription whose secret matched). */
  keyId?: string;
  /** X-DR-Delivery-Id, as sent (the route keeps at most 128 characters of either header). */
  deliveryId?: string;
  /** Whether the request passed the signature, freshness and replay checks. */
  authenticated: boolean;
  action: string | null;
  /** The workflow ID the call is about. */
  target: string | null;
  outcome: AuditOutcome;
  status: number;
  reason: string | null;
  /** The approver recorded in the approval (from the allow-list), when one was. */
  approver?: string;
  /** The PagerDuty event id, on that route. */
  eventId?: string;
}

const MAX_FIELD = 300;
const clip = (v: string | null): string | null => (v !== null && v.length > MAX_FIELD ? `${v.slice(0, MAX_FIELD)}…` : v);

export class AuditLog {
  constructor(readonly path: string) {
    // Fail at start, not at the first call, when the audit file cannot be written.
    mkdirSync(dirname(path), { recursive: true });
    appendFileSync(path, '', { mode: 0o640 });
  }

  async write(r: AuditRecord): Promise<void> {
    const line: AuditRecord = {
      ...r, identity: clip(r.identity), action: clip(r.action), target: clip(r.target), reason: clip(r.reason),
    };
    await appendFile(this.path, `${JSON.stringify(line)}\n`);
  }
}
