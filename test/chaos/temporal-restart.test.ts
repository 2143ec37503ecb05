// Chaos: the Temporal server restarts (same SQLite file) while a planned promotion waits for its approval, and
// again while its first backup's backup-push is in flight. A PRIVATE dev server (its own port and file), never
// the suite's shared one. The workers run in this process and must reconnect by themselves.
import { join } from 'node:path';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { startDevServer, stopDevServer } from '../../scripts/lib/temporal-dev-server';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type PromoteResult } from '../../workflows/contracts/runbooks';
import type { SiteDriver } from '../../activities/sites/site-driver';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { approveAs, pendingGate } from '../helpers/approvals';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { driverOf, roleOf } from '../helpers/clusters';
import { withRunbookWorkers } from '../helpers/runbook-workers';
import { testLayout } from '../helpers/test-env';
import { recordFault } from './results';
import { privatePort } from '../helpers/private-regions';

// Outside the suite's own sandbox block; shifted with the private layouts so concurrent shards never share it.
const PORT = privatePort(22950);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('chaos: Temporal server restart', () => {
  const dir = join(testLayout().dir, 'chaos-temporal');
  let pair: StandbyPair | null = null;
  afterAll(async () => {
    await stopDevServer(dir).catch(() => undefined);
    if (pair) await deleteStandbyPair(pair);
  });

  it('a planned promotion resumes after restarts during its approval wait and during its first backup', async () => {
    pair = await createStandbyPair('tr', { members: 1 });
    const p = pair;
    const { address } = await startDevServer({ dir, port: PORT });
    const restart = async () => {
      const t0 = Date.now();
      await stopDevServer(dir);
      await startDevServer({ dir, port: PORT });
      return Date.now() - t0;
    };
    // The backup-push is held open (heartbeating) until the server has been restarted under it: a long backup.
    let backupStarted = false;
    let releaseBackup: () => void = () => undefined;
    const held = new Promise<void>((r) => { releaseBackup = r; });
    const holdBackup = (driver: SiteDriver): SiteDriver => Object.assign(Object.create(driver) as SiteDriver, {
      runBaseBackup: async (cluster: string, onProgress: (d: string) => void, signal?: AbortSignal) => {
        backupStarted = true;
        const beat = setInterval(() => onProgress('held open by the chaos test'), 1000);
        await held.finally(() => clearInterval(beat));
        return driver.runBaseBackup(cluster, onProgress, signal);
      },
    });

    await recordFault('Temporal server restarted during a waiting approval', 'private dev server, SIGTERM + start on the same SQLite file while promote waits at its gate', async (observe) => {
      await recordFault('Temporal server restarted during a long backup', 'the same server, restarted while force-backup\'s backup-push is in flight (held open)', async (observeBackup) => {
        await withRunbookWorkers(async (h) => {
          const handle = await startRunbook(h.client, {
            workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: p.standby, taskQueue: h.taskQueue,
            input: { cluster: p.standby, mode: 'planned', approvalTimeoutSeconds: 600 },
          });
          const before = await pendingGate(handle);
          const tookMs = await restart();
          // The gate is still open after the restart, with what it showed before, and takes a decision.
          const after = await pendingGate(handle);
          expect(after).toEqual(before);
          await approveAs(handle, 'alice', { ticket: 'CHG-9' }, after);
          observe(`restart took ${tookMs} ms; the gate was still open with the same plan and took the approval`);

          for (let i = 0; i < 600 && !backupStarted; i++) await sleep(250);
          expect(backupStarted).toBe(true);
          const backupRestartMs = await restart();
          releaseBackup();
          const result = (await handle.result()) as PromoteResult;
          expect(result).toMatchObject({ fence: 'CONFIRMED', measuredRpoBytes: 0 });
          expect(await roleOf(p.standby)).toBe('primary');
          expect(await roleOf(p.source)).toBe('standby_leader');
          const { driver, cluster } = driverOf(p.standby);
          const facts = (await driver.describeCluster(cluster))!;
          expect((await listCompleteBackups(facts.archive.s3, facts.archive.walPrefix)).map((b) => b.name)).toContain(result.backup!.backupName);
          const steps = (await handle.query(getJournalQuery)).map((e) => e.step);
          expect(steps).toEqual(['validate-request', 'requester', 'estimate-loss', 'check-lineage', 'approval', 'fencing-epoch', 'check-streaming', 'fence-old-primary', 'catch-up', 'check-replay',
            'remove-standby-config', 'verify-writable', 'release-standby-slot', 'keep-standby-slot', 'rejoin-old-primary', 'first-backup', 'check-archive', 'report']);
          observe('the run then completed: promoted, old primary rejoined, journal once each');
          observeBackup(`restart took ${backupRestartMs} ms with backup-push in flight; the backup ${result.backup!.backupName} was proven by its sentinel and the run completed`);
        }, { temporalAddress: address, wrapDriver: holdBackup });
      });
    });
  });
});
