import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import { readMarker, readPosition } from './markers';
import { backoffPauses } from '../poll-backoff';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { RunbookError, WaitTimedOutError } from '../../workflows/contracts/errors';
import { lsnAtOrAfter, lsnDiff } from '../../workflows/contracts/lsn';

export interface ReplayProgress {
  state: 'starting' | 'replaying' | 'caught-up';
  replayedLsn?: string;
  targetLsn: string;
  behindBytes?: number;
  detail?: string;
}

/**
 * Waits until the standby cluster's leader has replayed up to `targetLsn` (and shows the marker row, when one
 * is named), heartbeating its progress. Reads only, so a retry simply waits again.
 */
export function createWaitForReplay(deps: ActivityDeps) {
  return async function postgresWaitForReplay(input: {
    ref: string;
    markerId?: string;
    targetLsn: string;
    timeoutSeconds: number;
    pollIntervalSeconds: number;
  }): Promise<{ replayedLsn: string; markerWrittenAt: string; timeline: number }> {
    const ctx = Context.current();
    const { site, cluster } = parseClusterRef(input.ref);
    const driver = deps.driverFor(site);
    const deadline = Date.now() + input.timeoutSeconds * 1000;
    let last: ReplayProgress = { state: 'starting', targetLsn: input.targetLsn };
    // A standby that just started usually passes the marker within a second: look again soon, then every pollIntervalSeconds.
    const pause = backoffPauses(input.pollIntervalSeconds * 1000);
    for (;;) {
      try {
        const seen = await driver.withLeaderSql(cluster, async (client) => {
          const pos = await readPosition(client);
          const marker = input.markerId ? await readMarker(client, input.markerId) : { writtenAt: pos.at };
          return { pos, marker };
        });
        const behind = Math.max(0, lsnDiff(input.targetLsn, seen.pos.lsn));
        last = { state: 'replaying', replayedLsn: seen.pos.lsn, targetLsn: input.targetLsn, behindBytes: behind };
        if (seen.marker && lsnAtOrAfter(seen.pos.lsn, input.targetLsn)) {
          ctx.heartbeat({ ...last, state: 'caught-up' });
          return { replayedLsn: seen.pos.lsn, markerWrittenAt: seen.marker.writtenAt, timeline: seen.pos.timeline };
        }
      } catch (err) {
        // A standby that is still restoring its base backup has no leader that answers SQL yet.
        if (!(err instanceof RunbookError) || !err.retryable) throw err;
        last = { ...last, state: last.replayedLsn ? 'replaying' : 'starting', detail: err.message };
      }
      ctx.heartbeat(last);
      if (Date.now() >= deadline) {
        throw new WaitTimedOutError(
          `${input.ref} did not replay up to ${input.targetLsn} within ${input.timeoutSeconds}s ` +
            `(last replayed: ${last.replayedLsn ?? 'none, still starting'}${last.detail ? `; ${last.detail}` : ''}); ` +
            'check that the standby can read the archive or reach the source, then run provision-standby again',
          { ...last },
        );
      }
      await ctx.sleep(pause());
    }
  };
}
