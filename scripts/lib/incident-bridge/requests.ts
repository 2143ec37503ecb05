// The generic route's body: what an incident tool may ask (approve, reject, start) and the checks that say what to
// fix. Who asks is not in here: it is the identity of the key that signed the request (signatures.ts).
import { parseClusterRef } from '../../../workflows/contracts/clusters';
import { RUNBOOK_NAMES } from '../../../workflows/contracts/runbooks';
import { BRIDGE_ACTIONS, type BridgeAction } from './config';

/** A refusal with its HTTP status; the message says what to fix. */
export class Refusal extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export interface DecisionRequest {
  action: 'approve' | 'reject';
  workflowId: string;
  ticket: string;
  comment?: string;
  gate?: string;
  acknowledgeDataLoss?: boolean;
  acknowledgeUnconfirmedFence?: boolean;
}

export interface StartRequest {
  action: 'start';
  runbook: string;
  input: Record<string, unknown>;
  ticket?: string;
  comment?: string;
}

/** The runbooks a tool may start, and the input field naming the cluster the run is about (its workflow ID). */
export const STARTABLE: Record<string, { workflowType: string; clusterField: string }> = {
  [RUNBOOK_NAMES.provisionStandby]: { workflowType: 'provisionStandby', clusterField: 'target' },
  [RUNBOOK_NAMES.forceBackup]: { workflowType: 'forceBackup', clusterField: 'cluster' },
  [RUNBOOK_NAMES.promote]: { workflowType: 'promote', clusterField: 'cluster' },
  [RUNBOOK_NAMES.failbackReseed]: { workflowType: 'failbackReseed', clusterField: 'formerPrimary' },
};
const RUNBOOKS: string[] = Object.values(RUNBOOK_NAMES);

type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

export function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new Refusal(422, `the body is not valid JSON (${(err as Error).message}): send one JSON object`);
  }
}

/**
 * Checks the body of a request whose key proved `identity`. A body may repeat that identity (older tools send it);
 * one naming any other identity is refused: identity comes from the key, and a body claiming another is a mistake
 * or an attempt to act as someone else.
 */
export function validateGeneric(body: unknown, identity: string, keyId: string): DecisionRequest | StartRequest {
  if (!isObj(body)) throw new Refusal(422, 'the body must be a JSON object with "action"');
  if (body.identity !== undefined && body.identity !== identity) {
    throw new Refusal(403, `the body names identity ${JSON.stringify(body.identity)}, but key "${keyId}" proves "${identity}": ` +
      'the identity comes from the key; leave "identity" out of the body');
  }
  const problems: string[] = [];
  const { action } = body;
  if (typeof action !== 'string' || !BRIDGE_ACTIONS.includes(action as BridgeAction)) {
    problems.push(`action must be one of ${BRIDGE_ACTIONS.map((a) => `"${a}"`).join(', ')}${action === undefined ? '' : ` (got ${JSON.stringify(action)})`}`);
  }
  for (const f of ['comment', 'ticket'] as const) {
    if (body[f] !== undefined && typeof body[f] !== 'string') problems.push(`${f} must be a string`);
  }
  if (action === 'approve' || action === 'reject') {
    if (!nonEmpty(body.workflowId)) problems.push('workflowId is missing: the run to decide, "<runbook>/<site>/<cluster>", e.g. "promote/us/acid-demo"');
    if (!nonEmpty(body.ticket)) problems.push('ticket is missing: name the incident or change ticket');
    if (body.gate !== undefined && typeof body.gate !== 'string') problems.push('gate must be a string');
    for (const f of ['acknowledgeDataLoss', 'acknowledgeUnconfirmedFence'] as const) {
      if (body[f] !== undefined && typeof body[f] !== 'boolean') problems.push(`${f} must be true or false`);
    }
  } else if (action === 'start') {
    if (!nonEmpty(body.runbook)) problems.push(`runbook is missing: one of ${Object.keys(STARTABLE).join(', ')}`);
    if (!isObj(body.input)) problems.push('input is missing: the runbook\'s input as a JSON object (see the README)');
  }
  if (problems.length) throw new Refusal(422, problems.join('; '));
  return body as unknown as DecisionRequest | StartRequest;
}

/** `<runbook>/<site>/<cluster>` → its runbook and site. */
export function parseWorkflowId(workflowId: string): { runbook: string; site: string } {
  const slash = workflowId.indexOf('/');
  const runbook = slash > 0 ? workflowId.slice(0, slash) : '';
  if (!RUNBOOKS.includes(runbook)) {
    throw new Refusal(422, `workflowId "${workflowId}" must be "<runbook>/<site>/<cluster>" with a runbook of ${RUNBOOKS.join(', ')}`);
  }
  try {
    return { runbook, site: parseClusterRef(workflowId.slice(slash + 1), 'workflowId').site };
  } catch (err) {
    throw new Refusal(422, (err as Error).message);
  }
}
