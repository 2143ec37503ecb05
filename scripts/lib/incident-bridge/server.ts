// The incident-tool bridge: an HTTP endpoint incident tools call to approve, reject or start a runbook.
//
//   POST /v1/requests    the generic JSON form, signed with the caller's own key (X-DR-Key-Id, X-DR-Timestamp,
//                        X-DR-Delivery-Id, X-DR-Signature)
//   POST /v1/pagerduty   PagerDuty v3 webhooks (X-PagerDuty-Signature, one secret per subscription): a
//                        `/dr approve|reject ...` note
//   GET  /healthz        liveness, unauthenticated, not audited
//
// Every call is checked in this order: key and signature over the raw body (401), freshness (401), the caller's
// rate limit (429), replay of its delivery id, kept on disk across restarts (401), body (422; a body naming another
// identity than the key's: 403), the allow-list (403), then Temporal: no such run (404), no gate open / already
// decided / already running (409). The identity is the one the verified key proves (for PagerDuty: the user
// PagerDuty names in the event its subscription signed), never one the body claims; the approver recorded is the one
// the allow-list maps that identity to, and the identity goes into the approval's comment. Every call ends as one
// line in the audit file.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { isGrpcServiceError, type Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { decideRunbook, DecisionRefusedError, RunbookAlreadyRunningError, startRunbook } from '../runbook-client';
import { parseClusterRef } from '../../../workflows/contracts/clusters';
import type { ApprovalDecision } from '../../../workflows/contracts/approvals';
import { AllowList, type BridgeConfig, type CallerKey } from './config';
import { AuditLog, type AuditOutcome } from './audit';
import { DR_DELIVERY_ID_HEADER, DR_KEY_ID_HEADER, verifyDrRequest, verifyPagerDutySignature, PAGERDUTY_SIGNATURE_HEADER } from './signatures';
import { parsePagerDutyCommand, parsePagerDutyEnvelope } from './pagerduty';
import { ReplayStore } from './replay-store';
import { RateLimiter } from './rate-limit';
import { isObj, parseJson, parseWorkflowId, Refusal, STARTABLE, validateGeneric, type DecisionRequest, type StartRequest } from './requests';

export const GENERIC_ROUTE = '/v1/requests';
export const PAGERDUTY_ROUTE = '/v1/pagerduty';

export interface BridgeOptions {
  /** A connected Temporal client (main.ts: worker/connection.ts; tests: theirs). */
  client: Client;
  config: BridgeConfig;
  /** The control task queue runbooks are started on (main.ts: controlTaskQueue(DR_TASK_QUEUE_PREFIX)). */
  taskQueue: string;
  /** fastify's logger option; default off. Request headers (signatures) are never logged. */
  logger?: FastifyServerOptions['logger'];
}

interface CallContext {
  route: string;
  /** The verified identity; before verification, null (PagerDuty: the user the unverified event names). */
  identity: string | null;
  authenticated: boolean;
  action: string | null;
  target: string | null;
  /** The key id the request names (verified when authenticated is true). */
  keyId?: string;
  deliveryId?: string;
  approver?: string;
  eventId?: string;
  /** Released when the bridge fails on its side (5xx), so the sender's retry is not taken for a replay. */
  replayKey?: string;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
  outcome?: AuditOutcome;
  reason?: string;
}

type Obj = Record<string, unknown>;

/** What an unverified body claims, for the audit line only. */
function claimed(raw: Buffer, pick: (body: Obj) => Partial<Pick<CallContext, 'identity' | 'action' | 'target'>>): Pick<CallContext, 'identity' | 'action' | 'target'> {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    body = null;
  }
  const p = isObj(body) ? pick(body) : {};
  const s = (v: unknown) => (typeof v === 'string' ? v : null);
  return { identity: s(p.identity), action: s(p.action), target: s(p.target) };
}

function errorChain(err: unknown): { codes: unknown[]; text: string } {
  const codes: unknown[] = [];
  const texts: string[] = [];
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    if (isGrpcServiceError(e)) codes.push(e.code);
    codes.push((e as { code?: unknown }).code);
    texts.push(String((e as Error).message ?? e));
  }
  return { codes, text: texts.join(': ') };
}

const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

/** The status for a refusal the approval gate (or decideRunbook) gave. */
function decisionRefusalStatus(message: string): number {
  if (/no such run/.test(message)) return 404;
  if (/acknowledge|approver is missing|ticket is missing/.test(message)) return 422;
  return 409;
}

export function buildBridge(opts: BridgeOptions): FastifyInstance {
  const { client, config, taskQueue } = opts;
  const allowList = new AllowList(config.allowListFile);
  const audit = new AuditLog(config.auditFile);
  const replay = new ReplayStore(config.replayStoreDir);
  const rateLimiter = new RateLimiter();
  // PagerDuty allows 256 KB; nothing the bridge reads is near that.
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 256 * 1024 });

  // The signature covers the exact bytes sent: keep the raw body for every content type and parse it ourselves.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const rawBody = (request: FastifyRequest): Buffer => (Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0));

  const temporal = <R>(fn: () => Promise<R>): Promise<R> => client.withDeadline(Date.now() + config.temporalTimeoutSeconds * 1000, fn);

  async function respond(ctx: CallContext, reply: FastifyReply, fn: () => Promise<Answer>): Promise<FastifyReply> {
    let answer: Answer;
    try {
      answer = await fn();
    } catch (err) {
      if (err instanceof Refusal) {
        answer = {
          status: err.status, body: { ok: false, message: err.message }, headers: err.headers,
          outcome: err.status >= 500 ? 'failed' : 'refused', reason: err.message,
        };
      } else {
        const { codes, text } = errorChain(err);
        const status = codes.includes(GRPC_DEADLINE_EXCEEDED) || /deadline exceeded/i.test(text) ? 504
          : codes.includes(GRPC_UNAVAILABLE) ? 503 : 500;
        const message = status === 504 ? `Temporal did not answer within ${config.temporalTimeoutSeconds} s: try again`
          : status === 503 ? `Temporal is unavailable (${text}): try again` : `the bridge failed: ${text}`;
        reply.log.error({ route: ctx.route, target: ctx.target, err: text }, 'incident bridge call failed');
        answer = { status, body: { ok: false, message }, outcome: 'failed', reason: message };
      }
    }
    if (answer.status >= 500 && ctx.replayKey) await replay.release(ctx.replayKey);
    await audit.write({
      time: new Date().toISOString(),
      route: ctx.route,
      identity: ctx.identity,
      authenticated: ctx.authenticated,
      action: ctx.action,
      target: ctx.target,
      outcome: answer.outcome ?? 'accepted',
      status: answer.status,
      reason: answer.reason ?? null,
      ...(ctx.keyId ? { keyId: ctx.keyId } : {}),
      ...(ctx.deliveryId ? { deliveryId: ctx.deliveryId } : {}),
      ...(ctx.approver && answer.status === 200 ? { approver: ctx.approver } : {}),
      ...(ctx.eventId ? { eventId: ctx.eventId } : {}),
    });
    return reply.code(answer.status).headers(answer.headers ?? {}).send(answer.body);
  }

  /** The caller's allowance, then its delivery id: neither is spent by a request that fails verification. */
  async function admit(ctx: CallContext, caller: CallerKey, replayKey: string, expiresAtMs: number, replayMessage: string): Promise<void> {
    const rate = rateLimiter.take(caller);
    if (!rate.ok) throw new Refusal(429, rate.reason, { 'retry-after': String(rate.retryAfterSeconds) });
    if (!(await replay.claim(replayKey, expiresAtMs))) throw new Refusal(401, replayMessage);
    ctx.replayKey = replayKey;
  }

  async function decide(ctx: CallContext, identity: string, req: DecisionRequest, origin: string, ackHint = ''): Promise<Answer> {
    const { runbook, site } = parseWorkflowId(req.workflowId);
    const auth = allowList.authorize(identity, req.action, runbook, site);
    if (!auth.ok) throw new Refusal(403, auth.reason);
    ctx.approver = auth.approver;
    const decision: ApprovalDecision = {
      approver: auth.approver,
      ticket: req.ticket.trim(),
      comment: `${req.comment?.trim() ? `${req.comment.trim()} ` : ''}(via the incident bridge, identity ${identity}${origin})`,
      ...(req.gate ? { gate: req.gate } : {}),
      ...(req.acknowledgeDataLoss !== undefined ? { acknowledgeDataLoss: req.acknowledgeDataLoss } : {}),
      ...(req.acknowledgeUnconfirmedFence !== undefined ? { acknowledgeUnconfirmedFence: req.acknowledgeUnconfirmedFence } : {}),
    };
    const decided = await temporal(async () => {
      const described = await client.workflow.getHandle(req.workflowId).describe().catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) throw new Refusal(404, `no run with workflow ID ${req.workflowId}`);
        throw err;
      });
      if (described.status.name !== 'RUNNING') {
        throw new Refusal(409, `${req.workflowId} is not running (${described.status.name}): no approval gate is open`);
      }
      return decideRunbook(client, req.workflowId, decision, req.action === 'approve');
    }).catch((err: unknown) => {
      if (!(err instanceof DecisionRefusedError)) throw err;
      if (/deadline exceeded/i.test(err.message)) throw err;
      const status = decisionRefusalStatus(err.message);
      throw new Refusal(status, status === 422 && ackHint ? `${err.message}${ackHint}` : err.message);
    });
    return { status: 200, body: { ok: true, workflowId: req.workflowId, gate: decided.gate.gate, record: decided.record } };
  }

  async function start(ctx: CallContext, identity: string, req: StartRequest): Promise<Answer> {
    const spec = STARTABLE[req.runbook];
    if (!spec) throw new Refusal(422, `runbook "${req.runbook}" cannot be started here: one of ${Object.keys(STARTABLE).join(', ')}`);
    let site: string;
    let cluster: string;
    try {
      const ref = parseClusterRef(req.input[spec.clusterField], `input.${spec.clusterField}`);
      site = ref.site;
      cluster = `${ref.site}/${ref.cluster}`;
    } catch (err) {
      throw new Refusal(422, (err as Error).message);
    }
    ctx.target = `${req.runbook}/${cluster}`;
    const auth = allowList.authorize(identity, 'start', req.runbook, site);
    if (!auth.ok) throw new Refusal(403, auth.reason);
    ctx.approver = auth.approver;
    const handle = await temporal(() => startRunbook(client, {
      workflowType: spec.workflowType, runbook: req.runbook, cluster, input: req.input, taskQueue,
      summary: `${req.runbook} ${cluster}: started by ${auth.approver} (${identity}) via the incident bridge${req.ticket ? `, ticket ${req.ticket}` : ''}`,
    })).catch((err: unknown) => {
      if (err instanceof RunbookAlreadyRunningError) throw new Refusal(409, err.message);
      throw err;
    });
    // client.workflow.start's handle carries the run id; startRunbook's declared return type does not say so.
    const runId = (handle as { firstExecutionRunId?: string }).firstExecutionRunId ?? null;
    return { status: 200, body: { ok: true, workflowId: handle.workflowId, runId } };
  }

  app.get('/healthz', async () => ({ ok: true }));

  app.post(GENERIC_ROUTE, async (request, reply) => {
    const raw = rawBody(request);
    const header = (name: string) => {
      const v = request.headers[name];
      return typeof v === 'string' ? v.slice(0, 128) : undefined;
    };
    const ctx: CallContext = {
      route: GENERIC_ROUTE, authenticated: false, keyId: header(DR_KEY_ID_HEADER), deliveryId: header(DR_DELIVERY_ID_HEADER),
      ...claimed(raw, (b) => ({ action: b.action as string, target: b.workflowId as string })),
    };
    return respond(ctx, reply, async () => {
      const verdict = verifyDrRequest(config.callers, request.headers, raw, config.windowSeconds);
      if (!verdict.ok) throw new Refusal(401, verdict.reason);
      const { identity } = verdict.caller;
      ctx.identity = identity;
      await admit(ctx, verdict.caller, verdict.replayKey, verdict.expiresAtMs,
        `replayed request: delivery ${verdict.deliveryId} of key "${verdict.caller.keyId}" was already received; give every request its own X-DR-Delivery-Id`);
      ctx.authenticated = true;
      const req = validateGeneric(parseJson(raw), identity, verdict.caller.keyId);
      ctx.action = req.action;
      if (req.action === 'start') return start(ctx, identity, req);
      ctx.target = req.workflowId;
      return decide(ctx, identity, req, '');
    });
  });

  app.post(PAGERDUTY_ROUTE, async (request, reply) => {
    const raw = rawBody(request);
    const ctx: CallContext = {
      route: PAGERDUTY_ROUTE, authenticated: false,
      ...claimed(raw, (b) => {
        const agent = isObj(b.event) && isObj(b.event.agent) ? b.event.agent : {};
        return { identity: typeof agent.id === 'string' ? `pagerduty:${agent.id}` : undefined };
      }),
    };
    return respond(ctx, reply, async () => {
      const pd = config.pagerduty;
      if (!pd) throw new Refusal(404, 'the PagerDuty route is not configured ("pagerduty" in the bridge config)');
      const verdict = verifyPagerDutySignature(pd.subscriptions, request.headers[PAGERDUTY_SIGNATURE_HEADER], raw);
      if (!verdict.ok) throw new Refusal(401, verdict.reason);
      ctx.keyId = verdict.caller.keyId;
      const parsed = parsePagerDutyEnvelope(parseJson(raw));
      if (!parsed.ok) throw new Refusal(422, parsed.reason);
      const ev = parsed.envelope;
      ctx.eventId = ev.id;
      ctx.identity = ev.identity;
      const ageSeconds = Math.round((Date.now() - ev.occurredAtMs) / 1000);
      if (Math.abs(ageSeconds) > pd.windowSeconds) {
        throw new Refusal(401, `stale event: event.occurred_at is ${ageSeconds} s ${ageSeconds > 0 ? 'old' : 'in the future'} (window ${pd.windowSeconds} s)`);
      }
      // The event id is inside the signed body (a redelivery repeats it); the X-Webhook-Id header is not signed.
      await admit(ctx, verdict.caller, `pagerduty:${ev.id}`, ev.occurredAtMs + (pd.windowSeconds + 1) * 1000,
        `replayed event: event ${ev.id} was already received`);
      ctx.authenticated = true;
      const ignored = (why: string): Answer => ({ status: 200, body: { ok: true, ignored: true, message: why }, outcome: 'ignored', reason: why });
      if (ev.eventType !== 'incident.annotated' || !ev.note) return ignored(`event type ${ev.eventType} carries no command`);
      const parsedCommand = parsePagerDutyCommand(ev.note.content);
      if (parsedCommand === null) return ignored('the note holds no /dr command');
      if (!parsedCommand.ok) throw new Refusal(422, parsedCommand.reason);
      const cmd = parsedCommand.command;
      ctx.action = cmd.action;
      ctx.target = cmd.workflowId;
      if (ev.note.trimmed) throw new Refusal(422, 'PagerDuty trimmed the note: write the /dr command in a shorter note');
      if (!ev.identity) throw new Refusal(403, 'the note was not written by a PagerDuty user (event.agent is not a user_reference)');
      return decide(ctx, ev.identity, cmd, `, PagerDuty incident ${ev.note.incidentId ?? '?'} note ${ev.note.id ?? '?'}`,
        ' (in a PagerDuty note: add --ack-data-loss / --ack-unconfirmed-fence)');
    });
  });

  // Anything else, and failures before a handler ran (a body over the limit), is audited too.
  app.setNotFoundHandler(async (request, reply) => respond(
    { route: request.url.slice(0, 200), identity: null, authenticated: false, action: null, target: null }, reply,
    async () => { throw new Refusal(404, `no such route ${request.method} ${request.url}: POST ${GENERIC_ROUTE} or ${PAGERDUTY_ROUTE}`); },
  ));
  app.setErrorHandler(async (error: { statusCode?: number; message: string }, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    return respond({ route: request.url.slice(0, 200), identity: null, authenticated: false, action: null, target: null }, reply,
      async () => { throw new Refusal(status, error.message); });
  });
  return app;
}
