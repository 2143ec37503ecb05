// What a tool run by a driver printed goes into heartbeats and the journal: every line is scrubbed of the secrets
// the site knows (the S3 keys and the cluster's database passwords) and of secret-looking assignments before it
// leaves the activity.
import type { SiteDriver } from './site-driver';

const TAIL_LINES = 20;
const TAIL_CHARS = 4_000;
const REDACTED = '[redacted]';
// Secret-looking assignments, for values this site does not know (a credential from an environment, a URL).
const SECRET_ASSIGNMENT = /((?:secret|password|passwd|token|access_key)[A-Za-z_]*\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi;
const URL_PASSWORD = /(\/\/[^/:@\s]+:)[^@\s]+@/g;

/** The cluster's passwords plus `extra` (e.g. S3 keys), longest first so a secret containing another is replaced whole. */
export async function clusterSecrets(
  secrets: Pick<SiteDriver, 'listSecretUsers' | 'readSecret'>,
  cluster: string,
  extra: string[],
): Promise<string[]> {
  const values = new Set(extra);
  for (const user of await secrets.listSecretUsers(cluster)) {
    const cred = await secrets.readSecret(cluster, user);
    if (cred?.password) values.add(cred.password);
  }
  return [...values].filter((v) => v.length >= 4).sort((a, b) => b.length - a.length);
}

export function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join(REDACTED);
  return out.replace(SECRET_ASSIGNMENT, `$1${REDACTED}`).replace(URL_PASSWORD, `$1${REDACTED}@`);
}

/** The last lines of both streams, scrubbed and bounded: what the journal may show of a failed run. */
export function outputTail(stdout: string, stderr: string, secrets: string[]): string {
  const lines = `${stderr}\n${stdout}`.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  return redact(lines.slice(-TAIL_LINES).join('\n'), secrets).slice(-TAIL_CHARS);
}
