// All activities, merged into the flat registry the worker serves. Names are system + operation.
import type { ActivityDeps } from './deps';
import { createResolveClusterRefs } from './sites/resolve-cluster-refs';
import { createDescribeCluster } from './sites/describe-cluster';
import { createCreateStandbyCluster } from './sites/create-standby-cluster';
import { createFindLatestBackup } from './s3/find-latest-backup';
import { createWriteMarker } from './postgres/write-marker';
import { createReadMarker, createCurrentPosition } from './postgres/read-marker';
import { createWaitForReplay } from './postgres/wait-for-replay';
import { createCopyClusterSecrets } from './secrets/copy-cluster-secrets';

/** Activities that only read configuration: served on the control task queue. */
export function createControlActivities(deps: ActivityDeps) {
  return {
    siteResolveClusterRefs: createResolveClusterRefs(deps),
  };
}

/** Activities that touch a site: served on that site's task queue by the worker of its region. */
export function createSiteActivities(deps: ActivityDeps) {
  return {
    siteDescribeCluster: createDescribeCluster(deps),
    siteCreateStandbyCluster: createCreateStandbyCluster(deps),
    s3FindLatestBackup: createFindLatestBackup(),
    postgresWriteMarker: createWriteMarker(deps),
    postgresReadMarker: createReadMarker(deps),
    postgresCurrentPosition: createCurrentPosition(deps),
    postgresWaitForReplay: createWaitForReplay(deps),
    secretsCopyClusterSecrets: createCopyClusterSecrets(deps),
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
export type SiteActivities = ReturnType<typeof createSiteActivities>;
export type { ActivityDeps };
