import { heartbeat } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import type { DeleteClusterResult } from './site-driver';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { BadInputError } from '../../workflows/contracts/errors';

/**
 * Tears down a drill's throwaway copy. The driver deletes only a cluster that records this very drill as its
 * creator, so a wrong name or a bug in a drill can never delete a real cluster. Gone already: no change.
 */
export function createDeleteDrillThrowaway(deps: ActivityDeps) {
  return async function siteDeleteDrillThrowaway(input: { ref: string; drill: string }): Promise<DeleteClusterResult> {
    const { site, cluster } = parseClusterRef(input.ref);
    if (typeof input.drill !== 'string' || !input.drill.startsWith('drill/')) {
      throw new BadInputError(`drill "${String(input.drill)}" is not a drill's key (drill/<site>/<cluster>)`);
    }
    heartbeat({ step: 'deleting', cluster: input.ref });
    return deps.driverFor(site).deleteCluster(cluster, { drill: input.drill });
  };
}
