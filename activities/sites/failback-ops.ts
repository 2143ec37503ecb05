// The former primary's side of failback: read it, keep what it would lose, bring it back as a standby.
import { heartbeat } from '@temporalio/activity';
import { keepHeartbeating } from '../keep-heartbeating';
import type { ActivityDeps } from '../deps';
import { siteConfig } from '../deps';
import type { ArchiveLocation, FormerPrimaryAssessment, QuarantineResult, ReseedResult, StreamingEndpoint } from '../sites/site-driver';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { claimEpoch } from './epoch';

/** Read-only: what the former primary holds (timeline, last LSN, system id, rewind prerequisites). */
export function createAssessFormerPrimary(deps: ActivityDeps) {
  return async function siteAssessFormerPrimary(input: { ref: string }): Promise<FormerPrimaryAssessment> {
    const { site, cluster } = parseClusterRef(input.ref);
    return deps.driverFor(site).assessFormerPrimary(cluster);
  };
}

/**
 * Copies the former primary's WAL from the fork point on to a quarantine prefix in a site's bucket (named by
 * site, so the S3 settings come from the sites file). Never deletes; a rerun finds the copies and adds nothing.
 */
export function createQuarantineWal(deps: ActivityDeps) {
  return async function siteQuarantineWal(input: {
    ref: string;
    fromLsn: string;
    timeline: number;
    destinationSite: string;
    prefix: string;
  }): Promise<QuarantineResult> {
    const { site, cluster } = parseClusterRef(input.ref);
    return keepHeartbeating(`quarantining WAL of ${input.ref}`, () => deps.driverFor(site).quarantineWal(cluster, {
      fromLsn: input.fromLsn,
      timeline: input.timeline,
      destination: { s3: siteConfig(deps, input.destinationSite).s3, prefix: input.prefix },
    }));
  };
}

/** DESTRUCTIVE (quarantine first): re-checks the target, moves its data aside and bootstraps it as a standby of `sourceRef`. */
export function createReseedAsStandby(deps: ActivityDeps) {
  return async function siteReseedAsStandby(input: {
    ref: string;
    sourceRef: string;
    fromArchive: { archive: ArchiveLocation; backupName: string };
    fromHost?: StreamingEndpoint;
    /** The fencing epoch of the failback (absent in runs from before epochs): a newer one stored refuses the wipe. */
    epoch?: number;
    slotName?: string;
    /** Re-checked by the driver at the moment of the stop (absent in histories from before the check). */
    assessedSystemIdentifier?: string | null;
    runTag?: string;
  }): Promise<ReseedResult> {
    const { site, cluster } = parseClusterRef(input.ref);
    await claimEpoch(deps.driverFor(site), input.ref, cluster, input.epoch, `wipe and reseed it as a standby of ${input.sourceRef}`);
    return deps.driverFor(site).reseedAsStandby(
      cluster,
      {
        sourceRef: input.sourceRef, fromArchive: input.fromArchive, fromHost: input.fromHost, slotName: input.slotName,
        assessedSystemIdentifier: input.assessedSystemIdentifier, runTag: input.runTag,
      },
      (detail) => heartbeat({ detail }),
    );
  };
}
