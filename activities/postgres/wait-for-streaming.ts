import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { PreconditionFailedError, RunbookError, WaitTimedOutError } from '../../workflows/contracts/errors';
import type { StreamingEndpoint } from '../sites/site-driver';

export interface WaitForStreamingInput {
  ref: string;
  timeoutSeconds: number;
  /**
   * The source's current leader endpoint as its own site reports it (`streamingEndpoint` of its facts), with the
   * source's ref for the message. Given, a receiver streaming from anywhere else is refused.
   */
  sourceLeader?: { sourceRef: string; endpoint: StreamingEndpoint };
}

/**
 * Waits until the standby leader's WAL receiver is streaming. A planned switchover is only lossless when the
 * standby is connected at the moment the old primary shuts down: the walsender hands over the shutdown
 * checkpoint only to receivers that are connected then. And only the leader's walsender does: a standby that
 * streams from a replica of the source (its host after a switchover inside the source cluster) gets the leader's
 * last WAL only if that replica received it first, which nothing waits for; so it is refused, before any fence.
 */
export function createWaitForStreaming(deps: ActivityDeps) {
  return async function postgresWaitForStreaming(input: WaitForStreamingInput): Promise<{
    senderHost: string | null;
    senderPort: number | null;
    fromSourceLeader?: boolean;
  }> {
    const ctx = Context.current();
    const { site, cluster } = parseClusterRef(input.ref);
    const deadline = Date.now() + input.timeoutSeconds * 1000;
    let last = 'no WAL receiver';
    for (;;) {
      try {
        const row = await deps.driverFor(site).withLeaderSql(cluster, async (c) =>
          (await c.query<{ status: string; sender_host: string | null; sender_port: number | null }>(
            'SELECT status, sender_host, sender_port FROM pg_stat_wal_receiver',
          )).rows[0]);
        if (row?.status === 'streaming') {
          if (!input.sourceLeader) return { senderHost: row.sender_host, senderPort: row.sender_port };
          const { sourceRef, endpoint } = input.sourceLeader;
          if (row.sender_host === endpoint.host && Number(row.sender_port) === endpoint.port) {
            return { senderHost: row.sender_host, senderPort: row.sender_port, fromSourceLeader: true };
          }
          throw new PreconditionFailedError(
            `${input.ref} streams from ${row.sender_host}:${row.sender_port}, which is not the leader of ${sourceRef} ` +
            `(its leader is reached at ${endpoint.host}:${endpoint.port}): the old primary's last WAL would reach the ` +
            `standby only through another member, so a planned switchover cannot promise zero loss. Nothing was fenced. ` +
            `Point the standby at the leader (standby_cluster host/port, e.g. by provisioning it again with method "both") ` +
            `or use mode "unplanned"`,
            { ref: input.ref, senderHost: row.sender_host, senderPort: row.sender_port, sourceRef, leaderHost: endpoint.host, leaderPort: endpoint.port },
          );
        }
        last = row ? `WAL receiver ${row.status}` : 'no WAL receiver (replaying from the archive)';
      } catch (err) {
        if (!(err instanceof RunbookError) || !err.retryable) throw err;
        last = err.message;
      }
      ctx.heartbeat({ state: last });
      if (Date.now() >= deadline) {
        throw new WaitTimedOutError(
          `${input.ref} is not streaming from its source (${last} for ${input.timeoutSeconds}s): a planned switchover cannot promise zero loss; fix replication or use mode "unplanned"`,
        );
      }
      await ctx.sleep(1000);
    }
  };
}
