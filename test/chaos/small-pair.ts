// A 1-member source in eu with a 1-member streaming standby in us: a replica adds nothing to the faults here.
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { driverOf } from '../helpers/clusters';
import { createSource, type StandbyPair } from '../helpers/standby-pair';

export async function createSmallPair(name: string): Promise<StandbyPair> {
  const pair = { source: `eu/acid-${name}`, standby: `us/acid-${name}` };
  const src = driverOf(pair.source);
  const dst = driverOf(pair.standby);
  const archive = await createSource(pair.source, { members: 1 });
  for (const user of await src.driver.listSecretUsers(src.cluster)) {
    await dst.driver.writeSecret(dst.cluster, user, (await src.driver.readSecret(src.cluster, user))!);
  }
  const facts = (await src.driver.describeCluster(src.cluster))!;
  await dst.driver.createStandbyCluster({
    cluster: dst.cluster,
    sourceRef: pair.source,
    fromHost: facts.streamingEndpoint,
    fromArchive: { archive: facts.archive, backupName: (await listCompleteBackups(src.driver.cfg.s3, archive)).pop()!.name },
    like: { pgVersion: 15, instances: 1 },
  });
  return pair;
}
