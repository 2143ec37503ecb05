// ID tokens from the test sandbox's own OpenID provider (started by the global setup), for tests that approve.
import { readFileSync } from 'node:fs';
import { obtainIdToken } from '../../scripts/lib/identity/id-token-client';
import { sandboxIdentityConfig } from '../../scripts/lib/sandbox/layout';
import { sandboxUsersFile, type SandboxUsersFile } from '../../scripts/lib/sandbox/oidc-issuer';
import type { IdentityConfig } from '../../workflows/contracts/identity';
import { testLayout } from './test-env';

export function sandboxUsers(): SandboxUsersFile {
  return JSON.parse(readFileSync(sandboxUsersFile(testLayout()), 'utf8')) as SandboxUsersFile;
}

/** The identity section the test sandbox's sites file carries. */
export function sandboxIdentity(): IdentityConfig {
  return sandboxIdentityConfig(testLayout());
}

/** A fresh ID token of `user` (alice, bob, carol, dana, mallory), with `nonce` when given. */
export async function sandboxIdToken(user: string, nonce?: string): Promise<string> {
  const file = sandboxUsers();
  const entry = file.users[user];
  if (!entry) throw new Error(`no sandbox user ${user} (known: ${Object.keys(file.users).join(', ')})`);
  return obtainIdToken({ issuer: file.issuer, clientId: file.clientId, username: user, password: entry.password, ...(nonce !== undefined ? { nonce } : {}) });
}
