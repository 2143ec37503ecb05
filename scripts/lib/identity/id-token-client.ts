// Obtains an OpenID Connect ID token from an issuer with the resource-owner password grant: the sandbox's way of
// logging in (its issuer offers the grant for its own users only). A company IdP would use the device flow; the
// token that comes back, and how the worker verifies it, are the same.
import { IdentityProviderUnreachableError } from '../../../workflows/contracts/errors';
import { discoveredEndpoint } from '../../../activities/identity/discovery';

/** The issuer answered and refused the login (wrong password, unknown user, client not allowed). */
export class LoginRefusedError extends Error {
  constructor(message: string, readonly oauthError: string) {
    super(message);
    this.name = 'LoginRefusedError';
  }
}

const TIMEOUT_MS = 10_000;

const tokenEndpointOf = (issuer: string) => discoveredEndpoint(issuer, 'token_endpoint', TIMEOUT_MS);

/** The raw ID token (a JWT). Never log it: it is a bearer credential until it expires. */
export async function obtainIdToken(opts: { issuer: string; clientId: string; username: string; password: string; nonce?: string }): Promise<string> {
  const endpoint = await tokenEndpointOf(opts.issuer);
  const form = new URLSearchParams({
    grant_type: 'password', client_id: opts.clientId, username: opts.username, password: opts.password, scope: 'openid',
  });
  if (opts.nonce !== undefined) form.set('nonce', opts.nonce);
  let status: number;
  let body: { id_token?: unknown; error?: unknown; error_description?: unknown };
  try {
    const r = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form,
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
    status = r.status;
    body = (await r.json().catch(() => ({}))) as typeof body;
  } catch (err) {
    throw new IdentityProviderUnreachableError(`the token endpoint of ${opts.issuer} did not answer (${(err as Error).message})`, { issuer: opts.issuer });
  }
  if (status >= 500) throw new IdentityProviderUnreachableError(`the token endpoint of ${opts.issuer} failed (HTTP ${status})`, { issuer: opts.issuer });
  if (typeof body.error === 'string' || status !== 200) {
    const error = typeof body.error === 'string' ? body.error : `HTTP ${status}`;
    const why = error === 'invalid_grant' ? 'wrong username or password' : typeof body.error_description === 'string' ? body.error_description : error;
    throw new LoginRefusedError(`${opts.issuer} refused the login of ${opts.username}: ${why}`, error);
  }
  if (typeof body.id_token !== 'string') throw new LoginRefusedError(`${opts.issuer} answered without an ID token (is the openid scope allowed for ${opts.clientId}?)`, 'no_id_token');
  return body.id_token;
}
