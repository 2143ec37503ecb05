import type { ActivityDeps } from '../deps';
import type { ClusterFacts } from '../sites/site-driver';
import { parseClusterRef } from '../../workflows/contracts/clusters';

/** Facts about a cluster (null when it does not exist); reads only. */
export function createDescribeCluster(deps: ActivityDeps) {
  return async function siteDescribeCluster(input: { ref: string }): Promise<ClusterFacts | null> {
    const { site, cluster } = parseClusterRef(input.ref);
    return deps.driverFor(site).describeCluster(cluster);
  };
}
