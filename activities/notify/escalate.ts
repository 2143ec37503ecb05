// Escalation when a human did not decide in time. Where it goes is configuration: a JSON-lines file
// (DR_NOTIFY_FILE; the sandbox's incident feed) and/or a webhook (DR_NOTIFY_WEBHOOK_URL, e.g. a pager's
// generic events endpoint). With neither, the escalation is only in the journal and the worker log.
import { appendFileSync } from 'node:fs';
import { SiteUnreachableError } from '../../workflows/contracts/errors';

export interface Escalation {
  runbook: string;
  workflowId: string;
  cluster: string;
  reason: string;
  /** What a human should do now, in one sentence. */
  action: string;
}

export function createNotifyEscalation(env: NodeJS.ProcessEnv = process.env) {
  return async function notifyEscalation(input: Escalation): Promise<{ delivered: string[] }> {
    const event = { at: new Date().toISOString(), severity: 'critical', ...input };
    const delivered: string[] = [];
    if (env.DR_NOTIFY_FILE) {
      appendFileSync(env.DR_NOTIFY_FILE, `${JSON.stringify(event)}\n`);
      delivered.push(`file:${env.DR_NOTIFY_FILE}`);
    }
    if (env.DR_NOTIFY_WEBHOOK_URL) {
      const r = await fetch(env.DR_NOTIFY_WEBHOOK_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(10_000),
      }).catch((err: Error) => {
        throw new SiteUnreachableError(`escalation webhook did not answer: ${err.message}`);
      });
      if (!r.ok) throw new SiteUnreachableError(`escalation webhook answered HTTP ${r.status}`);
      delivered.push('webhook');
    }
    console.warn(`ESCALATION ${input.workflowId}: ${input.reason} — ${input.action}`);
    return { delivered };
  };
}
