// region-failover's look at a surviving site: which of its clusters are standbys of the lost site, and how much a
// promotion of each would lose. Reads only; one call per cluster so hundreds assess in parallel and retry alone.
import type { ActivityDeps } from '../deps';
import { siteConfig } from '../deps';
import type { ClusterListing, PatroniRole } from './site-driver';
import { readPosition } from '../postgres/markers';
import { lastArchivedWal } from '../s3/backup-catalogue';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { lossAgainstArchive, type LossPolicyLimits } from '../../workflows/contracts/loss';
import type { LossEstimate } from '../../workflows/contracts/runbooks';

/** Every cluster of a site with its labels and recorded source: the evacuation's inventory. */
export function createListClusters(deps: ActivityDeps) {
  return async function siteListClusters(input: { site: string }): Promise<ClusterListing[]> {
    siteConfig(deps, input.site);
    const listed = await deps.driverFor(input.site).listClusters();
    return listed.sort((a, b) => a.cluster.localeCompare(b.cluster));
  };
}

export interface StandbyAssessment {
  ref: string;
  /** Patroni still runs it as a standby (standby_cluster set): false once promoted. */
  isStandby: boolean;
  leaderRole: PatroniRole;
  sourceRef: string | null;
  /** It streams from the source as well as (or instead of) replaying its archive. */
  streams: boolean;
  estimate: LossEstimate | null;
  timeline: number | null;
  /** Why it cannot be promoted as it is (no leader answering, ...), or null. */
  problem: string | null;
}

/**
 * One standby at the surviving site: its role, and the loss a promotion now would cause measured against the end
 * of the lost source's archive (the lost site itself is not asked: it is down, or about to be fenced).
 */
export function createAssessStandby(deps: ActivityDeps) {
  return async function siteAssessStandby(input: { ref: string; policy: LossPolicyLimits }): Promise<StandbyAssessment> {
    const { site, cluster } = parseClusterRef(input.ref);
    const driver = deps.driverFor(site);
    const facts = await driver.describeCluster(cluster);
    const base = { ref: input.ref, sourceRef: facts?.standbySource?.sourceRef ?? null, streams: !!facts?.standbySource?.host };
    if (!facts) return { ...base, isStandby: false, leaderRole: 'unknown', estimate: null, timeline: null, problem: `${input.ref} does not exist` };
    if (!facts.standbySource) {
      return { ...base, isStandby: false, leaderRole: facts.leaderRole, estimate: null, timeline: null,
        problem: facts.leaderRole === 'primary' ? null : `${input.ref} is not a standby and has no writable leader (${facts.leaderRole})` };
    }
    if (facts.leaderRole !== 'standby_leader') {
      return { ...base, isStandby: true, leaderRole: facts.leaderRole, estimate: null, timeline: null,
        problem: `no standby leader answers in ${input.ref} (leader role ${facts.leaderRole})` };
    }
    const position = await driver.withLeaderSql(cluster, readPosition);
    const walPrefix = facts.standbySource.walPrefix;
    const sourceSite = base.sourceRef ? parseClusterRef(base.sourceRef, 'recorded source').site : null;
    const archived = walPrefix && sourceSite ? await lastArchivedWal(siteConfig(deps, sourceSite).s3, walPrefix) : null;
    return {
      ...base, isStandby: true, leaderRole: facts.leaderRole, timeline: position.timeline, problem: null,
      estimate: lossAgainstArchive(position, archived, input.policy),
    };
  };
}
