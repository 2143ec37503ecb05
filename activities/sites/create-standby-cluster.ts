import { heartbeat } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import type { ArchiveLocation, SourceLineage, StreamingEndpoint } from '../sites/site-driver';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { BadInputError } from '../../workflows/contracts/errors';

export interface CreateStandbyClusterInput {
  target: string;
  /** The source `<site>/<cluster>`, recorded on the standby. */
  source: string;
  fromArchive?: { archive: ArchiveLocation; backupName: string };
  fromHost?: StreamingEndpoint;
  /** The source's shape (major version, members), for drivers that declare it. */
  like?: { pgVersion: number; instances: number };
  /** The source's labels, so selectors and tiers (region-failover) find the standby as they found the source. */
  labels?: Record<string, string>;
  /** A drill's throwaway: `drill/<site>/<cluster>` of the drill, recorded on the cluster (the guard of siteDeleteDrillThrowaway). */
  drill?: string;
  /** Stream through this slot on the source (siteEnsureStandbySlot first). */
  slotName?: string;
  /** The source's system identifier and timeline, recorded on the standby for the lineage check of promotions. */
  sourceLineage?: SourceLineage;
}

/** Creates the standby cluster at the target site; an existing identical one is success without change. */
export function createCreateStandbyCluster(deps: ActivityDeps) {
  return async function siteCreateStandbyCluster(input: CreateStandbyClusterInput): Promise<{ changed: boolean }> {
    const { site, cluster } = parseClusterRef(input.target, 'target');
    if (!input.fromArchive && !input.fromHost) {
      throw new BadInputError('a standby needs an archive to replay from, a host to stream from, or both');
    }
    heartbeat({ step: 'creating', cluster: input.target });
    // Restoring a large base backup takes long: each progress line keeps the heartbeat timeout at bay.
    return deps.driverFor(site).createStandbyCluster(
      { cluster, sourceRef: input.source, fromArchive: input.fromArchive, fromHost: input.fromHost, like: input.like, labels: input.labels, drill: input.drill,
        slotName: input.slotName, ...(input.sourceLineage ? { sourceLineage: input.sourceLineage } : {}) },
      (detail) => heartbeat({ step: 'creating', cluster: input.target, detail }),
    );
  };
}
