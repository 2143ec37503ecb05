// A fresh source (eu) and standby (us) per test, built with the region runtime directly, so promote tests do
// not depend on provision-standby and never share clusters.
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { driverOf, deleteCluster } from './clusters';

export interface StandbyPair {
  source: string;
  standby: string;
}

/** A source cluster archiving to S3 with a table `public.writes` and a complete base backup. */
export async function createSource(ref: string, opts: { members?: number } = {}): Promise<string> {
  const src = driverOf(ref);
  const created = await src.driver.region.createCluster({ name: src.cluster, pgVersion: 15, archive: true, users: ['app'], ...opts });
  await src.driver.withLeaderSql(src.cluster, async (c) => {
    await c.query('CREATE TABLE IF NOT EXISTS public.writes (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())');
  });
  const archive = created.cluster.archivePrefix!;
  if ((await listCompleteBackups(src.driver.cfg.s3, archive)).length === 0) {
    const r = await src.driver.region.backupPush(src.cluster);
    if (r.exitCode !== 0) throw new Error(`backup-push of ${ref} failed: ${r.stderr.slice(-300)}`);
  }
  return archive;
}

/**
 * `eu/acid-<name>` archiving with a base backup, and `us/acid-<name>` streaming from it with archive fallback, both
 * with `members` members (default 2; 1 where a replica adds nothing to what a test proves). `archiveOnly`: the
 * standby has no streaming source at all, as across regions whose only path is S3.
 */
export async function createStandbyPair(name: string, opts: { members?: number; archiveOnly?: boolean } = {}): Promise<StandbyPair> {
  const pair = { source: `eu/acid-${name}`, standby: `us/acid-${name}` };
  const src = driverOf(pair.source);
  const dst = driverOf(pair.standby);
  const archive = await createSource(pair.source, { members: opts.members });
  for (const user of await src.driver.listSecretUsers(src.cluster)) {
    await dst.driver.writeSecret(dst.cluster, user, (await src.driver.readSecret(src.cluster, user))!);
  }
  const facts = (await src.driver.describeCluster(src.cluster))!;
  await dst.driver.createStandbyCluster({
    cluster: dst.cluster,
    sourceRef: pair.source,
    ...(opts.archiveOnly ? {} : { fromHost: facts.streamingEndpoint }),
    fromArchive: { archive: facts.archive, backupName: (await listCompleteBackups(src.driver.cfg.s3, archive)).pop()!.name },
    ...(opts.members ? { like: { pgVersion: 15, instances: opts.members } } : {}),
  });
  return pair;
}

export async function deleteStandbyPair(pair: StandbyPair): Promise<void> {
  await deleteCluster(pair.standby);
  await deleteCluster(pair.source);
}
