// The codec server trusting an OpenID Connect issuer (issue 16 item 7), against the sandbox's real provider: the bearer
// token the Temporal UI forwards is verified against the issuer's keys, then its groups and the UI's namespace.
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { buildCodecServer } from '../../scripts/lib/codec-server/server';
import { codecStartProblem } from '../../scripts/lib/codec-server/start-policy';
import { AesGcmPayloadCodec } from '../../worker/payload-codec';
import { parsePayloadKeys } from '../../worker/payload-keys';
import { sandboxIdToken, sandboxUsers } from '../helpers/identity';
import { forgedIdToken } from '../security/forged-token';

const UI = 'http://localhost:8233';
const codec = new AesGcmPayloadCodec(parsePayloadKeys(`k1:${randomBytes(32).toString('base64')}`, 'test'));
let baseUrl: string;
let app: ReturnType<typeof buildCodecServer>;
let sealed: unknown;

beforeAll(async () => {
  const { issuer, clientId } = sandboxUsers();
  app = buildCodecServer({
    codec, corsOrigins: [UI],
    bearer: { identity: { issuers: [{ issuer, audience: clientId }], maxTokenAgeSeconds: 3600 }, groups: ['dr-approvers'], namespaces: ['default'] },
  });
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  const p = defaultPayloadConverter.toPayload({ cluster: 'us/acid-orders', approver: 'alice' });
  const [enc] = await codec.encode([p]);
  sealed = {
    metadata: Object.fromEntries(Object.entries(enc.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])),
    data: Buffer.from(enc.data!).toString('base64'),
  };
});
afterAll(() => app?.close());

async function decode(headers: Record<string, string>): Promise<{ status: number; body: any }> {
  const r = await fetch(`${baseUrl}/decode`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default', origin: UI, ...headers },
    body: JSON.stringify({ payloads: [sealed] }),
  });
  return { status: r.status, body: await r.json() };
}

it('decodes for a verified member of an allowed group, for the namespace it serves', async () => {
  const r = await decode({ authorization: `Bearer ${await sandboxIdToken('alice')}` });
  expect(r.status).toBe(200);
  expect(JSON.parse(Buffer.from(r.body.payloads[0].data, 'base64').toString())).toEqual({ cluster: 'us/acid-orders', approver: 'alice' });
});

it('refuses no token, a fixed string, a forged token (401), a user outside the groups and another namespace (403), each saying why', async () => {
  expect(await decode({})).toMatchObject({ status: 401, body: { message: expect.stringMatching(/bearer token of the configured issuer is required/) } });
  expect(await decode({ authorization: 'Bearer s3cr3t-token' })).toMatchObject({ status: 401, body: { message: expect.stringMatching(/^the bearer token was refused: /) } });
  const forged = await forgedIdToken({ sub: 'alice', groups: ['dr-approvers'], nonce: 'n' });
  expect(await decode({ authorization: `Bearer ${forged}` })).toMatchObject({ status: 401, body: { message: expect.stringMatching(/does not publish/) } });
  expect(await decode({ authorization: `Bearer ${await sandboxIdToken('mallory')}` }))
    .toEqual({ status: 403, body: { message: 'mallory is in none of the groups that may read payloads (dr-approvers)' } });
  expect(await decode({ authorization: `Bearer ${await sandboxIdToken('bob')}`, 'x-namespace': 'prod' }))
    .toEqual({ status: 403, body: { message: 'namespace "prod" is not one this codec server serves (default)' } });
});

it('may start with an issuer and no fixed Authorization, but not with an issuer under --insecure-local', () => {
  expect(codecStartProblem({ authorization: undefined, issuer: 'https://idp.example.com', insecureLocal: false, host: '0.0.0.0' })).toBeUndefined();
  expect(codecStartProblem({ authorization: undefined, issuer: 'https://idp.example.com', insecureLocal: true, host: '127.0.0.1' }))
    .toMatch(/contradict each other/);
});
