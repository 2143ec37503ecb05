// The fencing epoch of a local cluster: one key in its region's etcd, outside Patroni's `/service/<scope>/` so
// neither Patroni nor a reseed's wipe of that prefix touches it, and written by an etcd v3 transaction on the key's
// mod revision. etcd alone is needed: fence and rejoin run while Patroni and Postgres are stopped.
import type { EpochClaim, StoredEpoch } from '../site-driver';
import { claimWithCas, parseEpoch, type VersionedEpoch } from '../epoch';
import { etcdDeleteKey, etcdGet, etcdPutIfUnchanged } from './etcd';

const epochKey = (cluster: string) => `/standby-runbooks/fencing-epoch/${cluster}`;

async function readVersioned(etcdPort: number, cluster: string): Promise<VersionedEpoch> {
  const kv = await etcdGet(etcdPort, epochKey(cluster));
  // mod_revision 0 is what etcd compares an absent key with: the first write is a create-if-absent.
  return kv ? { epoch: parseEpoch(kv.value, `etcd ${epochKey(cluster)}`), version: kv.modRevision } : { epoch: null, version: '0' };
}

export async function readLocalEpoch(etcdPort: number, cluster: string): Promise<StoredEpoch> {
  return { epoch: (await readVersioned(etcdPort, cluster)).epoch };
}

export async function claimLocalEpoch(etcdPort: number, site: string, cluster: string, epoch: number): Promise<EpochClaim> {
  return claimWithCas(`${site}/${cluster}`, epoch, () => readVersioned(etcdPort, cluster),
    (e, version) => etcdPutIfUnchanged(etcdPort, epochKey(cluster), String(e), version));
}

/**
 * Removed with its cluster, as the zalando kind's annotation goes with its resource: a cluster created again under
 * the name starts a new history, and the runs that could carry an old epoch for it ended with the old one.
 */
export async function forgetLocalEpoch(etcdPort: number, cluster: string): Promise<boolean> {
  return etcdDeleteKey(etcdPort, epochKey(cluster));
}
