// Who may decide which approval gate: the sites file's "approvals" section. A decision is allowed when some rule
// covers the gate (runbook, target, gate, decision) and names one of the decider's verified groups or subjects.
// Nothing in a runbook's input or a decision's body can widen it.
import { createHash } from 'node:crypto';
import { BadInputError } from '../../workflows/contracts/errors';
import type { ApproverIdentity } from '../../workflows/contracts/identity';

export interface ApprovalRule {
  name: string;
  /** Workflow runbook names (promote, failback-reseed, region-failover, ...) or "*". */
  runbooks: string[];
  /** `<site>/<cluster>`, `<site>/*` or "*"; a region-failover's gate has the target `<site>/*`. */
  targets: string[];
  gates: string[];
  decisions: ('approve' | 'reject')[];
  groups: string[];
  /** `sub` claims, or `<issuer>#<sub>` to name one issuer's subject. */
  subjects: string[];
}

export interface ApprovalPolicy {
  rules: ApprovalRule[];
  /** A run whose starter did not prove who they are is refused before it changes anything. */
  requireAuthenticatedRequester: boolean;
  /**
   * Sandbox demos only: a decision with a typed name and no token is taken as before identity existed (no policy,
   * no four-eyes, one approver), and the journal says it was NOT verified. Never set it on a real sites file.
   */
  acceptTypedNames: boolean;
  /** sha256 of the section as written, so a journal names the policy a decision was judged by. */
  version: string;
}

export interface DecisionScope {
  runbook: string;
  target: string;
  gate: string;
  decision: 'approve' | 'reject';
}

const NO_POLICY: Omit<ApprovalPolicy, 'version'> = { rules: [], requireAuthenticatedRequester: false, acceptTypedNames: false };

/** The "approvals" section of a sites file, checked; no section means nobody may approve anything. */
export function parseApprovalPolicy(raw: unknown, where: string): ApprovalPolicy {
  const version = createHash('sha256').update(JSON.stringify(raw ?? null)).digest('hex').slice(0, 16);
  if (raw === undefined || raw === null) return { ...NO_POLICY, version };
  const bad = (what: string) => new BadInputError(`${where}: "approvals" ${what}`);
  if (typeof raw !== 'object' || Array.isArray(raw)) throw bad('must be an object: { "rules": [...] }');
  const p = raw as Record<string, unknown>;
  const known = new Set(['rules', 'requireAuthenticatedRequester', 'acceptTypedNames']);
  const unknown = Object.keys(p).filter((k) => !known.has(k));
  if (unknown.length) throw bad(`has unknown field(s) ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
  for (const flag of ['requireAuthenticatedRequester', 'acceptTypedNames']) {
    if (p[flag] !== undefined && typeof p[flag] !== 'boolean') throw bad(`"${flag}" must be true or false`);
  }
  if (p.rules !== undefined && !Array.isArray(p.rules)) throw bad('"rules" must be a list');
  const rules = ((p.rules as unknown[]) ?? []).map((r, i) => parseRule(r, i, bad));
  const names = rules.map((r) => r.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw bad(`has two rules named "${twice}": names identify the rule in the journal`);
  return { rules, requireAuthenticatedRequester: p.requireAuthenticatedRequester === true, acceptTypedNames: p.acceptTypedNames === true, version };
}

function parseRule(raw: unknown, index: number, bad: (what: string) => BadInputError): ApprovalRule {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad(`rule ${index + 1} must be an object`);
  const r = raw as Record<string, unknown>;
  const name = typeof r.name === 'string' && r.name.trim() ? r.name.trim() : `rule ${index + 1}`;
  const list = (field: string, fallback: string[]): string[] => {
    const v = r[field];
    if (v === undefined) return fallback;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x.trim() !== '')) throw bad(`rule "${name}": "${field}" must be a list of names`);
    return v.map((x: string) => x.trim());
  };
  const decisions = list('decisions', ['approve', 'reject']);
  const wrong = decisions.filter((d) => d !== 'approve' && d !== 'reject');
  if (wrong.length) throw bad(`rule "${name}": "decisions" may hold "approve" and "reject", not ${wrong.join(', ')}`);
  const groups = list('groups', []);
  const subjects = list('subjects', []);
  if (!groups.length && !subjects.length) throw bad(`rule "${name}" names no "groups" and no "subjects": it would allow nobody`);
  return {
    name, runbooks: list('runbooks', ['*']), targets: list('targets', ['*']), gates: list('gates', ['*']),
    decisions: decisions as ApprovalRule['decisions'], groups, subjects,
  };
}

const matchesName = (patterns: string[], value: string) => patterns.includes('*') || patterns.includes(value);

/** `*`, an exact `<site>/<cluster>`, or `<site>/*` for every cluster of a site (and a region-failover of it). */
function matchesTarget(patterns: string[], target: string): boolean {
  const site = target.split('/')[0];
  return patterns.some((p) => p === '*' || p === target || p === `${site}/*`);
}

const covers = (r: ApprovalRule, s: DecisionScope) =>
  matchesName(r.runbooks, s.runbook) && matchesTarget(r.targets, s.target) && matchesName(r.gates, s.gate) && r.decisions.includes(s.decision);

const names = (r: ApprovalRule, who: ApproverIdentity) =>
  r.groups.some((g) => who.groups.includes(g)) || r.subjects.includes(who.subject) || r.subjects.includes(`${who.issuer}#${who.subject}`);

/** The rule that lets `who` take this decision, or the sentence that says why none does. */
export function ruleFor(policy: ApprovalPolicy, who: ApproverIdentity, scope: DecisionScope): { rule: string } | { refused: string } {
  const covering = policy.rules.filter((r) => covers(r, scope));
  const allowing = covering.find((r) => names(r, who));
  if (allowing) return { rule: allowing.name };
  const what = `${scope.decision} gate "${scope.gate}" of ${scope.runbook} for ${scope.target}`;
  const groups = who.groups.length ? who.groups.join(', ') : 'none';
  if (!covering.length) {
    return { refused: `no rule of the sites file's approvals policy covers "${what}": nobody may, until a rule names who can` };
  }
  const wanted = covering.map((r) => `"${r.name}" (${[...r.groups.map((g) => `group ${g}`), ...r.subjects.map((s) => `subject ${s}`)].join(', ')})`);
  return { refused: `${who.subject} (groups: ${groups}) may not ${what}: the rules that cover it allow only ${wanted.join('; ')}` };
}
