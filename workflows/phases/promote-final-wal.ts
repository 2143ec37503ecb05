// promote, planned: how the standby gets the old primary's last WAL, up to and including its shutdown checkpoint.
// A streaming standby receives it from the walsender as the primary stops ("streamed"). A standby that does not
// stream (provisioned from the archive only, or with no route to the source's Postgres port) never would: the
// segment holding the checkpoint is still partial, and Postgres archives only full segments. For it, the fenced
// primary's site pushes that segment to the archive and the standby's restore_command replays it ("archived").
// Which path runs is decided by the standby itself (what it was provisioned with, and whether it streams now),
// never by a caller's flag. Runs started before this existed required streaming (patch marker).
import { patched } from '@temporalio/workflow';
import { siteLongActivities, siteProbeActivities } from '../activity-proxies';
import { failureFacts } from './failures';
import { withEpoch } from './fencing-epoch';
import { ARCHIVE_SWITCHOVER_PATCH, type PromotionPlan } from './promote-assess';
import type { RunbookRecord } from './runbook-record';
import type { FenceResult } from '../../activities/sites/site-driver';

/** How the old primary's final WAL reaches the standby in a planned switchover. */
export type FinalWalPath = 'streamed' | 'archived';

/** Whether a standby that replays its source's archive may switch over through it (false replaying older runs). */
export function archiveSwitchoverAllowed(plan: PromotionPlan): boolean {
  return !!plan.target.facts.standbySource?.walPrefix && patched(ARCHIVE_SWITCHOVER_PATCH);
}

/** Checked before anything stops: a connected receiver gets the final WAL by streaming, anything else via the archive. */
export async function chooseFinalWalPath(record: RunbookRecord, plan: PromotionPlan): Promise<FinalWalPath> {
  const standby = plan.target.facts.standbySource;
  const viaArchive = archiveSwitchoverAllowed(plan);
  if (viaArchive && !standby?.host) {
    record.step('check-streaming', 'skipped',
      `Standby ${plan.target.ref} replays from the archive only (no streaming source recorded): ${plan.source!.ref}'s final WAL segment goes through ${standby!.walPrefix}.`,
      { finalWal: 'archived' });
    return 'archived';
  }
  try {
    // Only from the source's current leader: after a switchover inside the source, the standby's host may be a replica.
    const source = plan.source!;
    const leader = patched('streaming-from-source-leader')
      // A source site that stops answering here is the fence's to judge (it then reports UNCONFIRMED), not a reason to stop.
      ? (await siteProbeActivities(source.site, plan.regionTimeoutSeconds).siteDescribeCluster({ ref: source.ref }).catch(() => null))?.streamingEndpoint
      : undefined;
    const s = await siteLongActivities(plan.target.site, 60).postgresWaitForStreaming({
      ref: plan.target.ref, timeoutSeconds: 60, ...(leader ? { sourceLeader: { sourceRef: source.ref, endpoint: leader } } : {}),
    });
    record.step('check-streaming', 'done', `Standby ${plan.target.ref} streams from ${s.senderHost}:${s.senderPort}` +
      `${s.fromSourceLeader ? `, the leader of ${source.ref}` : ''}.`);
    return 'streamed';
  } catch (err) {
    const f = failureFacts(err);
    if (!viaArchive || f.type !== 'WaitTimedOutError') throw err;
    record.step('check-streaming', 'failed',
      `Standby ${plan.target.ref} does not stream (${f.message}): ${plan.source!.ref}'s final WAL segment goes through ${standby!.walPrefix} instead.`,
      { finalWal: 'archived' });
    return 'archived';
  }
}

/** After the fence: the segment holding the shutdown checkpoint goes to the old primary's archive. Throws on failure. */
export async function archiveFinalWal(
  record: RunbookRecord, plan: PromotionPlan, fenced: FenceResult & { finalLsn: string }, epoch: number | undefined,
): Promise<void> {
  const source = plan.source!;
  try {
    const r = await siteLongActivities(source.site, 300).siteArchiveFinalWal({ ref: source.ref, finalLsn: fenced.finalLsn, ...withEpoch(epoch) });
    record.step('archive-final-wal', r.changed ? 'done' : 'already',
      `${r.changed ? 'Pushed' : 'The archive already held'} ${source.ref}'s final WAL ${r.segments.join(', ')} (partial, through its shutdown checkpoint at ` +
      `${fenced.finalLsn}, which ends at ${r.checkpointEndLsn}) ${r.changed ? 'to' : 'in'} ${r.walPrefix}, read back from the archive.`,
      { ...r, finalLsn: fenced.finalLsn });
  } catch (err) {
    record.step('archive-final-wal', 'failed', `Could not put ${source.ref}'s final WAL (through ${fenced.finalLsn}) into its archive: ${failureFacts(err).message}`);
    throw err;
  }
}
