// drctl retention as an operator runs it (a child process, --json and human output) against real workers, real
// WAL-G and S3: keep < 1 is a usage error and starts nothing; the runbook itself refuses keep < 1 as final bad input
// before anything is read; a dry run deletes nothing; then the older backups go, the newest N stay.
import { WorkflowNotFoundError } from '@temporalio/client';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import type { ArchiveLocation } from '../../activities/sites/site-driver';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { RUNBOOK_NAMES } from '../../workflows/contracts/runbooks';
import { failureOf } from '../helpers/failures';
import { withRunbookWorkers } from '../helpers/runbook-workers';
import { deleteCluster, driverOf, sql, switchWalAndWaitArchived } from '../helpers/clusters';
import { createSource } from '../helpers/standby-pair';
import { drctl } from './drctl-process';

const CLUSTER = 'eu/acid-drret';

describe('drctl retention', () => {
  let archive: ArchiveLocation;
  const names = async () => (await listCompleteBackups(archive.s3, archive.walPrefix)).map((b) => b.name);

  beforeAll(async () => {
    await createSource(CLUSTER, { members: 1 });
    const { driver, cluster } = driverOf(CLUSTER);
    archive = (await driver.describeCluster(cluster))!.archive;
    while ((await names()).length < 3) {
      await sql(CLUSTER, 'INSERT INTO public.writes (id) SELECT coalesce(max(id), 0) + 1 FROM public.writes');
      const r = await driver.region.backupPush(cluster);
      if (r.exitCode !== 0) throw new Error(`backup-push failed: ${r.stderr.slice(-300)}`);
      await switchWalAndWaitArchived(CLUSTER);
    }
  });
  afterAll(async () => {
    await deleteCluster(CLUSTER);
  });

  it('keep < 1: a usage error from drctl, a final refusal from the runbook; nothing deleted', async () => {
    const before = await names();
    await withRunbookWorkers(async (h) => {
      const run = await drctl(h, ['retention', CLUSTER, '--keep', '0', '--json']);
      expect(run.code).toBe(2);
      expect(run.json).toMatchObject({ ok: false, command: 'retention', error: { kind: 'usage' } });
      expect(run.json.error.message).toContain('is not an integer >= 1');
      await expect(h.client.workflow.getHandle(`retention/${CLUSTER}`).describe()).rejects.toThrow(WorkflowNotFoundError);
      // Started without drctl: the runbook refuses it in validate, not retried.
      const handle = await startRunbook(h.client, {
        workflowType: 'retention', runbook: RUNBOOK_NAMES.retention, cluster: CLUSTER, input: { cluster: CLUSTER, keep: 0 }, taskQueue: h.taskQueue,
      });
      expect(await failureOf(handle)).toMatchObject({ type: 'BadInputError', nonRetryable: true, message: expect.stringContaining('keep must be a whole number') });
    });
    expect(await names()).toEqual(before);
  });

  it('--dry-run lists and deletes nothing; then the two newest stay, and a rerun has nothing to do', async () => {
    const before = await names();
    await withRunbookWorkers(async (h) => {
      const dry = await drctl(h, ['retention', CLUSTER, '--keep', '2', '--dry-run', '--json']);
      expect({ code: dry.code, stderr: dry.stderr }).toEqual({ code: 0, stderr: '' });
      expect(dry.json).toMatchObject({ ok: true, command: 'retention', outcome: 'already', result: { dryRun: true, changed: false, keepApplied: 2 } });
      expect(dry.json.result.deleted.map((b: { name: string }) => b.name)).toEqual(before.slice(0, -2).reverse());
      expect(dry.json.journal.map((e: { step: string; outcome: string }) => `${e.step}:${e.outcome}`)).toEqual(['validate:done', 'retention:skipped']);
      expect(await names()).toEqual(before);

      const human = await drctl(h, ['retention', CLUSTER, '--keep', '2']);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain(`deleted ${before.length - 2} backup(s)`);
      expect(await names()).toEqual(before.slice(-2));

      const again = await drctl(h, ['retention', CLUSTER, '--keep', '2', '--json']);
      expect(again.json).toMatchObject({ ok: true, outcome: 'already', result: { changed: false, deleted: [] } });
      expect(await names()).toEqual(before.slice(-2));
    });
  });
});
