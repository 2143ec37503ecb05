// The incident-tool bridge against real parts: a real Temporal, real workers on private queues and a real planned
// promote waiting at its approval gate (planned mode asks before it fences, so a rejection changes nothing).
// Requests are real HTTP to the bridge on an ephemeral loopback port, signed as an incident tool would sign them,
// each caller with its own key. (The bad-input suite runs the bridge as its own process and restarts it.)
// (fastify's inject would do without a port, but it loads `cookie` 2, which ships ES modules only and which
// jest.config.js does not transform.)
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { buildBridge, GENERIC_ROUTE, PAGERDUTY_ROUTE } from '../../scripts/lib/incident-bridge/server';
import { resolveBridgeConfig, type AllowListFile, type BridgeConfigFile } from '../../scripts/lib/incident-bridge/config';
import type { AuditRecord } from '../../scripts/lib/incident-bridge/audit';
import type { PromoteResult } from '../../workflows/contracts/runbooks';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { typedNamesSitesFile } from './typed-names-sites';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { pendingGate } from '../helpers/approvals';
import { roleOf } from '../helpers/clusters';
import { testLayout } from '../helpers/test-env';
import { drHeaders, newKey, pdHeaders as signPd, postTo, registerSecretsForAudit, sentSignatures, type SignOptions, type TestKey } from './signing';

const DIR = join(testLayout().dir, 'incident-bridge');
const AUDIT = join(DIR, 'audit.jsonl');
const ALICE = newKey('chatops-alice');
const BOB = newKey('opsgenie-bob');
const STRANGER = newKey('slack-u999');
const PD_SECRET = randomBytes(24).toString('base64');
const PD_OTHER_SECRET = randomBytes(24).toString('base64');
process.env.DR_TEST_BRIDGE_KEY_ALICE = ALICE.secret;
process.env.DR_TEST_BRIDGE_KEY_BOB = BOB.secret;
process.env.DR_TEST_BRIDGE_KEY_STRANGER = STRANGER.secret;

const ALLOW: AllowListFile = {
  identities: {
    // An on-call lead's chat tool: may start, approve and reject promotions of clusters in us.
    'chatops:alice': { approver: 'alice@example.com', may: [{ action: ['start', 'approve', 'reject'], runbooks: ['promote'], sites: ['us'] }] },
    // May approve promotions, but only in eu.
    'opsgenie:bob': { approver: 'bob@example.com', may: [{ action: 'approve', runbooks: ['promote'], sites: ['eu'] }] },
    // May reject anything anywhere (from PagerDuty notes).
    'pagerduty:PCAROL1': { approver: 'carol@example.com', may: [{ action: 'reject', runbooks: ['*'], sites: ['*'] }] },
  },
};

const pdHeaders = (body: string, secret = PD_SECRET) => signPd(body, secret);

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
    const { status, body: answer } = await postTo(baseUrl, url, body, headers);
    return { status, body: answer };
  };
  const generic = (body: unknown, key: TestKey = ALICE, opts?: SignOptions) => {
    const text = JSON.stringify(body);
    return post(GENERIC_ROUTE, text, drHeaders(text, key, opts));
  };
  let config: ReturnType<typeof resolveBridgeConfig>;
  const listen = async () => {
    app = buildBridge({ client: harness.client, config, taskQueue: harness.taskQueue });
    baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  };

  beforeAll(async () => {
    rmSync(DIR, { recursive: true, force: true });
    mkdirSync(DIR, { recursive: true });
    writeFileSync(join(DIR, 'allow.json'), JSON.stringify(ALLOW));
    writeFileSync(join(DIR, 'pagerduty.secret'), `${PD_SECRET}\n`, { mode: 0o600 });
    writeFileSync(join(DIR, 'pagerduty-other.secret'), `${PD_OTHER_SECRET}\n`, { mode: 0o600 });
    registerSecretsForAudit('incident-bridge', [ALICE.secret, BOB.secret, STRANGER.secret, PD_SECRET, PD_OTHER_SECRET]);
    config = resolveBridgeConfig({
      allowListFile: 'allow.json', auditFile: 'audit.jsonl', replayStoreDir: 'replay', windowSeconds: 300,
      callers: {
        [ALICE.keyId]: { identity: 'chatops:alice', secretEnv: 'DR_TEST_BRIDGE_KEY_ALICE' },
        [BOB.keyId]: { identity: 'opsgenie:bob', secretEnv: 'DR_TEST_BRIDGE_KEY_BOB' },
        [STRANGER.keyId]: { identity: 'slack:U999', secretEnv: 'DR_TEST_BRIDGE_KEY_STRANGER' },
      },
      pagerduty: { subscriptions: { PSUBMAIN: { secretFile: 'pagerduty.secret' }, PSUBOTHER: { secretFile: 'pagerduty-other.secret' } } },
    }, DIR);
    const ready = new Promise<RunbookHarness>((resolveReady) => {
      harnessDone = withRunbookWorkers((h) => new Promise<void>((release) => {
        releaseHarness = release;
        resolveReady(h);
      }), { sitesFile: typedNamesSitesFile() });
    });
    harness = await ready;
    await listen();
    pair = await createStandbyPair('ib');
  });

  afterAll(async () => {
    await app?.close();
    releaseHarness?.();
    await harnessDone;
    if (pair) await deleteStandbyPair(pair);
  });

  it('refuses at start a config with one secret for every caller, two callers sharing a secret, or no callers', () => {
    const base = { allowListFile: 'allow.json', auditFile: 'audit.jsonl', replayStoreDir: 'replay' };
    expect(() => resolveBridgeConfig({ ...base, secretEnv: 'DR_TEST_BRIDGE_KEY_ALICE' } as unknown as BridgeConfigFile, DIR))
      .toThrow(/^one shared secret for every caller is no longer accepted/);
    expect(() => resolveBridgeConfig({ ...base, callers: {
      a: { identity: 'chatops:a', secretEnv: 'DR_TEST_BRIDGE_KEY_ALICE' }, b: { identity: 'chatops:b', secretEnv: 'DR_TEST_BRIDGE_KEY_ALICE' },
    } }, DIR)).toThrow('keys "a" and "b" have the same secret: give every caller its own');
    expect(() => resolveBridgeConfig({ ...base, callers: { a: { identity: 'chatops:a', secretEnv: 'DR_TEST_BRIDGE_KEY_ALICE' } },
      pagerduty: { subscriptions: { P1: { secretEnv: 'DR_TEST_BRIDGE_KEY_ALICE' } } } }, DIR)).toThrow('keys "a" and "P1" have the same secret: give every caller its own');
    expect(() => resolveBridgeConfig(base as BridgeConfigFile, DIR)).toThrow(/^"callers" is missing/);
  });

  it('refuses a bad signature, another caller\'s key, an unknown key id, a stale timestamp and an unsigned request (401), and audits each', async () => {
    const body = { action: 'approve', workflowId: 'promote/us/acid-ib', ticket: 'INC-1' };
    let r = await generic(body, ALICE, { signWith: 'not-the-secret-at-all-0123456789' });
    expect(r).toEqual({ status: 401, body: { ok: false, message: 'bad signature: X-DR-Signature is not the HMAC-SHA256 of "<X-DR-Timestamp>.<X-DR-Delivery-Id>.<raw body>" with the key "chatops-alice"' } });
    expect(lastAudit()).toMatchObject({
      route: GENERIC_ROUTE, identity: null, keyId: ALICE.keyId, authenticated: false, action: 'approve', target: 'promote/us/acid-ib',
      outcome: 'refused', status: 401, reason: expect.stringMatching(/^bad signature/),
    });
    // Bob's own (valid) key, under Alice's key id: a caller cannot sign as another.
    r = await generic(body, ALICE, { signWith: BOB.secret });
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^bad signature: .* with the key "chatops-alice"$/);
    r = await generic(body, { keyId: 'chatops-mallory', secret: BOB.secret });
    expect(r).toEqual({ status: 401, body: { ok: false, message: 'unknown key id "chatops-mallory": X-DR-Key-Id must name a key the bridge config lists under "callers"' } });
    expect(lastAudit()).toMatchObject({ identity: null, keyId: 'chatops-mallory', authenticated: false, status: 401 });

    r = await generic(body, ALICE, { ts: Math.floor(Date.now() / 1000) - 400 });
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^stale request: X-DR-Timestamp is 40\d s old \(window 300 s\)/);
    expect(lastAudit()).toMatchObject({ outcome: 'refused', status: 401, reason: expect.stringMatching(/^stale request/) });

    r = await post(GENERIC_ROUTE, JSON.stringify(body), { 'content-type': 'application/json' });
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^unsigned request: send X-DR-Key-Id \(your key id\), X-DR-Timestamp/);
    expect(lastAudit()).toMatchObject({ status: 401, reason: expect.stringMatching(/^unsigned request/) });

    // A body changed after signing: the signature covers the raw bytes, so even whitespace counts.
    const text = JSON.stringify(body);
    r = await post(GENERIC_ROUTE, `${text} `, drHeaders(text, ALICE));
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^bad signature/);
  });

  it('refuses malformed JSON, missing fields and an unknown action with what to fix (422)', async () => {
    const broken = '{"action": "approve", "workflowId": ';
    let r = await post(GENERIC_ROUTE, broken, drHeaders(broken, ALICE));
    expect(r.status).toBe(422);
    expect(r.body.message).toMatch(/^the body is not valid JSON \(.+\): send one JSON object$/);
    expect(lastAudit()).toMatchObject({ authenticated: true, identity: 'chatops:alice', keyId: ALICE.keyId, outcome: 'refused', status: 422, reason: expect.stringMatching(/not valid JSON/) });

    r = await generic({ action: 'approve' });
    expect(r.status).toBe(422);
    expect(r.body.message).toBe('workflowId is missing: the run to decide, "<runbook>/<site>/<cluster>", e.g. "promote/us/acid-demo"; ' +
      'ticket is missing: name the incident or change ticket');
    expect(lastAudit()).toMatchObject({ identity: 'chatops:alice', action: 'approve', status: 422, reason: expect.stringMatching(/^workflowId is missing/) });

    r = await generic({ action: 'promote-now' });
    expect(r.status).toBe(422);
    expect(r.body.message).toBe('action must be one of "approve", "reject", "start" (got "promote-now")');
    expect(lastAudit()).toMatchObject({ action: 'promote-now', status: 422 });

    r = await generic({ action: 'approve', workflowId: 'us/acid-ib', ticket: 'INC-1' });
    expect(r.status).toBe(422);
    expect(r.body.message).toMatch(/^workflowId "us\/acid-ib" must be "<runbook>\/<site>\/<cluster>"/);

    r = await generic({ action: 'start', runbook: 'promote', input: { cluster: 'us', mode: 'planned' } });
    expect(r.status).toBe(422);
    expect(r.body.message).toMatch(/^input.cluster "us" must be "<site>\/<cluster>"/);
  });

  it('refuses an identity not in the allow-list, one not allowed for that runbook or site, and a body naming another identity (403), before asking Temporal', async () => {
    let r = await generic({ action: 'approve', workflowId: 'promote/us/acid-ib', ticket: 'INC-1' }, STRANGER);
    expect(r).toEqual({ status: 403, body: { ok: false, message: 'identity "slack:U999" is not in the allow-list' } });
    expect(lastAudit()).toMatchObject({ identity: 'slack:U999', authenticated: true, outcome: 'refused', status: 403, reason: 'identity "slack:U999" is not in the allow-list' });

    r = await generic({ action: 'approve', workflowId: 'promote/us/acid-ib', ticket: 'INC-1' }, BOB);
    expect(r).toEqual({ status: 403, body: { ok: false, message: 'identity "opsgenie:bob" may not approve promote runs at site "us"' } });
    expect(lastAudit()).toMatchObject({ identity: 'opsgenie:bob', keyId: BOB.keyId, target: 'promote/us/acid-ib', status: 403 });

    r = await generic({ action: 'approve', workflowId: 'failback-reseed/us/acid-ib', ticket: 'INC-1' });
    expect(r.status).toBe(403);
    expect(r.body.message).toBe('identity "chatops:alice" may not approve failback-reseed runs at site "us"');

    // The stranger's key with a body naming Alice; Alice's own key repeating her identity is fine (older tools).
    r = await generic({ action: 'approve', identity: 'chatops:alice', workflowId: 'promote/us/acid-ib', ticket: 'INC-1' }, STRANGER);
    expect(r).toEqual({ status: 403, body: { ok: false, message: 'the body names identity "chatops:alice", but key "slack-u999" proves "slack:U999": the identity comes from the key; leave "identity" out of the body' } });
    expect(lastAudit()).toMatchObject({ identity: 'slack:U999', keyId: STRANGER.keyId, authenticated: true, status: 403 });
    r = await generic({ action: 'approve', identity: 'chatops:alice', workflowId: 'promote/us/acid-nosuch', ticket: 'INC-1' });
    expect(r.status).toBe(404);
  });

  it('answers 404 for a run that does not exist', async () => {
    const r = await generic({ action: 'reject', workflowId: 'promote/us/acid-nosuch', ticket: 'INC-1' });
    expect(r).toEqual({ status: 404, body: { ok: false, message: 'no run with workflow ID promote/us/acid-nosuch' } });
    expect(lastAudit()).toMatchObject({ identity: 'chatops:alice', action: 'reject', target: 'promote/us/acid-nosuch', outcome: 'refused', status: 404 });
  });

  it('PagerDuty: a signed /dr note rejects the open gate as the mapped approver; bad signatures, replays, stale and ordinary notes are not decisions', async () => {
    const workflowId = `promote/${pair!.standby}`;
    const started = await generic({
      action: 'start', runbook: 'promote', ticket: 'INC-7',
      input: { cluster: pair!.standby, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false },
    });
    expect(started).toEqual({ status: 200, body: { ok: true, workflowId, runId: expect.any(String) } });
    expect(lastAudit()).toMatchObject({ identity: 'chatops:alice', action: 'start', target: workflowId, outcome: 'accepted', status: 200, approver: 'alice@example.com' });
    const handle = harness.client.workflow.getHandle(workflowId);
    expect((await pendingGate(handle)).gate).toBe('promote');

    // While the gate is open: a second start is refused, and so is an identity allowed elsewhere only.
    let r = await generic({ action: 'start', runbook: 'promote', input: { cluster: pair!.standby, mode: 'planned' } });
    expect(r.status).toBe(409);
    expect(r.body.message).toMatch(new RegExp(`^${workflowId} is already running`));
    r = await generic({ action: 'approve', workflowId, ticket: 'INC-7' }, BOB);
    expect(r.status).toBe(403);
    // Bob's key with a body naming Alice (who may approve here): refused, the gate stays open.
    r = await generic({ action: 'approve', identity: 'chatops:alice', workflowId, ticket: 'INC-7' }, BOB);
    expect(r.status).toBe(403);
    expect(r.body.message).toMatch(/^the body names identity "chatops:alice", but key "opsgenie-bob" proves "opsgenie:bob"/);
    expect(await handle.query('getPendingApproval')).not.toBeNull();

    const command = `/dr reject ${workflowId} INC-7 not during the sale`;
    // Signed with the wrong secret.
    const forged = pdNote(command);
    r = await post(PAGERDUTY_ROUTE, forged, pdHeaders(forged, 'wrong-secret-wrong-secret'));
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^bad signature: no v1 value in X-PagerDuty-Signature is the HMAC-SHA256 of the raw body with a configured subscription's secret$/);
    expect(lastAudit()).toMatchObject({ route: PAGERDUTY_ROUTE, identity: 'pagerduty:PCAROL1', authenticated: false, outcome: 'refused', status: 401 });
    // Signed with the generic route's key of a caller: keys are not interchangeable between routes.
    r = await post(PAGERDUTY_ROUTE, forged, pdHeaders(forged, ALICE.secret));
    expect(r.status).toBe(401);
    // Signed, but from long ago.
    const old = pdNote(command, { occurredAt: new Date(Date.now() - 3600_000) });
    r = await post(PAGERDUTY_ROUTE, old, pdHeaders(old));
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/^stale event: event.occurred_at is 36\d\d s old \(window 300 s\)/);
    // The same, re-signed by the other subscription: still stale.
    r = await post(PAGERDUTY_ROUTE, old, pdHeaders(old, PD_OTHER_SECRET));
    expect(r.body.message).toMatch(/^stale event/);
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
      route: PAGERDUTY_ROUTE, identity: 'pagerduty:PCAROL1', keyId: 'PSUBMAIN', authenticated: true, action: 'reject', target: workflowId,
      outcome: 'accepted', status: 200, reason: null, approver: 'carol@example.com', eventId,
    });
    const err = await handle.result().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause as { type?: string }).type).toBe('ApprovalRejectedError');
    expect(await roleOf(pair!.source)).toBe('primary');
    expect(await roleOf(pair!.standby)).toBe('standby_leader');

    // PagerDuty delivers at least once: the same event again is not a second decision, also after a restart.
    r = await post(PAGERDUTY_ROUTE, note, headers);
    expect(r).toEqual({ status: 401, body: { ok: false, message: `replayed event: event ${eventId} was already received` } });
    expect(lastAudit()).toMatchObject({ eventId, outcome: 'refused', status: 401 });
    await app.close();
    await listen();
    r = await post(PAGERDUTY_ROUTE, note, headers);
    expect(r).toEqual({ status: 401, body: { ok: false, message: `replayed event: event ${eventId} was already received` } });

    // The run is over: nothing to decide.
    r = await generic({ action: 'approve', workflowId, ticket: 'INC-7' });
    expect(r).toEqual({ status: 409, body: { ok: false, message: `${workflowId} is not running (FAILED): no approval gate is open` } });
    expect(lastAudit()).toMatchObject({ identity: 'chatops:alice', target: workflowId, outcome: 'refused', status: 409 });
  });

  it('generic form: approves as the allow-list\'s approver of the key\'s identity (not a name the body claims), refuses the replayed request, and the run promotes', async () => {
    const workflowId = `promote/${pair!.standby}`;
    const started = await generic({
      action: 'start', runbook: 'promote',
      input: { cluster: pair!.standby, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false },
    });
    expect(started.status).toBe(200);
    const handle = harness.client.workflow.getHandle(workflowId);
    await pendingGate(handle);

    const text = JSON.stringify({
      action: 'approve', approver: 'mallory', workflowId, ticket: 'CHG-42', comment: 'planned switch',
    });
    const headers = drHeaders(text, ALICE);
    let r = await post(GENERIC_ROUTE, text, headers);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      ok: true, workflowId, gate: 'promote',
      record: { decision: 'approved', approver: 'alice@example.com', ticket: 'CHG-42', via: 'update', comment: 'planned switch (via the incident bridge, identity chatops:alice)' },
    });
    expect(lastAudit()).toMatchObject({
      route: GENERIC_ROUTE, identity: 'chatops:alice', keyId: ALICE.keyId, deliveryId: headers['x-dr-delivery-id'], authenticated: true,
      action: 'approve', target: workflowId, outcome: 'accepted', status: 200, reason: null, approver: 'alice@example.com',
    });

    // The same bytes with the same signature, within the window; then re-signed with a fresh timestamp.
    const replayed = `replayed request: delivery ${headers['x-dr-delivery-id']} of key "chatops-alice" was already received; give every request its own X-DR-Delivery-Id`;
    r = await post(GENERIC_ROUTE, text, headers);
    expect(r).toEqual({ status: 401, body: { ok: false, message: replayed } });
    expect(lastAudit()).toMatchObject({ identity: 'chatops:alice', outcome: 'refused', status: 401, reason: expect.stringMatching(/^replayed request/) });
    r = await post(GENERIC_ROUTE, text, drHeaders(text, ALICE, { ts: Math.floor(Date.now() / 1000) + 1, deliveryId: headers['x-dr-delivery-id'] }));
    expect(r).toEqual({ status: 401, body: { ok: false, message: replayed } });

    // A second decision on the same gate.
    r = await generic({ action: 'reject', workflowId, ticket: 'CHG-42' });
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
    for (const secret of [ALICE.secret, BOB.secret, STRANGER.secret, PD_SECRET, PD_OTHER_SECRET]) expect(text).not.toContain(secret);
    for (const s of sentSignatures) expect(text).not.toContain(s);
  });
});
