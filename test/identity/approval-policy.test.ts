// The approvals policy of the sites file: what it allows, what it refuses and how it says so.
import { parseApprovalPolicy, ruleFor, type DecisionScope } from '../../activities/identity/approval-policy';
import type { ApproverIdentity } from '../../workflows/contracts/identity';
import { BadInputError } from '../../workflows/contracts/errors';

const ISSUER = 'https://idp.example.com';
const person = (subject: string, groups: string[]): ApproverIdentity => ({ issuer: ISSUER, subject, groups, authenticated: true });
const promoteUs = (decision: 'approve' | 'reject' = 'approve', target = 'us/acid-demo'): DecisionScope =>
  ({ runbook: 'promote', target, gate: 'promote', decision });

const policy = parseApprovalPolicy({
  rules: [
    { name: 'us on-call', runbooks: ['promote', 'failback-reseed'], targets: ['us/*'], groups: ['dr-us'] },
    { name: 'fleet leads', targets: ['*'], groups: ['dr-leads'], subjects: [`${ISSUER}#erin`] },
    { name: 'dbas stop', decisions: ['reject'], groups: ['dba'] },
  ],
}, 'test');

describe('approvals policy', () => {
  it('allows by group, by subject of one issuer, by decision, and names the rule', () => {
    expect(ruleFor(policy, person('alice', ['dr-us']), promoteUs())).toEqual({ rule: 'us on-call' });
    expect(ruleFor(policy, person('erin', []), promoteUs('approve', 'eu/acid-x'))).toEqual({ rule: 'fleet leads' });
    expect(ruleFor(policy, person('dana', ['dba']), promoteUs('reject'))).toEqual({ rule: 'dbas stop' });
    // A region-failover's gate is about every cluster of a site: `<site>/*` rules cover it.
    expect(ruleFor(policy, person('alice', ['dr-us']), { runbook: 'failback-reseed', target: 'us/*', gate: 'failback', decision: 'approve' }))
      .toEqual({ rule: 'us on-call' });
  });

  it('refuses another site, another runbook, a reject-only group approving, another issuer\'s subject, and says which rules would allow it', () => {
    const eu = ruleFor(policy, person('alice', ['dr-us']), promoteUs('approve', 'eu/acid-demo'));
    expect(eu).toEqual({ refused: expect.stringMatching(/^alice \(groups: dr-us\) may not approve gate "promote" of promote for eu\/acid-demo: .*"fleet leads" \(group dr-leads, subject https:\/\/idp.example.com#erin\)/) });
    expect(ruleFor(policy, person('alice', ['dr-us']), { runbook: 'region-failover', target: 'us/*', gate: 'region-failover', decision: 'approve' }))
      .toHaveProperty('refused');
    expect(ruleFor(policy, person('dana', ['dba']), promoteUs('approve'))).toHaveProperty('refused');
    expect(ruleFor(policy, { ...person('erin', []), issuer: 'https://other.example.com' }, promoteUs())).toHaveProperty('refused');
  });

  it('with no approvals section nobody may decide anything, and the refusal says so', () => {
    const none = parseApprovalPolicy(undefined, 'sites file x');
    expect(none).toMatchObject({ rules: [], acceptTypedNames: false, requireAuthenticatedRequester: false });
    expect(ruleFor(none, person('root', ['dr-leads']), promoteUs())).toEqual({
      refused: 'no rule of the sites file\'s approvals policy covers "approve gate "promote" of promote for us/acid-demo": nobody may, until a rule names who can',
    });
  });

  it.each([
    [[], 'must be an object'],
    [{ rules: {} }, '"rules" must be a list'],
    [{ rules: [{ name: 'x', targets: ['*'] }] }, 'rule "x" names no "groups" and no "subjects": it would allow nobody'],
    [{ rules: [{ groups: ['a'], decisions: ['approve', 'promote'] }] }, '"decisions" may hold "approve" and "reject", not promote'],
    [{ rules: [{ name: 'a', groups: ['g'] }, { name: 'a', subjects: ['s'] }] }, 'two rules named "a"'],
    [{ rules: [], acceptTypedNames: 'yes' }, '"acceptTypedNames" must be true or false'],
    [{ rules: [], approvers: 2 }, 'unknown field(s) approvers'],
  ])('refuses a malformed section %j as bad input naming the fix', (raw, message) => {
    expect(() => parseApprovalPolicy(raw, 'sites file s.json')).toThrow(BadInputError);
    expect(() => parseApprovalPolicy(raw, 'sites file s.json')).toThrow(message);
  });

  it('versions the section, so a journal names the policy a decision was judged by', () => {
    const a = parseApprovalPolicy({ rules: [{ groups: ['x'] }] }, 't');
    const b = parseApprovalPolicy({ rules: [{ groups: ['y'] }] }, 't');
    expect(a.version).toMatch(/^[0-9a-f]{16}$/);
    expect(a.version).not.toBe(b.version);
  });
});
