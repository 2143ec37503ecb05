import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { RunbookError, WaitTimedOutError } from '../../workflows/contracts/errors';

/**
 * Waits until the standby leader's WAL receiver is streaming. A planned switchover is only lossless when the
 * standby is connected at the moment the old primary shuts down: the walsender hands over the shutdown
 * checkpoint only to receivers that are connected then.
 */
export function createWaitForStreaming(deps: ActivityDeps) {
  return async function postgresWaitForStreaming(input: { ref: string; timeoutSeconds: number }): Promise<{
    senderHost: string | null;
    senderPort: number | null;
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
        if (row?.status === 'streaming') return { senderHost: row.sender_host, senderPort: row.sender_port };
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
