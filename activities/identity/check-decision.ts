// Who is deciding, and may they? Run as a local activity by the approval gate: the token's signature needs crypto
// and the issuer's keys, which workflow code has neither of. The answer (verified claims, the rule, the policy's
// version) lands in history, so a replay never verifies again and a later key rotation changes nothing.
import type { ActivityDeps } from '../deps';
import type { DecisionCheck, DecisionCheckRequest } from '../../workflows/contracts/approvals';
import type { ApproverIdentity } from '../../workflows/contracts/identity';
import { IdentityRefusedError } from '../../workflows/contracts/errors';
import { ruleFor, type DecisionScope } from './approval-policy';
import { verifyIdToken } from './verify-id-token';

const sameperson = (a: ApproverIdentity, b: ApproverIdentity) => a.issuer === b.issuer && a.subject === b.subject;

/** The verified identity behind a token (its nonce must be `nonce`), or the sentence that says why it proves nothing. */
export async function identify(deps: ActivityDeps, idToken: string, nonce: string): Promise<ApproverIdentity | { refused: string }> {
  const cfg = deps.sites.identity;
  if (!cfg?.issuers.length) {
    return { refused: `the sites file ${deps.sites.path} has no "identity" section: no issuer is trusted, so no token can prove who this is` };
  }
  try {
    const id = await verifyIdToken(cfg, idToken, { nonce });
    return { issuer: id.issuer, subject: id.subject, groups: id.groups, name: id.name ?? id.email, authenticated: true };
  } catch (err) {
    // The message of a refusal never holds the token (verify-id-token.ts); an unreachable issuer is retried.
    if (err instanceof IdentityRefusedError) return { refused: `the ID token was refused: ${err.message}` };
    throw err;
  }
}

export function createCheckApprovalDecision(deps: ActivityDeps) {
  return async function identityCheckDecision(req: DecisionCheckRequest): Promise<DecisionCheck> {
    const policy = deps.sites.approvals;
    const refuse = (reason: string): DecisionCheck => ({ accepted: false, reason, policyVersion: policy.version });
    const { scope } = req;
    if (!req.idToken) {
      if (req.typedName?.trim() && policy.acceptTypedNames) {
        return {
          accepted: true, approver: { issuer: 'typed name', subject: req.typedName.trim(), groups: [], authenticated: false },
          rule: 'acceptTypedNames (sandbox only: nobody was verified)', policyVersion: policy.version,
        };
      }
      const issuers = deps.sites.identity?.issuers.map((i) => i.issuer).join(' or ') || 'a trusted issuer (none is configured)';
      return refuse(`a decision needs an ID token from ${issuers} whose nonce is "${req.nonce}" (drctl login, then drctl ${scope.decision}); ` +
        `a typed name${req.typedName ? ` ("${req.typedName}")` : ''} proves nothing`);
    }
    const who = await identify(deps, req.idToken, req.nonce);
    if ('refused' in who) return refuse(who.refused);
    if (scope.decision === 'approve' && req.requester && sameperson(req.requester, who)) {
      return refuse(`four-eyes: ${who.subject} started this run and cannot approve it; someone else must`);
    }
    if (req.signedBy.some((s) => sameperson(s, who))) {
      return refuse(`${who.subject} has already approved this gate: the next approval must come from someone else`);
    }
    const r = ruleFor(policy, who, scope);
    if ('refused' in r) return refuse(r.refused);
    return { accepted: true, approver: who, rule: r.rule, policyVersion: policy.version };
  };
}

/**
 * May the starter of a run that can stop a primary (fence-guard, a disruptive drill) start it? Only someone the
 * approvals policy lets approve the promotion it stands for: the same authority, proven the same way.
 */
export function createCheckStarterAuthority(deps: ActivityDeps) {
  return async function identityCheckStarterAuthority(req: { idToken?: string; nonce: string; scope: DecisionScope; what: string }): Promise<
    { allowed: true; starter: ApproverIdentity; rule: string } | { allowed: false; reason: string }
  > {
    const policy = deps.sites.approvals;
    if (!req.idToken) {
      if (policy.acceptTypedNames) {
        return { allowed: true, starter: { issuer: 'none', subject: 'unauthenticated', groups: [], authenticated: false }, rule: 'acceptTypedNames (sandbox only: nobody was verified)' };
      }
      return { allowed: false, reason: `${req.what} takes the authority to approve ${req.scope.runbook} of ${req.scope.target}: start it with ` +
        `requesterIdToken, the ID token of \`drctl login\` with the nonce "${req.nonce}"` };
    }
    const who = await identify(deps, req.idToken, req.nonce);
    if ('refused' in who) return { allowed: false, reason: who.refused };
    const r = ruleFor(policy, who, req.scope);
    if ('refused' in r) return { allowed: false, reason: `${req.what} takes the authority to approve ${req.scope.runbook} of ${req.scope.target}: ${r.refused}` };
    return { allowed: true, starter: who, rule: r.rule };
  };
}

/** Who started a run: verified from the token the starter passed (nonce `start:<workflowId>`), or unauthenticated. */
export function createIdentifyRequester(deps: ActivityDeps) {
  return async function identityIdentifyRequester(req: { idToken?: string; nonce: string }): Promise<
    { requester: ApproverIdentity | null; why: string | null; refuse: boolean }
  > {
    const required = deps.sites.approvals.requireAuthenticatedRequester;
    if (!req.idToken) return { requester: null, why: 'no requesterIdToken was given', refuse: required };
    const who = await identify(deps, req.idToken, req.nonce);
    // A claim that does not verify is refused whatever the policy: someone said they were someone they cannot prove.
    if ('refused' in who) return { requester: null, why: who.refused, refuse: true };
    return { requester: who, why: null, refuse: false };
  };
}
