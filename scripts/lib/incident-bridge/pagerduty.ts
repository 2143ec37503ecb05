// PagerDuty v3 webhooks (https://developer.pagerduty.com/docs/webhooks/v3-overview): a responder types a note on
// the incident, e.g. `/dr approve promote/us/acid-demo INC-123 region eu lost`, and PagerDuty's webhook
// subscription delivers an `incident.annotated` event.
//
// Fields used (every v3 payload holds exactly one event):
//   event.id            unique per event, repeated on redelivery: the replay key
//   event.event_type    only "incident.annotated" carries a command; other types are acknowledged and ignored
//   event.occurred_at   ISO 8601: must be within the window (PagerDuty sends no signed timestamp)
//   event.agent         { id, type: "user_reference", summary }: who wrote the note; identity "pagerduty:<id>"
//   event.data          type "incident_note": { id, content, trimmed, incident: { id, summary, html_url } }
// Signature: X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>, several comma-separated while the
// subscription's secret rotates.

export const PAGERDUTY_COMMAND_PREFIX = '/dr';

export interface PagerDutyEnvelope {
  id: string;
  eventType: string;
  occurredAtMs: number;
  /** The user who wrote the note: "pagerduty:<user id>", or null when the agent is not a user. */
  identity: string | null;
  agentSummary: string | null;
  note: { id: string | null; content: string; trimmed: boolean; incidentId: string | null } | null;
}

export interface PagerDutyCommand {
  action: 'approve' | 'reject';
  workflowId: string;
  ticket: string;
  acknowledgeDataLoss: boolean;
  acknowledgeUnconfirmedFence: boolean;
  comment?: string;
}

export const PAGERDUTY_COMMAND_USAGE =
  `${PAGERDUTY_COMMAND_PREFIX} approve|reject <workflow id> <ticket> [--ack-data-loss] [--ack-unconfirmed-fence] [comment...]`;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/** The envelope of a v3 webhook, or why it is not one. */
export function parsePagerDutyEnvelope(body: unknown): { ok: true; envelope: PagerDutyEnvelope } | { ok: false; reason: string } {
  const event = obj(obj(body)?.event);
  if (!event) return { ok: false, reason: 'not a PagerDuty v3 webhook: no "event" object' };
  const id = str(event.id);
  const eventType = str(event.event_type);
  const occurredAt = str(event.occurred_at);
  if (!id || !eventType || !occurredAt) return { ok: false, reason: 'not a PagerDuty v3 webhook: event.id, event.event_type and event.occurred_at are required' };
  const occurredAtMs = Date.parse(occurredAt);
  if (Number.isNaN(occurredAtMs)) return { ok: false, reason: 'event.occurred_at is not an ISO 8601 time' };
  const agent = obj(event.agent);
  const agentId = agent && agent.type === 'user_reference' ? str(agent.id) : null;
  const data = obj(event.data);
  const note = data && data.type === 'incident_note' && typeof data.content === 'string'
    ? { id: str(data.id), content: data.content, trimmed: data.trimmed === true, incidentId: str(obj(data.incident)?.id) }
    : null;
  return {
    ok: true,
    envelope: { id, eventType, occurredAtMs, identity: agentId ? `pagerduty:${agentId}` : null, agentSummary: agent ? str(agent.summary) : null, note },
  };
}

/**
 * The `/dr ...` command in a note: the first line that starts with it. null when the note holds no command (an
 * ordinary note); an error when it holds one that cannot be read.
 */
export function parsePagerDutyCommand(content: string): { ok: true; command: PagerDutyCommand } | { ok: false; reason: string } | null {
  const line = content.split(/\r?\n/).map((l) => l.trim()).find((l) => l === PAGERDUTY_COMMAND_PREFIX || l.startsWith(`${PAGERDUTY_COMMAND_PREFIX} `));
  if (line === undefined) return null;
  const words = line.split(/\s+/).slice(1);
  const [action, workflowId, ticket, ...rest] = words;
  if (action !== 'approve' && action !== 'reject') {
    return { ok: false, reason: `unknown command "${action ?? ''}": write ${PAGERDUTY_COMMAND_USAGE}` };
  }
  if (!workflowId || !ticket || ticket.startsWith('--')) {
    return { ok: false, reason: `${action} needs a workflow id and a ticket: write ${PAGERDUTY_COMMAND_USAGE}` };
  }
  const flags = new Set(rest.filter((w) => w.startsWith('--')));
  for (const f of flags) {
    if (f !== '--ack-data-loss' && f !== '--ack-unconfirmed-fence') return { ok: false, reason: `unknown flag ${f}: write ${PAGERDUTY_COMMAND_USAGE}` };
  }
  const comment = rest.filter((w) => !w.startsWith('--')).join(' ');
  return {
    ok: true,
    command: {
      action, workflowId, ticket,
      acknowledgeDataLoss: flags.has('--ack-data-loss'),
      acknowledgeUnconfirmedFence: flags.has('--ack-unconfirmed-fence'),
      ...(comment ? { comment } : {}),
    },
  };
}
