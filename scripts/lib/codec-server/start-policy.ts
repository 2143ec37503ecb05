// When the codec server may start. Whoever reaches it can decrypt every payload they can name, so it never serves
// without authentication by accident: either an Authorization value is configured, or the operator says
// `--insecure-local` and it listens on loopback only (a developer's own UI on the same machine).
import { isIP } from 'node:net';

export interface CodecStartRequest {
  authorization: string | undefined;
  /** An OpenID Connect issuer whose bearer tokens the server verifies (DR_CODEC_OIDC_ISSUER). */
  issuer?: string;
  insecureLocal: boolean;
  host: string;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Why the server must not start as asked, or undefined when it may. */
export function codecStartProblem(r: CodecStartRequest): string | undefined {
  if ((r.authorization || r.issuer) && r.insecureLocal) {
    return '--insecure-local and DR_CODEC_AUTHORIZATION / DR_CODEC_OIDC_ISSUER contradict each other: drop one';
  }
  if (r.authorization || r.issuer) return undefined;
  if (!r.insecureLocal) {
    return 'refusing to serve decrypted payloads without authentication: set DR_CODEC_OIDC_ISSUER (and _AUDIENCE, ' +
      '_GROUPS) to verify the bearer token the UI forwards ("pass access token"), or DR_CODEC_AUTHORIZATION to the exact ' +
      'Authorization header callers must send (the CLI\'s --codec-auth), or pass ' +
      '--insecure-local to serve only this machine\'s loopback without it';
  }
  if (!LOOPBACK.has(r.host) && !(isIP(r.host) === 4 && r.host.startsWith('127.'))) {
    return `--insecure-local serves loopback only, but DR_CODEC_LISTEN asks for ${r.host}: listen on 127.0.0.1, or configure DR_CODEC_AUTHORIZATION`;
  }
  return undefined;
}
