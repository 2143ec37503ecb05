// The incident-tool bridge against real parts: a real Temporal, real workers on private queues and a real planned
// promote waiting at its approval gate (planned mode asks before it fences, so a rejection changes nothing).
// Requests are real HTTP to the bridge on an ephemeral loopback port, signed as an incident tool would sign them.
// (fastify's inject would do without a port, but it loads `cookie` 2, which ships ES modules only and which
// jest.config.js does not transform.)
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { buildBridge, GENERIC_ROUTE, PAGERDUTY_ROUTE } from '../../scripts/lib/incident-bridge/server';
import { resolveBridgeConfig, type AllowListFile } from '../../scripts/lib/incident-bridge/config';
import type { AuditRecord } from '../../scripts/lib/incident-bridge/audit';
import type { PromoteResult } from '../../workflows/contracts/runbooks';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { pendingGate } from '../helpers/approvals';
import { roleOf } from '../helpers/clusters';
import { testLayout } from '../helpers/test-env';

const DIR = join(testLayout().dir, 'incident-bridge');
const AUDIT = join(DIR, 'audit.jsonl');
const SECRET = randomBytes(32).toString('hex');
const PD_SECRET = randomBytes(24).toString('base64');
process.env.DR_TEST_BRIDGE_SECRET = SECRET;

const ALLOW: AllowListFile = {
  identities: {
    // An on-call lead: may start, approve and reject promotions of clusters in us.
    'pagerduty:PALICE1': { approver: 'alice@example.com', may: [{ action: ['start', 'approve', 'reject'], runbooks: ['promote'], sites: ['us'] }] },
    // May approve promotions, but only in eu.
    'opsgenie:bob': { approver: 'bob@example.com', may: [{ action: 'approve', runbooks: ['promote'], sites: ['eu'] }] },
    // May reject anything anywhere (from PagerDuty notes).
    'pagerduty:PCAROL1': { approver: 'carol@example.com', may: [{ action: 'reject', runbooks: ['*'], sites: ['*'] }] },
  },
};

/** Every signature this test sent: none may appear in the audit file. */
const sentSignatures: string[] = [];

function drHeaders(body: string, opts: { ts?: number; secret?: string } = {}): Record<string, string> {
  const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
  const sig = createHmac('sha256', opts.secret ?? SECRET).update(`${ts}.${body}`).digest('hex');
  sentSignatures.push(sig);
  return { 'content-type': 'application/json', 'x-dr-timestamp': ts, 'x-dr-signature': `v1=${sig}` };
}

function pdHeaders(body: string, secret = PD_SECRET): Record<string, string> {
  const sig = createHmac('sha256', secret).update(body).digest('hex');
  sentSignatures.push(sig);
  // PagerDuty sends one v1 value per active secret while a subscription's secret rotates.
  return { 'content-type': 'application/json', 'x-pagerduty-signature': `v1=${'0'.repeat(64)},v1=${sig}` };
}

/** An incident.annotated event as PagerDuty v3 sends it (docs: webhooks v3 overview, incident_note). */
function pdNote(content: string, opts: { agentId?: string; id?: string; occurredAt?: Date; eventType?: string } = {}): string {
  const agentId = opts.agentId ?? 'PCAROL1';
  return JSON.stringify({
    event: {
      id: opts.id ?? randomUUID(),
      event_type: opts.eventType ?? 'incident.annotated',
      resource_type: 'incident',
      occurred_at: (opts.occurredAt ?? new Date()).toISOString(),
      agent: {
        html_url: `https://acme.pagerduty.com/users/${agentId}`, id: agentId, self: `https://api.pagerduty.com/users/${agentId}`,
        summary: 'Carol Responder', type: 'user_reference',
      },
      client: { name: 'PagerDuty' },
      data: {
        incident: {
          html_url: 'https://acme.pagerduty.com/incidents/PGR0VU2', id: 'PGR0VU2', self: 'https://api.pagerduty.com/incidents/PGR0VU2',
          summary: 'eu primary unreachable', type: 'incident_reference',
        },
        id: 'P2LA89X', content, trimmed: false, type: 'incident_note',
      },
    },
  });
}

function auditLines(): AuditRecord[] {
  return readFileSync(AUDIT, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord);
}
const lastAudit = () => auditLines().pop()!;

describe('incident bridge', () => {
  let harness: RunbookHarness;
  let releaseHarness: () => void;
  let harnessDone: Promise<void>;
  let app: FastifyInstance;
  let baseUrl: string;
  let pair: StandbyPair | undefined;

  const post = async (url: string, body: string, headers: Record<string, string>) => {
    const r = await fetch(`${baseUrl}${url}`, { method: 'POST', body, headers });
    return { status: r.status, body: (await r.json()) as Record<string, any> };
  };
  const generic = (body: unknown, opts?: { ts?: number; secret?: string }) => {
    const text = JSON.stringify(body);
    return post(GENERIC_ROUTE, text, drHeaders(text, opts));
  };

  beforeAll(async () => {
    rmSync(DIR, { recursive: true, force: true });
    mkdirSync(DIR, { recursive: true });
    writeFileSync(join(DIR, 'allow.json'), JSON.stringify(ALLOW));
    writeFileSync(join(DIR, 'pagerduty.secret'), `${PD_SECRET}\n`, { mode: 0o600 });
    const config = resolveBridgeConfig({
      secretEnv: 'DR_TEST_BRIDGE_SECRET', allowListFile: 'allow.json', auditFile: 'audit.jsonl', windowSeconds: 300,
      pagerduty: { secretFile: 'pagerduty.secret' },
    }, DIR);
    const ready = new Promise<RunbookHarness>((resolveReady) => {
      harnessDone = withRunbookWorkers((h) => new Promise<void>((release) => {
        releaseHarness = release;
        resolveReady(h);
      }));
    });
    harness = await ready;
    app = buildBridge({ client: harness.client, config, taskQueue: harness.taskQueue });
    baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    pair = await createStandbyPair('ib');
  });

  afterAll(async () => {
    await app?.close();
    releaseHarness?.();
    await harnessDone;
    if (pair) await deleteStandbyPair(pair);
  });

  it('refuses a bad signature, a stale timestamp and an unsigned request (401), and audits each', async () => {
    const body = { action: 'approve', identity: 'pagerduty:PALICE1', workflowId: 'promote/us/acid-ib', ticket: 'INC-1' };
    let r = await generic(body, { secret: 'not-the-secret-at-all-0123456789' });
    expect(r).toEqual({ status: 401, body: { ok: false, message: expect.stringMatching(/^bad signature: X-DR-Signature is not the HMAC-SHA256/) } });
    expect(lastAudit()).toMatchObject({
      route: GENERIC_ROUTE, identity: 'pagerduty:PALICE1', authenticated: false, action: 'approve', target: 'promote/us/acid-ib',
      outcome: 'refused', status: 401, reason: expect.stringMatching(/^bad signature/),
    });

    r = await generic(body, { ts: Math.floor(Date.now() / 1000) - 400 });
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^stale request: X-DR-Timestamp is 40\d s old \(window 300 s\)/);
    expect(lastAudit()).toMatchObject({ outcome: 'refused', status: 401, reason: expect.stringMatching(/^stale request/) });

    r = await post(GENERIC_ROUTE, JSON.stringify(body), { 'content-type': 'application/json' });
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^unsigned request: send X-DR-Timestamp/);
    expect(lastAudit()).toMatchObject({ status: 401, reason: expect.stringMatching(/^unsigned request/) });

    // A body changed after signing: the signature covers the raw bytes, so even whitespace counts.
    const text = JSON.stringify(body);
    r = await post(GENERIC_ROUTE, `${text} `, drHeaders(text));
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^bad signature/);
  });

  it('refuses malformed JSON, missing fields and an unknown action with what to fix (422)', async () => {
    const broken = '{"action": "approve", "identity": ';
    let r = await post(GENERIC_ROUTE, broken, drHeaders(broken));
    expect(r.status).toBe(422);
    expect(r.body.message).toMatch(/^the body is not valid JSON \(.+\): send one JSON object$/);
    expect(lastAudit()).toMatchObject({ authenticated: true, identity: null, outcome: 'refused', status: 422, reason: expect.stringMatching(/not valid JSON/) });

    r = await generic({ action: 'approve', identity: 'pagerduty:PALICE1' });
    expect(r.status).toBe(422);
    expect(r.body.message).toBe('workflowId is missing: the run to decide, "<runbook>/<site>/<cluster>", e.g. "promote/us/acid-demo"; ' +
      'ticket is missing: name the incident or change ticket');
    expect(lastAudit()).toMatchObject({ identity: 'pagerduty:PALICE1', action: 'approve', status: 422, reason: expect.stringMatching(/^workflowId is missing/) });

    r = await generic({ action: 'promote-now', identity: 'pagerduty:PALICE1' });
    expect(r.status).toBe(422);
    expect(r.body.message).toBe('action must be one of "approve", "reject", "start" (got "promote-now")');
    expect(lastAudit()).toMatchObject({ action: 'promote-now', status: 422 });

    r = await generic({ action: 'approve', identity: 'pagerduty:PALICE1', workflowId: 'us/acid-ib', ticket: 'INC-1' });
    expect(r.status).toBe(422);
    expect(r.body.message).toMatch(/^workflowId "us\/acid-ib" must be "<runbook>\/<site>\/<cluster>"/);

    r = await generic({ action: 'start', identity: 'pagerduty:PALICE1', runbook: 'promote', input: { cluster: 'us', mode: 'planned' } });
    expect(r.status).toBe(422);
    expect(r.body.message).toMatch(/^input.cluster "us" must be "<site>\/<cluster>"/);
  });

  it('refuses an unknown identity, and one not allowed for that runbook or site (403), before asking Temporal', async () => {
    let r = await generic({ action: 'approve', identity: 'slack:U999', workflowId: 'promote/us/acid-ib', ticket: 'INC-1' });
    expect(r).toEqual({ status: 403, body: { ok: false, message: 'identity "slack:U999" is not in the allow-list' } });
    expect(lastAudit()).toMatchObject({ identity: 'slack:U999', authenticated: true, outcome: 'refused', status: 403, reason: 'identity "slack:U999" is not in the allow-list' });

    r = await generic({ action: 'approve', identity: 'opsgenie:bob', workflowId: 'promote/us/acid-ib', ticket: 'INC-1' });
    expect(r).toEqual({ status: 403, body: { ok: false, message: 'identity "opsgenie:bob" may not approve promote runs at site "us"' } });
    expect(lastAudit()).toMatchObject({ identity: 'opsgenie:bob', target: 'promote/us/acid-ib', status: 403 });

    r = await generic({ action: 'approve', identity: 'pagerduty:PALICE1', workflowId: 'failback-reseed/us/acid-ib', ticket: 'INC-1' });
    expect(r.status).toBe(403);
    expect(r.body.message).toBe('identity "pagerduty:PALICE1" may not approve failback-reseed runs at site "us"');
  });

  it('answers 404 for a run that does not exist', async () => {
    const r = await generic({ action: 'reject', identity: 'pagerduty:PALICE1', workflowId: 'promote/us/acid-nosuch', ticket: 'INC-1' });
    expect(r).toEqual({ status: 404, body: { ok: false, message: 'no run with workflow ID promote/us/acid-nosuch' } });
    expect(lastAudit()).toMatchObject({ identity: 'pagerduty:PALICE1', action: 'reject', target: 'promote/us/acid-nosuch', outcome: 'refused', status: 404 });
  });

  it('PagerDuty: a signed /dr note rejects the open gate as the mapped approver; bad signatures, replays, stale and ordinary notes are not decisions', async () => {
    const workflowId = `promote/${pair!.standby}`;
    const started = await generic({
      action: 'start', identity: 'pagerduty:PALICE1', runbook: 'promote', ticket: 'INC-7',
      input: { cluster: pair!.standby, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false },
    });
    expect(started).toEqual({ status: 200, body: { ok: true, workflowId, runId: expect.any(String) } });
    expect(lastAudit()).toMatchObject({ identity: 'pagerduty:PALICE1', action: 'start', target: workflowId, outcome: 'accepted', status: 200, approver: 'alice@example.com' });
    const handle = harness.client.workflow.getHandle(workflowId);
    expect((await pendingGate(handle)).gate).toBe('promote');

    // While the gate is open: a second start is refused, and so is an identity allowed elsewhere only.
    let r = await generic({ action: 'start', identity: 'pagerduty:PALICE1', runbook: 'promote', input: { cluster: pair!.standby, mode: 'planned' } });
    expect(r.status).toBe(409);
    expect(r.body.message).toMatch(new RegExp(`^${workflowId} is already running`));
    r = await generic({ action: 'approve', identity: 'opsgenie:bob', workflowId, ticket: 'INC-7' });
    expect(r.status).toBe(403);

    const command = `/dr reject ${workflowId} INC-7 not during the sale`;
    // Signed with the wrong secret.
    const forged = pdNote(command);
    r = await post(PAGERDUTY_ROUTE, forged, pdHeaders(forged, 'wrong-secret-wrong-secret'));
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^bad signature: no v1 value in X-PagerDuty-Signature/);
    expect(lastAudit()).toMatchObject({ route: PAGERDUTY_ROUTE, identity: 'pagerduty:PCAROL1', authenticated: false, outcome: 'refused', status: 401 });
    // Signed, but from long ago.
    const old = pdNote(command, { occurredAt: new Date(Date.now() - 3600_000) });
    r = await post(PAGERDUTY_ROUTE, old, pdHeaders(old));
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^stale event: event.occurred_at is 36\d\d s old \(window 300 s\)/);
    // An ordinary note and another event type are acknowledged and ignored.
    const chatter = pdNote('looking at the eu region now');
    r = await post(PAGERDUTY_ROUTE, chatter, pdHeaders(chatter));
    expect(r).toEqual({ status: 200, body: { ok: true, ignored: true, message: 'the note holds no /dr command' } });
    expect(lastAudit()).toMatchObject({ route: PAGERDUTY_ROUTE, outcome: 'ignored', status: 200, authenticated: true });
    const acked = pdNote('', { eventType: 'incident.acknowledged' });
    r = await post(PAGERDUTY_ROUTE, acked, pdHeaders(acked));
    expect(r.body).toMatchObject({ ignored: true, message: 'event type incident.acknowledged carries no command' });
    // A command it cannot read.
    const garbled = pdNote(`/dr reject ${workflowId}`);
    r = await post(PAGERDUTY_ROUTE, garbled, pdHeaders(garbled));
    expect(r.status).toBe(422);
    expect(r.body.message).toMatch(/^reject needs a workflow id and a ticket: write \/dr approve\|reject <workflow id> <ticket>/);
    // A PagerDuty user the allow-list does not know.
    const stranger = pdNote(command, { agentId: 'PSTRANGE' });
    r = await post(PAGERDUTY_ROUTE, stranger, pdHeaders(stranger));
    expect(r).toEqual({ status: 403, body: { ok: false, message: 'identity "pagerduty:PSTRANGE" is not in the allow-list' } });
    expect(await handle.query('getPendingApproval')).not.toBeNull();

    // The real one.
    const note = pdNote(command);
    const headers = pdHeaders(note);
    r = await post(PAGERDUTY_ROUTE, note, headers);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      ok: true, workflowId, gate: 'promote',
      record: {
        decision: 'rejected', approver: 'carol@example.com', ticket: 'INC-7', via: 'update',
        comment: 'not during the sale (via the incident bridge, identity pagerduty:PCAROL1, PagerDuty incident PGR0VU2 note P2LA89X)',
      },
    });
    const eventId = (JSON.parse(note) as { event: { id: string } }).event.id;
    expect(lastAudit()).toMatchObject({
      route: PAGERDUTY_ROUTE, identity: 'pagerduty:PCAROL1', authenticated: true, action: 'reject', target: workflowId,
      outcome: 'accepted', status: 200, reason: null, approver: 'carol@example.com', eventId,
    });
    const err = await handle.result().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause as { type?: string }).type).toBe('ApprovalRejectedError');
    expect(await roleOf(pair!.source)).toBe('primary');
    expect(await roleOf(pair!.standby)).toBe('standby_leader');

    // PagerDuty delivers at least once: the same event again is not a second decision.
    r = await post(PAGERDUTY_ROUTE, note, headers);
    expect(r).toEqual({ status: 401, body: { ok: false, message: `replayed event: event ${eventId} was already received` } });
    expect(lastAudit()).toMatchObject({ eventId, outcome: 'refused', status: 401 });

    // The run is over: nothing to decide.
    r = await generic({ action: 'approve', identity: 'pagerduty:PALICE1', workflowId, ticket: 'INC-7' });
    expect(r).toEqual({ status: 409, body: { ok: false, message: `${workflowId} is not running (FAILED): no approval gate is open` } });
    expect(lastAudit()).toMatchObject({ identity: 'pagerduty:PALICE1', target: workflowId, outcome: 'refused', status: 409 });
  });

  it('generic form: approves as the allow-list\'s approver (not the one the body claims), refuses the replayed request, and the run promotes', async () => {
    const workflowId = `promote/${pair!.standby}`;
    const started = await generic({
      action: 'start', identity: 'pagerduty:PALICE1', runbook: 'promote',
      input: { cluster: pair!.standby, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false },
    });
    expect(started.status).toBe(200);
    const handle = harness.client.workflow.getHandle(workflowId);
    await pendingGate(handle);

    const text = JSON.stringify({
      action: 'approve', identity: 'pagerduty:PALICE1', approver: 'mallory', workflowId, ticket: 'CHG-42', comment: 'planned switch',
    });
    const headers = drHeaders(text);
    let r = await post(GENERIC_ROUTE, text, headers);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      ok: true, workflowId, gate: 'promote',
      record: { decision: 'approved', approver: 'alice@example.com', ticket: 'CHG-42', via: 'update', comment: 'planned switch (via the incident bridge, identity pagerduty:PALICE1)' },
    });
    expect(lastAudit()).toMatchObject({
      route: GENERIC_ROUTE, identity: 'pagerduty:PALICE1', authenticated: true, action: 'approve', target: workflowId,
      outcome: 'accepted', status: 200, reason: null, approver: 'alice@example.com',
    });

    // The same bytes with the same signature, within the window.
    r = await post(GENERIC_ROUTE, text, headers);
    expect(r).toEqual({ status: 401, body: { ok: false, message: 'replayed request: this signature was already used; sign every request anew (with its own timestamp)' } });
    expect(lastAudit()).toMatchObject({ identity: 'pagerduty:PALICE1', outcome: 'refused', status: 401, reason: expect.stringMatching(/^replayed request/) });

    // A second decision on the same gate.
    r = await generic({ action: 'reject', identity: 'pagerduty:PALICE1', workflowId, ticket: 'CHG-42' });
    expect(r.status).toBe(409);
    expect(r.body.message).toMatch(/already decided|no approval gate|is not running/);

    const result = (await handle.result()) as PromoteResult;
    expect(result).toMatchObject({ alreadyPromoted: false, fence: 'CONFIRMED', approval: { approver: 'alice@example.com', ticket: 'CHG-42' } });
    expect(await roleOf(pair!.standby)).toBe('primary');
  });

  it('the audit file holds one line per call and never a secret or a signature', () => {
    const text = readFileSync(AUDIT, 'utf8');
    const lines = auditLines();
    expect(lines.length).toBeGreaterThanOrEqual(25);
    for (const l of lines) expect(Object.keys(l)).toEqual(expect.arrayContaining(['time', 'route', 'identity', 'action', 'target', 'outcome', 'status', 'reason']));
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(PD_SECRET);
    for (const s of sentSignatures) expect(text).not.toContain(s);
  });
});
