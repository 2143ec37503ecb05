// The sites file's identity section fails fast: a mistake is refused when the file is loaded, naming the field.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSites } from '../../activities/sites/sites-file';
import { BadInputError } from '../../workflows/contracts/errors';

const dir = mkdtempSync(join(tmpdir(), 'sites-identity-'));
const site = { kind: 'zalando', namespace: 'db', s3: { bucket: 'b', region: 'eu-west-1' }, s3CredentialsSecret: { name: 's3' } };

function load(identity: unknown) {
  const file = join(dir, `sites-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ sites: { eu: site }, ...(identity === undefined ? {} : { identity }) }));
  return loadSites(file);
}

test('a company issuer is carried on LoadedSites as written', () => {
  const identity = {
    issuers: [{ issuer: 'https://login.example.com/tenant/v2.0', audience: 'dr-runbooks', groupsClaim: 'roles' }],
    maxTokenAgeSeconds: 300,
    clockToleranceSeconds: 10,
  };
  expect(load(identity).identity).toEqual(identity);
  expect(load(undefined).identity).toBeUndefined();
});

test.each([
  ['not an object', 'https://x', /"identity" must be an object/],
  ['no issuers', { issuers: [] }, /needs "issuers": a non-empty list/],
  ['an unknown field', { issuers: [{ issuer: 'https://x', audience: 'a' }], maxAge: 3 }, /unknown field\(s\) maxAge/],
  ['a missing audience', { issuers: [{ issuer: 'https://x' }] }, /issuers\[0\] needs "audience"/],
  ['plain http off loopback', { issuers: [{ issuer: 'http://idp.example.com', audience: 'a' }] }, /issuers\[0\]\.issuer "http:\/\/idp\.example\.com" must use https/],
  ['not a URL', { issuers: [{ issuer: 'login.example.com', audience: 'a' }] }, /is not a URL/],
  ['an issuer twice', { issuers: [{ issuer: 'https://x', audience: 'a' }, { issuer: 'https://x', audience: 'b' }] }, /lists issuer "https:\/\/x" twice/],
  ['a large clock tolerance', { issuers: [{ issuer: 'https://x', audience: 'a' }], clockToleranceSeconds: 3600 }, /"clockToleranceSeconds" must be a whole number of seconds from 0 to 300/],
  ['a zero max age', { issuers: [{ issuer: 'https://x', audience: 'a' }], maxTokenAgeSeconds: 0 }, /"maxTokenAgeSeconds" must be/],
])('refuses %s', (_what, identity, message) => {
  expect(() => load(identity)).toThrow(BadInputError);
  expect(() => load(identity)).toThrow(message);
});
