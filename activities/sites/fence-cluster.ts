import type { ActivityDeps } from '../deps';
import { keepHeartbeating } from '../keep-heartbeating';
import type { DemoteRequest, DemoteResult, FenceResult } from '../sites/site-driver';
import { parseClusterRef } from '../../workflows/contracts/clusters';

/** Stops writes on a cluster (Patroni paused, Postgres stopped fast); already fenced is success. */
export function createFenceCluster(deps: ActivityDeps) {
  return async function siteFenceCluster(input: { ref: string }): Promise<FenceResult> {
    const { site, cluster } = parseClusterRef(input.ref);
    return keepHeartbeating(`fencing ${input.ref}`, () => deps.driverFor(site).fenceCluster(cluster));
  };
}

/** Lifts a fence the runbook set (rejection, timeout): Patroni resumes in the role it had. */
export function createUnfenceCluster(deps: ActivityDeps) {
  return async function siteUnfenceCluster(input: { ref: string }): Promise<{ changed: boolean }> {
    const { site, cluster } = parseClusterRef(input.ref);
    return keepHeartbeating(`lifting the fence of ${input.ref}`, () => deps.driverFor(site).unfenceCluster(cluster));
  };
}

/** Promotes a standby cluster by removing `standby_cluster` from Patroni's config; already promoted is success. */
export function createRemoveStandbyConfig(deps: ActivityDeps) {
  return async function siteRemoveStandbyConfig(input: { ref: string }): Promise<{ changed: boolean }> {
    const { site, cluster } = parseClusterRef(input.ref);
    return keepHeartbeating(`promoting ${input.ref}`, () => deps.driverFor(site).removeStandbyConfig(cluster));
  };
}

/** Turns a fenced former primary into a standby of the promoted cluster; already following it is success. */
export function createDemoteToStandby(deps: ActivityDeps) {
  return async function siteDemoteToStandby(input: { ref: string } & DemoteRequest): Promise<DemoteResult> {
    const { site, cluster } = parseClusterRef(input.ref);
    const { ref: _ref, ...req } = input;
    return keepHeartbeating(`demoting ${input.ref}`, () => deps.driverFor(site).demoteToStandby(cluster, req));
  };
}
