import type { ActivityDeps } from '../deps';
import { keepHeartbeating } from '../keep-heartbeating';
import type { DemoteRequest, DemoteResult, FenceResult, FinalWalResult, PromoteOutcome, SiteDriver, StoredEpoch } from '../sites/site-driver';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { SiteUnreachableError } from '../../workflows/contracts/errors';
import { parseLsn } from '../../workflows/contracts/lsn';
import { claimEpoch, staleEpoch } from './epoch';

/**
 * The fencing epoch of the promotion a step belongs to. Absent in inputs scheduled before epochs existed (saved
 * histories, runs in flight across the upgrade): those steps act as they always did.
 */
export interface WithEpoch {
  epoch?: number;
}

/** The cluster's stored fencing epoch (null: none yet), read at its site so a promotion can take a higher one. */
export function createReadEpoch(deps: ActivityDeps) {
  return async function siteReadEpoch(input: { ref: string }): Promise<StoredEpoch> {
    const { site, cluster } = parseClusterRef(input.ref);
    return deps.driverFor(site).readEpoch(cluster);
  };
}

/** Refuses (StaleEpochError, nothing changed) when the cluster stores a newer epoch than the step carries. */
async function checkEpoch(driver: SiteDriver, ref: string, cluster: string, epoch: number | undefined, what: string): Promise<void> {
  if (epoch === undefined) return;
  const stored = (await driver.readEpoch(cluster)).epoch;
  if (stored !== null && stored > epoch) throw staleEpoch(ref, epoch, stored, what);
}

/**
 * Stops writes on a cluster (Patroni paused, Postgres stopped fast); already fenced is success. The fenced side
 * takes the promotion's epoch too, so an older run can no longer lift or redo anything on it.
 */
export function createFenceCluster(deps: ActivityDeps) {
  return async function siteFenceCluster(input: { ref: string } & WithEpoch): Promise<FenceResult> {
    const { site, cluster } = parseClusterRef(input.ref);
    const driver = deps.driverFor(site);
    let unverified: string | null = null;
    try {
      await claimEpoch(driver, input.ref, cluster, input.epoch, 'fence it');
    } catch (err) {
      // The fence must still work with the region's DCS down (Patroni and Postgres may be running without it);
      // a stale epoch found there is a refusal, an unreadable one is said in the result.
      if (!(err instanceof SiteUnreachableError)) throw err;
      unverified = err.message;
    }
    const r = await keepHeartbeating(`fencing ${input.ref}`, () => driver.fenceCluster(cluster));
    return unverified === null ? r : { ...r, detail: `${r.detail} Fencing epoch ${input.epoch} not checked: ${unverified}.` };
  };
}

/** Lifts a fence the runbook set (rejection, timeout): Patroni resumes in the role it had. */
export function createUnfenceCluster(deps: ActivityDeps) {
  return async function siteUnfenceCluster(input: { ref: string } & WithEpoch): Promise<{ changed: boolean }> {
    const { site, cluster } = parseClusterRef(input.ref);
    const driver = deps.driverFor(site);
    await checkEpoch(driver, input.ref, cluster, input.epoch, 'lift its fence');
    return keepHeartbeating(`lifting the fence of ${input.ref}`, () => driver.unfenceCluster(cluster));
  };
}

/**
 * Promotes a standby cluster by removing `standby_cluster` from Patroni's config; already promoted is success.
 * The promotion's epoch is recorded on it first (compare-and-set): a higher one stored meanwhile refuses.
 */
export function createRemoveStandbyConfig(deps: ActivityDeps) {
  return async function siteRemoveStandbyConfig(input: { ref: string } & WithEpoch): Promise<PromoteOutcome> {
    const { site, cluster } = parseClusterRef(input.ref);
    const driver = deps.driverFor(site);
    await claimEpoch(driver, input.ref, cluster, input.epoch, 'promote it');
    return keepHeartbeating(`promoting ${input.ref}`, () => driver.removeStandbyConfig(cluster));
  };
}

/** Turns a fenced former primary into a standby of the promoted cluster; already following it is success. */
export function createDemoteToStandby(deps: ActivityDeps) {
  return async function siteDemoteToStandby(input: { ref: string } & DemoteRequest & WithEpoch): Promise<DemoteResult> {
    const { site, cluster } = parseClusterRef(input.ref);
    const { ref: _ref, epoch, ...req } = input;
    const driver = deps.driverFor(site);
    await claimEpoch(driver, input.ref, cluster, epoch, `make it a standby of ${req.sourceRef}`);
    return keepHeartbeating(`demoting ${input.ref}`, () => driver.demoteToStandby(cluster, req));
  };
}

/**
 * Puts a fenced primary's final WAL (up to and including its shutdown checkpoint) into its archive, for a standby
 * that only reads the archive. Carries the switchover's epoch: a newer switchover refuses it, nothing pushed.
 */
export function createArchiveFinalWal(deps: ActivityDeps) {
  return async function siteArchiveFinalWal(input: { ref: string; finalLsn: string } & WithEpoch): Promise<FinalWalResult> {
    const { site, cluster } = parseClusterRef(input.ref);
    parseLsn(input.finalLsn);
    const driver = deps.driverFor(site);
    await checkEpoch(driver, input.ref, cluster, input.epoch, 'archive its final WAL');
    return keepHeartbeating(`archiving the final WAL of ${input.ref}`, () => driver.archiveFinalWal(cluster, input.finalLsn));
  };
}
