// An OpenID Connect issuer's discovery document, which names its keys and endpoints.
import { IdentityProviderUnreachableError } from '../../workflows/contracts/errors';

/** The endpoint `field` (jwks_uri, token_endpoint) of the issuer's discovery document, which must name that issuer. */
export async function discoveredEndpoint(issuer: string, field: 'jwks_uri' | 'token_endpoint', timeoutMs: number): Promise<string> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let doc: Record<string, unknown>;
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    doc = (await r.json()) as Record<string, unknown>;
  } catch (err) {
    throw new IdentityProviderUnreachableError(`the identity provider ${issuer} did not serve its discovery document (${(err as Error).message})`, { issuer });
  }
  // OpenID Connect Discovery: the document must name exactly the issuer it was fetched for.
  const endpoint = doc[field];
  if (doc.issuer !== issuer || typeof endpoint !== 'string') {
    throw new IdentityProviderUnreachableError(`the discovery document of ${issuer} names another issuer or no ${field}`, { issuer });
  }
  return endpoint;
}
