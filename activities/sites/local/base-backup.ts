// A full base backup of a local cluster's primary leader (`wal-g backup-push` through the cluster's own archive
// wrapper), reported as a BaseBackupRun. The tool's output goes into heartbeats and the journal, so every line
// is scrubbed of the secrets this site knows before it leaves: the S3 keys and the cluster's passwords.
import type { BaseBackupRun } from '../site-driver';
import type { LocalRegion } from './region';
import { resolveS3Credentials } from './s3-server';

const TAIL_LINES = 20;
const TAIL_CHARS = 4_000;
const REDACTED = '[redacted]';
// Secret-looking assignments, for values this site does not know (a credential from an environment, a URL).
const SECRET_ASSIGNMENT = /((?:secret|password|passwd|token|access_key)[A-Za-z_]*\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi;
const URL_PASSWORD = /(\/\/[^/:@\s]+:)[^@\s]+@/g;

/** Every secret value that could appear in the tool's output: S3 keys and the cluster's database passwords. */
async function knownSecrets(region: LocalRegion, cluster: string): Promise<string[]> {
  const values = new Set<string>();
  const s3 = await resolveS3Credentials(region.cfg.s3).catch(() => null);
  if (s3) [s3.accessKeyId, s3.secretAccessKey].forEach((v) => values.add(v));
  for (const user of region.listSecretUsers(cluster)) {
    const cred = await region.readSecret(cluster, user);
    if (cred?.password) values.add(cred.password);
  }
  // Longest first, so a secret containing another is replaced whole.
  return [...values].filter((v) => v.length >= 4).sort((a, b) => b.length - a.length);
}

export function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join(REDACTED);
  return out.replace(SECRET_ASSIGNMENT, `$1${REDACTED}`).replace(URL_PASSWORD, `$1${REDACTED}@`);
}

/** The last lines of both streams, scrubbed and bounded: what the journal may show of a failed backup. */
export function outputTail(stdout: string, stderr: string, secrets: string[]): string {
  const lines = `${stderr}\n${stdout}`.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  return redact(lines.slice(-TAIL_LINES).join('\n'), secrets).slice(-TAIL_CHARS);
}

export async function runLocalBaseBackup(
  region: LocalRegion,
  cluster: string,
  onProgress: (detail: string) => void,
  signal?: AbortSignal,
): Promise<BaseBackupRun> {
  const secrets = await knownSecrets(region, cluster);
  const r = await region.backupPush(cluster, {
    signal,
    onProgress: (p) => onProgress(
      p.line ? redact(p.line, secrets) : `backup-push of ${region.name}/${cluster} running for ${Math.round(p.elapsedMs / 1000)}s`,
    ),
  });
  return { exitCode: r.exitCode, reportedName: r.backupName, outputTail: outputTail(r.stdout, r.stderr, secrets) };
}
