// The remote codec endpoint the Temporal UI and CLI call to show encrypted payloads in clear (and to encrypt
// what the UI sends, e.g. a workflow started from its form): Temporal's codec server protocol.
//
//   POST /decode, POST /encode   body and answer {"payloads": [{"metadata": {"<key>": "<base64>"}, "data": "<base64>"}]}
//   OPTIONS on both              the CORS preflight of the UI, which calls from the browser
//
// Whoever reaches it can decrypt every payload they can name, so it listens on loopback by default, answers CORS
// only for the UI origins it is given, and refuses calls without the Authorization it is configured for: a fixed
// value (the CLI's --codec-auth), or a bearer token of an OpenID Connect issuer (the UI's "pass access token").
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { judgeBearer, type BearerPolicy } from './bearer-auth';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Browser origins allowed to call (the UI's, e.g. https://cloud.temporal.io or http://localhost:8233). */
  corsOrigins: string[];
  /** When set, the exact Authorization header every call must carry. */
  authorization?: string;
  /** When set, a bearer token of this issuer, in these groups, for these namespaces (bearer-auth.ts). */
  bearer?: BearerPolicy;
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

class BadBody extends Error {}

function fromJson(body: unknown): Payload[] {
  const payloads = (body as { payloads?: unknown })?.payloads;
  if (!Array.isArray(payloads)) throw new BadBody('the body must be {"payloads": [...]}');
  return payloads.map((p: JsonPayload, i) => {
    if (!p || typeof p !== 'object') throw new BadBody(`payloads[${i}] is not an object`);
    const metadata: Record<string, Uint8Array> = {};
    for (const [k, v] of Object.entries(p.metadata ?? {})) {
      if (typeof v !== 'string') throw new BadBody(`payloads[${i}].metadata.${k} must be base64 text`);
      metadata[k] = Buffer.from(v, 'base64');
    }
    if (p.data !== undefined && typeof p.data !== 'string') throw new BadBody(`payloads[${i}].data must be base64 text`);
    return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
  });
}

function toJson(payloads: Payload[]): { payloads: JsonPayload[] } {
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
      data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
    })),
  };
}

function authorized(req: FastifyRequest, expected: string | undefined): boolean {
  if (expected === undefined) return true;
  const got = Buffer.from(req.headers.authorization ?? '');
  const want = Buffer.from(expected);
  return got.length === want.length && timingSafeEqual(got, want);
}

export function buildCodecServer(opts: CodecServerOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  const origins = new Set(opts.corsOrigins);

  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (origin && origins.has(origin)) {
      reply.header('Access-Control-Allow-Origin', origin);
      reply.header('Vary', 'Origin');
      reply.header('Access-Control-Allow-Methods', 'POST, OPTIONS');
      reply.header('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      reply.header('Access-Control-Allow-Credentials', 'true');
      reply.header('Access-Control-Max-Age', '600');
    }
  });

  const handle = (op: 'encode' | 'decode') => async (req: FastifyRequest, reply: FastifyReply) => {
    if (!authorized(req, opts.authorization)) return reply.code(401).send({ message: 'a valid Authorization header is required' });
    if (opts.bearer) {
      const verdict = await judgeBearer(opts.bearer, req.headers.authorization, req.headers['x-namespace'] as string | undefined);
      if (verdict.status !== 200) return reply.code(verdict.status).send({ message: verdict.message });
    }
    let payloads: Payload[];
    try {
      payloads = fromJson(req.body);
    } catch (err) {
      if (err instanceof BadBody) return reply.code(400).send({ message: err.message });
      throw err;
    }
    try {
      return toJson(await opts.codec[op](payloads));
    } catch (err) {
      // The codec's messages name key IDs only (unknown key, failed authentication): safe and useful to show.
      return reply.code(400).send({ message: (err as Error).message });
    }
  };
  for (const op of ['encode', 'decode'] as const) {
    app.post(`/${op}`, handle(op));
    // A preflight carries no credentials: it only learns, from the headers above, whether its origin may call.
    app.options(`/${op}`, async (_req, reply) => reply.code(204).send());
  }
  return app;
}
