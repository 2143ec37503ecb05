import { MockActivityEnvironment } from '@temporalio/testing';
import { createWaitForReplay } from '../../activities/postgres/wait-for-replay';
import type { ActivityDeps } from '../../activities/deps';
import type { SiteDriver } from '../../activities/sites/site-driver';
import { SiteUnreachableError, WaitTimedOutError } from '../../workflows/contracts/errors';
import { parseApprovalPolicy } from '../../activities/identity/approval-policy';

/** A standby whose answers are scripted, one per poll: an error, or (replayed LSN, marker present). */
function scriptedStandby(script: Array<Error | { lsn: string; marker: boolean }>): ActivityDeps {
  let i = 0;
  const driver = {
    withLeaderSql: async (_c: string, fn: (client: unknown) => Promise<unknown>) => {
      const step = script[Math.min(i++, script.length - 1)];
      if (step instanceof Error) throw step;
      const client = {
        query: async (text: string) => text.includes('pg_is_in_recovery')
          ? { rows: [{ in_recovery: true, lsn: step.lsn, timeline: 1, at: new Date('2026-01-01T00:00:05Z'), replayed_at: null, system_id: '7000000000000000001' }] }
          : { rows: step.marker ? [{ written_at: new Date('2026-01-01T00:00:00Z') }] : [] },
      };
      return fn(client);
    },
  } as unknown as SiteDriver;
  return { sites: { path: 't', sites: {}, approvals: parseApprovalPolicy(undefined, 'no sites file') }, driverFor: () => driver };
}

describe('postgresWaitForReplay', () => {
  it('waits through a starting standby and replay, heartbeating progress, until the marker is replayed', async () => {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const deps = scriptedStandby([
      new SiteUnreachableError('no leader yet'),
      { lsn: '0/2000000', marker: false },
      { lsn: '0/3000060', marker: true },
    ]);
    const r = await env.run(createWaitForReplay(deps), {
      ref: 'us/acid-b', markerId: 'm1', targetLsn: '0/3000060', timeoutSeconds: 30, pollIntervalSeconds: 0.01,
    });
    expect(r).toEqual({ replayedLsn: '0/3000060', markerWrittenAt: '2026-01-01T00:00:00.000Z', timeline: 1 });
    expect(beats).toEqual([
      expect.objectContaining({ state: 'starting', detail: 'no leader yet' }),
      expect.objectContaining({ state: 'replaying', replayedLsn: '0/2000000', behindBytes: 0x1000060 }),
      expect.objectContaining({ state: 'caught-up', replayedLsn: '0/3000060' }),
    ]);
  });

  it('gives up with a typed, final error naming the last replayed LSN', async () => {
    const env = new MockActivityEnvironment();
    const deps = scriptedStandby([{ lsn: '0/2000000', marker: false }]);
    const wait = env.run(createWaitForReplay(deps), {
      ref: 'us/acid-b', markerId: 'm1', targetLsn: '0/3000060', timeoutSeconds: 0.05, pollIntervalSeconds: 0.01,
    });
    await expect(wait).rejects.toThrow(WaitTimedOutError);
    await expect(env.run(createWaitForReplay(deps), {
      ref: 'us/acid-b', markerId: 'm1', targetLsn: '0/3000060', timeoutSeconds: 0.05, pollIntervalSeconds: 0.01,
    })).rejects.toThrow(/did not replay up to 0\/3000060 .*last replayed: 0\/2000000/);
  });
});
