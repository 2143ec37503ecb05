import type { ActivityDeps } from '../deps';
import { keepHeartbeating } from '../keep-heartbeating';
import type { DemoteRequest, DemoteResult, FenceResult, FinalWalResult, PromoteOutcome, SiteDriver, StoredEpoch, SwitchoverStop } from '../sites/site-driver';
import { demotePathFor } from './patroni-states';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { PreconditionFailedError, SiteUnreachableError } from '../../workflows/contracts/errors';
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
    const unverified = await claimFenceEpoch(driver, input.ref, cluster, input.epoch);
    const r = await keepHeartbeating(`fencing ${input.ref}`, () => driver.fenceCluster(cluster));
    return withUnverified(r, input.epoch, unverified);
  };
}

/** null when the epoch was claimed; the reason when the DCS could not be read (the fence goes on regardless). */
async function claimFenceEpoch(driver: SiteDriver, ref: string, cluster: string, epoch: number | undefined): Promise<string | null> {
  try {
    await claimEpoch(driver, ref, cluster, epoch, 'fence it');
    return null;
  } catch (err) {
    // The fence must still work with the region's DCS down (Patroni and Postgres may be running without it);
    // a stale epoch found there is a refusal, an unreadable one is said in the result.
    if (!(err instanceof SiteUnreachableError)) throw err;
    return err.message;
  }
}

const withUnverified = <T extends FenceResult>(r: T, epoch: number | undefined, unverified: string | null): T =>
  unverified === null ? r : { ...r, detail: `${r.detail} Fencing epoch ${epoch} not checked: ${unverified}.` };

/**
 * A planned switchover's old primary stops taking writes: where its Patroni can (>= 4), by demoting the running
 * primary into a standby of the promoting cluster (demote-cluster), else (or when the driver has no such operation,
 * the DCS is down, or Patroni is paused) by the fence. Either way under the promotion's epoch, and the result says
 * which path ran.
 */
export function createStopWritesForSwitchover(deps: ActivityDeps) {
  return async function siteStopWritesForSwitchover(input: { ref: string } & DemoteRequest & WithEpoch): Promise<SwitchoverStop> {
    const { site, cluster } = parseClusterRef(input.ref);
    const { ref: _ref, epoch, ...req } = input;
    const driver = deps.driverFor(site);
    const unverified = await claimFenceEpoch(driver, input.ref, cluster, epoch);
    const native = unverified === null && driver.demoteRunningPrimary
      ? await keepHeartbeating(`demoting ${input.ref}`, () => driver.demoteRunningPrimary!(cluster, req))
      : null;
    if (native?.native) return { ...native, demotePath: demotePathFor(native.patroniVersion, true) };
    const r = await keepHeartbeating(`fencing ${input.ref}`, () => driver.fenceCluster(cluster));
    const why = native ? ` Not demoted by Patroni: ${native.why}.` : '';
    return {
      ...withUnverified({ ...r, detail: `${r.detail}${why}` }, epoch, unverified),
      native: false,
      demotePath: demotePathFor(native?.patroniVersion, false),
      ...(native?.patroniVersion ? { patroniVersion: native.patroniVersion } : {}),
    };
  };
}

/** Undoes a native demotion this switchover did (rejection, no catch-up): standby_cluster removed, it promotes back. */
export function createUndoNativeDemotion(deps: ActivityDeps) {
  return async function siteUndoNativeDemotion(input: { ref: string } & WithEpoch): Promise<{ changed: boolean }> {
    const { site, cluster } = parseClusterRef(input.ref);
    const driver = deps.driverFor(site);
    await checkEpoch(driver, input.ref, cluster, input.epoch, 'undo its demotion');
    if (!driver.undoNativeDemotion) throw new PreconditionFailedError(`site ${site} has no native demotion to undo`, { site });
    return keepHeartbeating(`undoing the demotion of ${input.ref}`, () => driver.undoNativeDemotion!(cluster));
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
