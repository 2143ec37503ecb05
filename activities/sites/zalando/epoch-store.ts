// The fencing epoch of a zalando cluster: an annotation on its `postgresql` object, compare-and-set through the
// object's resourceVersion (a merge patch that names it is refused with 409 when the object changed meanwhile).
// The API server answers while Patroni and Postgres are stopped, so fence and rejoin can check it then.
import { NotReadyError, PreconditionFailedError } from '../../../workflows/contracts/errors';
import type { EpochClaim, StoredEpoch } from '../site-driver';
import { claimWithCas, parseEpoch, type VersionedEpoch } from '../epoch';
import type { KubeAccess, KubeObject } from './kube';

export const EPOCH_ANNOTATION = 'standby-runbooks.dev/fencing-epoch';

async function readVersioned(kube: KubeAccess, path: string, ref: string): Promise<VersionedEpoch | null> {
  const pg = await kube.get<KubeObject>(path);
  if (!pg) return null;
  const raw = pg.metadata.annotations?.[EPOCH_ANNOTATION];
  return { epoch: raw === undefined ? null : parseEpoch(raw, `${ref} annotation ${EPOCH_ANNOTATION}`), version: pg.metadata.resourceVersion ?? '' };
}

export async function readZalandoEpoch(kube: KubeAccess, path: string, ref: string): Promise<StoredEpoch> {
  const v = await readVersioned(kube, path, ref);
  if (!v) throw new PreconditionFailedError(`${ref} does not exist`, { cluster: ref });
  return { epoch: v.epoch };
}

/**
 * No object, nothing to hold an epoch and nothing it could refuse: a reseed deletes and re-creates the object, and
 * its retry after the delete must go on. Then `changed: false` and nothing is stored.
 */
export async function claimZalandoEpoch(kube: KubeAccess, path: string, ref: string, epoch: number): Promise<EpochClaim> {
  if (!(await readVersioned(kube, path, ref))) return { changed: false, epoch, previous: null };
  return claimWithCas(ref, epoch, async () => (await readVersioned(kube, path, ref)) ?? { epoch: null, version: '' }, async (e, version) => {
    try {
      await kube.mergePatch(path, { metadata: { resourceVersion: version, annotations: { [EPOCH_ANNOTATION]: String(e) } } });
      return true;
    } catch (err) {
      if (err instanceof NotReadyError) return false; // 409: the object moved; read again.
      throw err;
    }
  });
}
