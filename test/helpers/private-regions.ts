// A private two-region layout for region-level tests: its own temp folder, S3 port and etcd/member ports, so a
// region test never touches the suite's sandbox. Each test file makes one with its own label and port block.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3ArchiveConfig } from '../../activities/sites/sites-file';
import { LocalSiteDriver } from '../../activities/sites/local-driver';
import { ensureBucket, startS3ServerFor, stopS3Server } from '../../activities/sites/local/s3-server';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function sql<T extends Record<string, unknown>>(d: LocalSiteDriver, cluster: string, text: string, params: unknown[] = []): Promise<T[]> {
  return d.withLeaderSql(cluster, async (c) => (await c.query<T>(text, params)).rows);
}

export async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null>): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn().catch(() => null);
    if (v !== null && v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/**
 * A fixed port of a private layout, moved by DR_TEST_PRIVATE_PORT_SHIFT so that two checkouts can run their suites on
 * one machine at once (each with its own DR_TEST_PORT_BASE and shift). Unset in CI: the ports are as written.
 */
export function privatePort(port: number): number {
  return port + Number(process.env.DR_TEST_PRIVATE_PORT_SHIFT ?? 0);
}

export function privateRegions(label: string, unshiftedS3Port: number) {
  const s3Port = privatePort(unshiftedS3Port);
  const tmp = mkdtempSync(join(tmpdir(), `${label}-`));
  const credsFile = join(tmp, 'aws-credentials');
  const s3Of = (bucket: string): S3ArchiveConfig => ({
    bucket,
    scopePrefix: 'spilo',
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${s3Port}`,
    forcePathStyle: true,
    profile: 'sandbox',
    credentialsFile: credsFile,
  });
  const writeCredentials = () =>
    writeFileSync(credsFile, '[sandbox]\naws_access_key_id = sandboxkey\naws_secret_access_key = sandboxsecret123\n', { mode: 0o600 });
  const log = (msg: string) => process.stdout.write(`[${label}] ${msg}\n`);
  return {
    tmp,
    credsFile,
    S3_PORT: s3Port,
    s3Of,
    writeCredentials,
    driverFor: (name: string, unshiftedBase: number) => new LocalSiteDriver({
      name,
      kind: 'local',
      dataDir: join(tmp, name),
      etcd: { clientPort: privatePort(unshiftedBase) + 1, peerPort: privatePort(unshiftedBase) + 2 },
      memberPorts: { first: privatePort(unshiftedBase) + 10, last: privatePort(unshiftedBase) + 49 },
      s3: s3Of(`dr-${name}`),
      secretStore: { dir: join(tmp, `secrets-${name}`) },
    }),
    log,
    /** S3 with a bucket per region and each region's etcd. */
    async start(drivers: LocalSiteDriver[]): Promise<void> {
      writeCredentials();
      await startS3ServerFor(s3Of('dr-east'), join(tmp, 's3'));
      for (const d of drivers) {
        await ensureBucket(d.cfg.s3);
        await d.region.startEtcd();
      }
    },
    async stop(drivers: LocalSiteDriver[]): Promise<void> {
      for (const d of drivers) await d.region.stopAll().catch((e) => log(`stopAll ${d.site}: ${String(e)}`));
      await stopS3Server(join(tmp, 's3', 'versitygw.pid'));
    },
  };
}

/** The source's user Secrets, written under the standby's name: what provision-standby copies before a standby starts. */
export async function copySecrets(from: LocalSiteDriver, src: string, to: LocalSiteDriver, dst: string): Promise<void> {
  for (const u of await from.listSecretUsers(src)) {
    const v = await from.readSecret(src, u);
    if (v) await to.writeSecret(dst, u, v);
  }
}

/**
 * `dst` at `to` as a standby of `src` at `from` (which archives): a base backup of the source, its Secrets copied,
 * the standby bootstrapped from that backup and streaming from the source's leader with its archive as fallback.
 */
export async function standbyOf(
  from: LocalSiteDriver, src: string, to: LocalSiteDriver, dst: string,
): Promise<{ source: NonNullable<Awaited<ReturnType<LocalSiteDriver['describeCluster']>>>; backupName: string }> {
  const backup = await from.region.backupPush(src, { timeoutMs: 300_000 });
  if (backup.exitCode !== 0 || !backup.backupName) throw new Error(`backup-push of ${src} failed (exit ${backup.exitCode})`);
  await copySecrets(from, src, to, dst);
  const source = (await from.describeCluster(src))!;
  await to.createStandbyCluster({
    cluster: dst, sourceRef: `${from.site}/${src}`, fromHost: source.streamingEndpoint,
    fromArchive: { archive: source.archive, backupName: backup.backupName },
  });
  return { source, backupName: backup.backupName };
}
