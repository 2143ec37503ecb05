// After the issuer rotates its signing key, a token signed with the new key verifies (the cached JWKS is fetched
// again for the unknown key id), and one signed before the rotation still verifies until it expires.
import { decodeProtectedHeader } from 'jose';
import { verifyIdToken } from '../../activities/identity/verify-id-token';
import { rotateIssuerKey, sandboxIssuerSpec } from '../../scripts/lib/sandbox/oidc-issuer';
import { sandboxIdentity, sandboxIdToken } from '../helpers/identity';
import { testLayout } from '../helpers/test-env';

test('a token signed with the rotated-in key verifies; an older one still does', async () => {
  const before = await sandboxIdToken('dana', 'before-rotation');
  // The verifier caches the issuer's keys as they are now.
  expect((await verifyIdToken(sandboxIdentity(), before, { nonce: 'before-rotation' })).subject).toBe('dana');

  const newKid = await rotateIssuerKey(sandboxIssuerSpec(testLayout()));
  expect(newKid).not.toBe(decodeProtectedHeader(before).kid);

  const after = await sandboxIdToken('dana', 'after-rotation');
  expect(decodeProtectedHeader(after).kid).toBe(newKid);
  const id = await verifyIdToken(sandboxIdentity(), after, { nonce: 'after-rotation' });
  expect(id).toMatchObject({ subject: 'dana', groups: ['dba-leads'] });
  expect((await verifyIdToken(sandboxIdentity(), before, { nonce: 'before-rotation' })).subject).toBe('dana');
});
