// A full base backup of a local cluster's primary leader (`wal-g backup-push` through the cluster's own archive
// wrapper), reported as a BaseBackupRun. The tool's output goes into heartbeats and the journal, so every line
// is scrubbed of the secrets this site knows before it leaves: the S3 keys and the cluster's passwords.
import type { BaseBackupRun } from '../site-driver';
import { clusterSecrets, outputTail, redact } from '../redact';
import type { LocalRegion } from './region';
import { resolveS3Credentials } from './s3-server';

/** Every secret value that could appear in the tool's output: S3 keys and the cluster's database passwords. */
async function knownSecrets(region: LocalRegion, cluster: string): Promise<string[]> {
  const s3 = await resolveS3Credentials(region.cfg.s3).catch(() => null);
  return clusterSecrets(
    { listSecretUsers: async (c) => region.listSecretUsers(c), readSecret: (c, u) => region.readSecret(c, u) },
    cluster,
    s3 ? [s3.accessKeyId, s3.secretAccessKey] : [],
  );
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
