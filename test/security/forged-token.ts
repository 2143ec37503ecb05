// An ID token that claims to come from the sandbox issuer but is signed with a key the issuer never published: what
// someone who knows the issuer URL and the client id, but holds no user's password, could make.
import { generateKeyPair, SignJWT } from 'jose';
import { sandboxUsers } from '../helpers/identity';

export async function forgedIdToken(claims: { sub: string; groups: string[]; nonce: string }): Promise<string> {
  const { issuer, clientId } = sandboxUsers();
  const { privateKey } = await generateKeyPair('RS256');
  return new SignJWT({ groups: claims.groups, nonce: claims.nonce })
    .setProtectedHeader({ alg: 'RS256', kid: 'forged' })
    .setIssuer(issuer).setAudience(clientId).setSubject(claims.sub)
    .setIssuedAt().setExpirationTime('5m')
    .sign(privateKey);
}
