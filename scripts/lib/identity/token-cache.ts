// Where `drctl login` keeps the ID token between commands: one 0600 file in a 0700 folder of the user's cache.
// A bearer credential until it expires, so it is never printed, logged or put in a workflow input as text.
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../activities/sites/local/fs-util';

export interface StoredIdToken {
  issuer: string;
  clientId: string;
  token: string;
  /** Who logged in (the name given to the issuer), so approve/reject and start can ask for tokens bound to them. */
  username?: string;
  /** The sites file logged in with: against the sandbox, its users file lies beside it. */
  sitesFile?: string;
}

export function tokenCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'standby-runbooks');
}

export const tokenCacheFile = (env: NodeJS.ProcessEnv = process.env) => join(tokenCacheDir(env), 'id-token.json');

export function storeIdToken(stored: StoredIdToken, env: NodeJS.ProcessEnv = process.env): string {
  mkdirSync(tokenCacheDir(env), { recursive: true, mode: 0o700 });
  const file = tokenCacheFile(env);
  writeFileAtomic(file, `${JSON.stringify(stored)}\n`, 0o600);
  return file;
}

/** The token `drctl login` stored, or null; refuses a file others can read (it would be a leaked credential). */
export function readStoredIdToken(env: NodeJS.ProcessEnv = process.env): StoredIdToken | null {
  const file = tokenCacheFile(env);
  if (!existsSync(file)) return null;
  if ((statSync(file).mode & 0o077) !== 0) throw new Error(`${file} is readable by others: delete it and run drctl login again`);
  return JSON.parse(readFileSync(file, 'utf8')) as StoredIdToken;
}
