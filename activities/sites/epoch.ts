// The fencing epoch (issue #14): every promotion of a protected pair takes a number higher than any either side
// stores, and every fence, unfence, promote and rejoin carries it. A step carrying an older number than the cluster
// stores was decided before a newer promotion: it must not act, or a late retry could undo the newer decision.
import { NotReadyError, StaleEpochError } from '../../workflows/contracts/errors';
import type { EpochClaim, SiteDriver } from './site-driver';

/** The stored value and the store's version of it, for a compare-and-set. */
export interface VersionedEpoch {
  epoch: number | null;
  version: string;
}

export function staleEpoch(ref: string, carried: number, stored: number, what: string): StaleEpochError {
  return new StaleEpochError(
    `${ref} stores fencing epoch ${stored}, newer than epoch ${carried} this step carries: refusing to ${what} ` +
      `(a newer promotion decided since; nothing was changed). Start the runbook again if this is still wanted.`,
    { cluster: ref, storedEpoch: stored, carriedEpoch: carried },
  );
}

/** Parses a stored epoch; anything but a positive integer is a corrupt store, never silently "no epoch". */
export function parseEpoch(raw: string, where: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new NotReadyError(`fencing epoch at ${where} is not a positive integer: ${JSON.stringify(raw.slice(0, 40))}`);
  return n;
}

/**
 * Compare-and-set loop over a store with versions (etcd mod revision, Kubernetes resourceVersion): refuses when a
 * higher epoch is stored, succeeds unchanged on the same one, writes otherwise; retries only when the version moved.
 */
export async function claimWithCas(
  ref: string,
  epoch: number,
  read: () => Promise<VersionedEpoch>,
  write: (epoch: number, version: string) => Promise<boolean>,
): Promise<EpochClaim> {
  if (!Number.isSafeInteger(epoch) || epoch < 1) throw new NotReadyError(`fencing epoch ${epoch} for ${ref} is not a positive integer`);
  for (let attempt = 0; attempt < 10; attempt++) {
    const cur = await read();
    if (cur.epoch !== null && cur.epoch > epoch) throw staleEpoch(ref, epoch, cur.epoch, `record epoch ${epoch}`);
    if (cur.epoch === epoch) return { changed: false, epoch, previous: cur.epoch };
    if (await write(epoch, cur.version)) return { changed: true, epoch, previous: cur.epoch };
  }
  throw new NotReadyError(`fencing epoch of ${ref}: the store kept changing under 10 compare-and-set attempts`, { cluster: ref });
}

/**
 * Records a step's epoch on its cluster (compare-and-set); a higher one stored refuses, naming what was not done.
 * A step without an epoch (scheduled before epochs existed) claims nothing: null.
 */
export async function claimEpoch(driver: SiteDriver, ref: string, cluster: string, epoch: number | undefined, what: string): Promise<EpochClaim | null> {
  if (epoch === undefined) return null;
  try {
    return await driver.claimEpoch(cluster, epoch);
  } catch (err) {
    if (err instanceof StaleEpochError) throw staleEpoch(ref, epoch, Number(err.facts.storedEpoch), what);
    throw err;
  }
}
