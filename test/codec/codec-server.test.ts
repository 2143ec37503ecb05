// The codec server (scripts/lib/codec-server/server.ts) as the Temporal UI calls it from a browser: CORS preflight,
// /encode and /decode in Temporal's JSON payload form, and its refusals. Over HTTP on a port the kernel picks
// (fastify's inject loads `cookie` 2, ES modules only, which jest does not load).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { buildCodecServer } from '../../scripts/lib/codec-server/server';
import { AesGcmPayloadCodec } from '../../worker/payload-codec';
import { parsePayloadKeys } from '../../worker/payload-keys';
import { freeLoopbackPort } from '../../activities/walg/scratch-postgres';
import { probePort } from '../../activities/sites/local/pg-control';
import { REPO_ROOT } from '../helpers/test-env';

const UI = 'https://cloud.temporal.io';
const codec = new AesGcmPayloadCodec(parsePayloadKeys(`k1:${randomBytes(32).toString('base64')}`, 'test'));
const app = buildCodecServer({ codec, corsOrigins: [UI, 'http://localhost:8233'], authorization: 'Bearer s3cr3t-token' });
const auth = { authorization: 'Bearer s3cr3t-token', 'content-type': 'application/json', 'x-namespace': 'dr-runbooks.a1b2c' };
const asJson = (value: unknown) => {
  const p = defaultPayloadConverter.toPayload(value);
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])),
    data: Buffer.from(p.data!).toString('base64'),
  };
};

let baseUrl: string;
beforeAll(async () => {
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(() => app.close());

/** What fastify's inject answered, from a real request. */
async function call(opts: { method: string; url: string; headers?: Record<string, string>; payload?: unknown }) {
  const r = await fetch(`${baseUrl}${opts.url}`, {
    method: opts.method, headers: opts.headers, body: opts.payload === undefined ? undefined : JSON.stringify(opts.payload),
  });
  const body = await r.text();
  return { statusCode: r.status, headers: Object.fromEntries(r.headers), body, json: () => JSON.parse(body) };
}

it('answers the UI\'s preflight for its origin, and not for another', async () => {
  const ok = await call({
    method: 'OPTIONS', url: '/decode',
    headers: { origin: UI, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace,authorization' },
  });
  expect(ok.statusCode).toBe(204);
  expect(ok.headers['access-control-allow-origin']).toBe(UI);
  expect(String(ok.headers['access-control-allow-headers'])).toMatch(/X-Namespace/);
  expect(ok.headers['access-control-allow-credentials']).toBe('true');
  const other = await call({ method: 'OPTIONS', url: '/decode', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  expect(other.headers['access-control-allow-origin']).toBeUndefined();
});

it('encodes what the UI sends and decodes it back, in Temporal\'s JSON payload form', async () => {
  const input = { cluster: 'us/acid-orders', mode: 'planned' };
  const enc = await call({ method: 'POST', url: '/encode', headers: { ...auth, origin: UI }, payload: { payloads: [asJson(input)] } });
  expect(enc.statusCode).toBe(200);
  expect(enc.headers['access-control-allow-origin']).toBe(UI);
  const sealed = enc.json().payloads[0];
  expect(Buffer.from(sealed.metadata.encoding, 'base64').toString()).toBe('binary/encrypted');
  expect(Buffer.from(sealed.data, 'base64').includes('acid-orders')).toBe(false);
  const dec = await call({ method: 'POST', url: '/decode', headers: auth, payload: { payloads: [sealed] } });
  expect(dec.statusCode).toBe(200);
  expect(dec.json().payloads[0]).toEqual(asJson(input));
});

it('refuses a call without the configured Authorization, a malformed body, and a payload it cannot decrypt', async () => {
  const sealed = (await call({ method: 'POST', url: '/encode', headers: auth, payload: { payloads: [asJson('x')] } })).json().payloads[0];
  const noAuth = await call({ method: 'POST', url: '/decode', headers: { 'content-type': 'application/json' }, payload: { payloads: [sealed] } });
  expect(noAuth.statusCode).toBe(401);
  expect(noAuth.body).not.toContain(sealed.data);
  const bad = await call({ method: 'POST', url: '/decode', headers: auth, payload: { nope: [] } });
  expect([bad.statusCode, bad.json().message]).toEqual([400, 'the body must be {"payloads": [...]}']);
  const tampered = { ...sealed, data: Buffer.from(Buffer.from(sealed.data, 'base64').map((b, i) => (i === 20 ? b ^ 1 : b))).toString('base64') };
  const refused = await call({ method: 'POST', url: '/decode', headers: auth, payload: { payloads: [tampered] } });
  expect([refused.statusCode, refused.json().message]).toEqual([400, expect.stringMatching(/key "k1" failed authentication/)]);
});

describe('scripts/codec-server as a process: never serves without authentication by accident', () => {
  const keys = `k1:${randomBytes(32).toString('base64')}`;
  /** Starts the real script; resolves with its exit (code, output) or, once it listens, with 'listening' and a stop. */
  async function start(env: Record<string, string>, args: string[] = []) {
    const child = spawn(join(REPO_ROOT, 'scripts', 'codec-server'), args, {
      env: { ...process.env, DR_PAYLOAD_KEYS: keys, DR_CODEC_AUTHORIZATION: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => { output += String(d); });
    child.stderr.on('data', (d) => { output += String(d); });
    const outcome = await new Promise<{ kind: 'exited'; code: number | null } | { kind: 'listening' }>((resolve) => {
      child.on('exit', (code) => resolve({ kind: 'exited', code }));
      const poll = setInterval(() => {
        if (/codec server on /.test(output)) { clearInterval(poll); resolve({ kind: 'listening' }); }
      }, 100);
      child.on('exit', () => clearInterval(poll));
    });
    const stop = async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await gone;
    };
    return { outcome, output: () => output, stop };
  }

  it('refuses to start without DR_CODEC_AUTHORIZATION, and --insecure-local on a non-loopback address', async () => {
    const port = await freeLoopbackPort();
    const bare = await start({ DR_CODEC_LISTEN: `127.0.0.1:${port}` });
    expect(bare.outcome).toEqual({ kind: 'exited', code: 1 });
    expect(bare.output()).toMatch(/refusing to serve decrypted payloads without authentication: set DR_CODEC_OIDC_ISSUER .* or DR_CODEC_AUTHORIZATION .* or pass --insecure-local/);
    expect(await probePort(port)).toBe('refused');
    const wide = await start({ DR_CODEC_LISTEN: `0.0.0.0:${port}` }, ['--insecure-local']);
    expect(wide.outcome).toEqual({ kind: 'exited', code: 1 });
    expect(wide.output()).toMatch(/--insecure-local serves loopback only, but DR_CODEC_LISTEN asks for 0\.0\.0\.0/);
    expect(await probePort(port)).toBe('refused');
  }, 120_000);

  it('serves with an Authorization value (401 without it), and without one only under --insecure-local on loopback', async () => {
    const port = await freeLoopbackPort();
    const body = JSON.stringify({ payloads: [asJson('hello')] });
    const post = (headers: Record<string, string>) =>
      fetch(`http://127.0.0.1:${port}/encode`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const guarded = await start({ DR_CODEC_LISTEN: `127.0.0.1:${port}`, DR_CODEC_AUTHORIZATION: 'Bearer proc-token' });
    try {
      expect(guarded.outcome).toEqual({ kind: 'listening' });
      expect((await post({})).status).toBe(401);
      expect((await post({ authorization: 'Bearer proc-token' })).status).toBe(200);
    } finally {
      await guarded.stop();
    }
    const local = await start({ DR_CODEC_LISTEN: `127.0.0.1:${port}` }, ['--insecure-local']);
    try {
      expect(local.outcome).toEqual({ kind: 'listening' });
      expect(local.output()).toMatch(/NO authentication \(--insecure-local, loopback only\)/);
      expect((await post({})).status).toBe(200);
    } finally {
      await local.stop();
    }
  }, 120_000);
});
