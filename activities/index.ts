// All activities, merged into the flat registry the worker serves. Names are system + operation.
import type { ActivityDeps } from './deps';
import { createListSites, createResolveClusterRefs, createResolveSites } from './sites/resolve-cluster-refs';
import { createDescribeCluster } from './sites/describe-cluster';
import { createCreateStandbyCluster } from './sites/create-standby-cluster';
import { createFindLatestBackup } from './s3/find-latest-backup';
import { createWriteMarker } from './postgres/write-marker';
import { createReadMarker, createCurrentPosition } from './postgres/read-marker';
import { createWaitForReplay } from './postgres/wait-for-replay';
import { createCopyClusterSecrets } from './secrets/copy-cluster-secrets';
import { createRunBaseBackup } from './walg/run-base-backup';
import { createVerifyArchive } from './walg/verify-archive';
import { createRetainBackups } from './walg/retain-backups';
import { createProveBackup } from './s3/prove-backup';
import { createRestoreProof } from './walg/restore-proof';
import { createFindBackupAtOrAfter } from './s3/find-backup-at-or-after';
import { createFenceCluster, createUnfenceCluster, createRemoveStandbyConfig, createDemoteToStandby, createReadEpoch, createArchiveFinalWal,
  createStopWritesForSwitchover, createUndoNativeDemotion } from './sites/fence-cluster';
import { createVerifyWritable } from './postgres/verify-writable';
import { createWaitForStreaming } from './postgres/wait-for-streaming';
import { createLastArchivedWal } from './s3/last-archived-wal';
import { createArchiveLineage } from './s3/archive-lineage';
import { createNotifyEscalation } from './notify/escalate';
import { createAssessFormerPrimary, createQuarantineWal, createReseedAsStandby } from './sites/failback-ops';
import { createReadTimelineHistory } from './s3/read-timeline-history';
import { createDeleteDrillThrowaway } from './sites/delete-drill-throwaway';
import { createCountRows, createMarkAndCount } from './postgres/count-rows';
import { createStoreDrillReport } from './s3/drill-reports';
import { createAssessStandby, createListClusters } from './sites/region-inventory';
import { createJoinPromotion } from './temporal/join-promotion';
import { createParentDelegation } from './temporal/parent-delegation';
import { createCheckApprovalDecision, createCheckStarterAuthority, createIdentifyRequester } from './identity/check-decision';
import { createDropStandbySlot, createEnsureStandbySlot } from './sites/standby-slots';
import { createArchiverStatus, createWaitForArchived } from './postgres/archiver';
import { createStandbyLag } from './sites/standby-lag';

/** Activities that only read configuration: served on the control task queue. */
export function createControlActivities(deps: ActivityDeps) {
  return {
    siteResolveClusterRefs: createResolveClusterRefs(deps),
    siteResolveSites: createResolveSites(deps),
    siteListSites: createListSites(deps),
    notifyEscalation: createNotifyEscalation(),
    temporalJoinPromotion: createJoinPromotion(),
    temporalParentDelegation: createParentDelegation(),
    // Local activities of the approval gate: verification needs crypto and the issuers' keys.
    identityCheckDecision: createCheckApprovalDecision(deps),
    identityIdentifyRequester: createIdentifyRequester(deps),
    identityCheckStarterAuthority: createCheckStarterAuthority(deps),
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
    walgRunBaseBackup: createRunBaseBackup(deps),
    walgVerifyArchive: createVerifyArchive(deps),
    walgRetainBackups: createRetainBackups(deps),
    s3ProveBackup: createProveBackup(),
    walgRestoreProof: createRestoreProof(deps),
    s3FindBackupAtOrAfter: createFindBackupAtOrAfter(),
    siteFenceCluster: createFenceCluster(deps),
    siteStopWritesForSwitchover: createStopWritesForSwitchover(deps),
    siteUndoNativeDemotion: createUndoNativeDemotion(deps),
    siteUnfenceCluster: createUnfenceCluster(deps),
    siteArchiveFinalWal: createArchiveFinalWal(deps),
    siteRemoveStandbyConfig: createRemoveStandbyConfig(deps),
    siteDemoteToStandby: createDemoteToStandby(deps),
    siteReadEpoch: createReadEpoch(deps),
    siteEnsureStandbySlot: createEnsureStandbySlot(deps),
    siteDropStandbySlot: createDropStandbySlot(deps),
    postgresVerifyWritable: createVerifyWritable(deps),
    postgresWaitForStreaming: createWaitForStreaming(deps),
    siteAssessFormerPrimary: createAssessFormerPrimary(deps),
    siteQuarantineWal: createQuarantineWal(deps),
    siteReseedAsStandby: createReseedAsStandby(deps),
    s3ReadTimelineHistory: createReadTimelineHistory(deps),
    s3LastArchivedWal: createLastArchivedWal(deps),
    s3ArchiveLineage: createArchiveLineage(deps),
    siteDeleteDrillThrowaway: createDeleteDrillThrowaway(deps),
    postgresMarkAndCount: createMarkAndCount(deps),
    postgresCountRows: createCountRows(deps),
    s3StoreDrillReport: createStoreDrillReport(deps),
    siteListClusters: createListClusters(deps),
    siteAssessStandby: createAssessStandby(deps),
    postgresArchiverStatus: createArchiverStatus(deps),
    postgresWaitForArchived: createWaitForArchived(deps),
    siteStandbyLag: createStandbyLag(deps),
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
export type SiteActivities = ReturnType<typeof createSiteActivities>;
export type { ActivityDeps };
