// `scripts/codec-server`: serves the payload codec (worker/payload-codec.ts) to the Temporal UI and CLI, so
// encrypted inputs, results and journals show in clear for whoever can reach it (see server.ts).
//   DR_PAYLOAD_KEYS or DR_PAYLOAD_KEYS_FILE   the same keys as the workers (required: without them there is nothing to serve)
//   DR_CODEC_LISTEN                           host:port, default 127.0.0.1:8888
//   DR_CODEC_CORS_ORIGINS                     UI origins, comma-separated, default the local UI (http://localhost:8233,http://127.0.0.1:8233)
//   DR_CODEC_OIDC_ISSUER, _AUDIENCE           verify the UI's forwarded bearer token against this issuer (audience
//                                             default temporal-ui); DR_CODEC_OIDC_GROUPS who may read, DR_CODEC_NAMESPACES which
//   DR_CODEC_AUTHORIZATION                    the exact Authorization header callers must send; one of the two is required
//                                             unless `--insecure-local` (loopback only, no authentication: a developer's machine)
import { payloadCodecFromEnv } from '../../../worker/payload-codec';
import { PayloadKeyConfigError } from '../../../worker/payload-keys';
import { buildCodecServer } from './server';
import { codecStartProblem } from './start-policy';
import { bearerPolicyFromEnv } from './bearer-auth';

class CodecStartError extends Error {}

async function main(): Promise<void> {
  const codec = payloadCodecFromEnv();
  if (!codec) throw new PayloadKeyConfigError('set DR_PAYLOAD_KEYS or DR_PAYLOAD_KEYS_FILE to the keys the workers use');
  const [host, port] = (process.env.DR_CODEC_LISTEN ?? '127.0.0.1:8888').split(/:(?=\d+$)/);
  const authorization = process.env.DR_CODEC_AUTHORIZATION || undefined;
  const bearer = bearerPolicyFromEnv(process.env) ?? undefined;
  const problem = codecStartProblem({ authorization, issuer: bearer?.identity.issuers[0].issuer, insecureLocal: process.argv.includes('--insecure-local'), host });
  if (problem) throw new CodecStartError(problem);
  const corsOrigins = (process.env.DR_CODEC_CORS_ORIGINS ?? 'http://localhost:8233,http://127.0.0.1:8233')
    .split(',').map((o) => o.trim()).filter(Boolean);
  const app = buildCodecServer({ codec, corsOrigins, authorization, bearer });
  const address = await app.listen({ host, port: Number(port) });
  console.log(`codec server on ${address} (POST /decode, /encode), encrypting with key ${codec.encryptingKeyId}; ` +
    `CORS for ${corsOrigins.join(', ')}; ${bearer ? `bearer tokens of ${bearer.identity.issuers[0].issuer}` : authorization ? 'Authorization required' : 'NO authentication (--insecure-local, loopback only)'}`);
  const stop = () => void app.close();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error(`codec-server: ${err instanceof PayloadKeyConfigError || err instanceof CodecStartError ? err.message : (err as Error).stack ?? String(err)}`);
  process.exit(1);
});
