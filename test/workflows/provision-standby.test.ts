// provision-standby against real parts: Temporal dev server, Patroni/Postgres 15 clusters in two regions,
// WAL archive in S3.
import { WorkflowFailedError } from '@temporalio/client';
import { startRunbook, RunbookAlreadyRunningError } from '../../scripts/lib/runbook-client';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { getJournalQuery, type JournalEntry } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type ProvisionStandbyInput, type ProvisionStandbyResult } from '../../workflows/contracts/runbooks';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { deleteCluster, driverOf, footprint, sql } from '../helpers/clusters';
import { saveHistory } from '../helpers/histories';

const SOURCE = 'eu/acid-demo';

async function provision(h: RunbookHarness, input: ProvisionStandbyInput) {
  const handle = await startRunbook(h.client, {
    workflowType: 'provisionStandby',
    runbook: RUNBOOK_NAMES.provisionStandby,
    cluster: String(input.target),
    input,
    taskQueue: h.taskQueue,
  });
  return handle;
}

/** Steps that change something; a refusal must come before all of them. */
const CHANGING_STEPS = ['write-marker', 'copy-credentials', 'create-standby'];
const validName = (ref: string) => {
  try {
    parseClusterRef(ref);
    return true;
  } catch {
    return false;
  }
};

const steps = (journal: JournalEntry[]) => journal.map((e) => `${e.step}:${e.outcome}`);

async function refusal(h: RunbookHarness, input: ProvisionStandbyInput): Promise<{ message: string; type?: string; journal: JournalEntry[] }> {
  const handle = await provision(h, input);
  const err = await handle.result().then(
    () => { throw new Error(`provision-standby of ${JSON.stringify(input)} succeeded but should have been refused`); },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as { message: string; type?: string; nonRetryable?: boolean; cause?: { message: string; type?: string; nonRetryable?: boolean } };
  const app = cause?.cause ?? cause;
  expect(app.nonRetryable).toBe(true);
  return { message: app.message, type: app.type, journal: await handle.query(getJournalQuery) };
}

describe('provision-standby', () => {
  const archiveTarget = 'us/acid-pa';
  const streamTarget = 'us/acid-ps';

  afterAll(async () => {
    await deleteCluster(archiveTarget);
    await deleteCluster(streamTarget);
  });

  it('builds an archive standby that replays the source, with the source credentials, and proves it with a marker', async () => {
    await withRunbookWorkers(async (h) => {
      const handle = await provision(h, { source: SOURCE, target: archiveTarget, method: 'archive', limits: { pollIntervalSeconds: 1 } });
      const result = (await handle.result()) as ProvisionStandbyResult;
      expect(result.alreadyProvisioned).toBe(false);
      expect(result.baseBackup).toMatch(/^base_[0-9A-F]{24}$/);
      expect(result.archiveCheck).toMatchObject({ status: 'OK', fromBackup: result.baseBackup, gaps: [] });
      const journal = await handle.query(getJournalQuery);
      expect(steps(journal)).toEqual([
        'validate-request:done', 'check-source:done', 'check-base-backup:done', 'check-target:done', 'write-marker:done',
        'copy-credentials:done', 'create-standby:done', 'wait-for-replay:done', 'verify-marker:done', 'check-archive:done', 'measure-lag:done',
      ]);
      expect(Object.keys(result.phaseDurationsMs)).toEqual(
        ['validate', 'preflight', 'copy-credentials', 'create-standby', 'wait-for-replay', 'verify', 'check-archive', 'report'],
      );

      // Independently of the runbook: the standby is in recovery, has the marker and the source's data.
      const [standby] = await sql<{ rec: boolean; marker: number; orders: string }>(archiveTarget,
        `SELECT pg_is_in_recovery() AS rec,
                (SELECT count(*)::int FROM standby_runbooks.markers WHERE id = $1) AS marker,
                (SELECT count(*) FROM public.orders) AS orders`, [result.markerId]);
      const [source] = await sql<{ orders: string }>(SOURCE, 'SELECT count(*) AS orders FROM public.orders');
      expect(standby).toEqual({ rec: true, marker: 1, orders: source.orders });
      const { driver, cluster } = driverOf(archiveTarget);
      const facts = await driver.describeCluster(cluster);
      expect(facts?.leaderRole).toBe('standby_leader');
      // The source's lineage is recorded in the run's result and on the standby itself, for promote's check.
      const [{ id: sourceId }] = await sql<{ id: string }>(SOURCE, 'SELECT system_identifier::text AS id FROM pg_control_system()');
      expect(result.sourceLineage).toEqual({ systemIdentifier: sourceId, timeline: expect.any(Number) });
      expect(facts?.standbySource).toMatchObject({ sourceSystemIdentifier: sourceId, sourceTimeline: result.sourceLineage!.timeline });

      // The standby holds the source's credentials, under its own name.
      const src = driverOf(SOURCE);
      for (const user of ['postgres', 'standby', 'app']) {
        expect(await driver.readSecret(cluster, user)).toEqual(await src.driver.readSecret(src.cluster, user));
      }

      // A row written on the source later arrives through the archive (WAL switched to close the segment).
      await sql(SOURCE, `INSERT INTO public.orders (customer, amount_cents) VALUES ('late-arrival', 4242)`);
      await sql(SOURCE, 'SELECT pg_switch_wal()');
      const deadline = Date.now() + 120_000;
      let seen = 0;
      while (Date.now() < deadline && seen === 0) {
        [{ n: seen }] = await sql<{ n: number }>(archiveTarget, `SELECT count(*)::int AS n FROM public.orders WHERE customer = 'late-arrival'`);
        if (seen === 0) await new Promise((r) => setTimeout(r, 1000));
      }
      expect(seen).toBe(1);
      await saveHistory(handle, 'provision-standby.archive');
    });
  });

  it('reruns as success without change when the target already is a standby of the source', async () => {
    await withRunbookWorkers(async (h) => {
      const before = driverOf(archiveTarget).driver.region.getCluster('acid-pa');
      const handle = await provision(h, { source: SOURCE, target: archiveTarget, method: 'archive', limits: { pollIntervalSeconds: 1 } });
      const result = (await handle.result()) as ProvisionStandbyResult;
      expect(result.alreadyProvisioned).toBe(true);
      const journal = await handle.query(getJournalQuery);
      expect(steps(journal)).toEqual([
        'validate-request:done', 'check-source:done', 'check-base-backup:done', 'check-target:already', 'write-marker:done',
        'wait-for-replay:done', 'verify-marker:done', 'check-archive:done', 'measure-lag:done',
      ]);
      expect(driverOf(archiveTarget).driver.region.getCluster('acid-pa')).toEqual(before);
      await saveHistory(handle, 'provision-standby.already');
    });
  });

  it('builds a streaming standby from the source leader', async () => {
    await withRunbookWorkers(async (h) => {
      const handle = await provision(h, { source: SOURCE, target: streamTarget, method: 'stream', limits: { pollIntervalSeconds: 1 } });
      const result = (await handle.result()) as ProvisionStandbyResult;
      expect(result.baseBackup).toBeUndefined();
      const [row] = await sql<{ rec: boolean; marker: number }>(streamTarget,
        'SELECT pg_is_in_recovery() AS rec, (SELECT count(*)::int FROM standby_runbooks.markers WHERE id = $1) AS marker', [result.markerId]);
      expect(row).toEqual({ rec: true, marker: 1 });
      // Streaming needs no WAL switch: a new row shows up on its own.
      await sql(SOURCE, `INSERT INTO public.orders (customer, amount_cents) VALUES ('streamed', 1)`);
      const deadline = Date.now() + 60_000;
      let n = 0;
      while (Date.now() < deadline && n === 0) {
        [{ n }] = await sql<{ n: number }>(streamTarget, `SELECT count(*)::int AS n FROM public.orders WHERE customer = 'streamed'`);
        if (n === 0) await new Promise((r) => setTimeout(r, 500));
      }
      expect(n).toBe(1);
      await saveHistory(handle, 'provision-standby.stream');
    });
  });

  it('refuses a second run for the same target while one is running', async () => {
    await withRunbookWorkers(async (h) => {
      const first = await provision(h, { source: SOURCE, target: archiveTarget, method: 'archive', limits: { pollIntervalSeconds: 1 } });
      await expect(provision(h, { source: SOURCE, target: archiveTarget, method: 'archive' }))
        .rejects.toThrow(RunbookAlreadyRunningError);
      await expect(provision(h, { source: SOURCE, target: archiveTarget, method: 'archive' }))
        .rejects.toThrow(/provision-standby\/us\/acid-pa is already running/);
      await first.result();
    });
  });

  describe('refuses bad input before changing anything', () => {
    const cases: Array<[string, ProvisionStandbyInput, RegExp]> = [
      ['an upper-case target name', { source: SOURCE, target: 'us/Acid-Bad', method: 'archive' }, /lower-case/],
      ['a target name without a team prefix', { source: SOURCE, target: 'us/standby', method: 'archive' }, /team id and a dash/],
      ['a target name over 53 characters', { source: SOURCE, target: `us/acid-${'x'.repeat(50)}`, method: 'archive' }, /at most 53/],
      ['a target without a site', { source: SOURCE, target: 'acid-nosite', method: 'archive' }, /"<site>\/<cluster>"/],
      ['an unknown site', { source: SOURCE, target: 'mars/acid-red', method: 'archive' }, /site "mars" is not in the sites file/],
      ['source and target in one site', { source: SOURCE, target: 'eu/acid-copy', method: 'archive' }, /both at site "eu"/],
      ['an unknown method', { source: SOURCE, target: 'us/acid-bm', method: 'carrier-pigeon' as never }, /method "carrier-pigeon" is not one of/],
      ['a negative replay timeout', { source: SOURCE, target: 'us/acid-bt', method: 'archive', limits: { replayTimeoutSeconds: -5 } }, /positive number/],
      ['a source that does not exist', { source: 'eu/acid-ghost', target: 'us/acid-gh', method: 'archive' }, /eu\/acid-ghost does not exist/],
      ['a source that is itself a standby', { source: 'us/acid-pa', target: 'eu/acid-back', method: 'archive' }, /itself a standby cluster/],
    ];
    it.each(cases)('%s', async (_name, input, message) => {
      await withRunbookWorkers(async (h) => {
        const r = await refusal(h, input);
        expect(r.message).toMatch(message);
        expect(r.journal.filter((e) => CHANGING_STEPS.includes(e.step))).toEqual([]);
        if (String(input.target).startsWith('us/') && validName(input.target)) {
          expect(footprint(input.target)).toEqual({ clusterDir: false, secretsDir: false });
        }
      });
    });

    it('a target that already exists as a primary', async () => {
      const { driver } = driverOf('us/acid-other');
      await driver.region.createCluster({ name: 'acid-other', pgVersion: 15, archive: false, members: 1 });
      try {
        const before = await driver.describeCluster('acid-other');
        await withRunbookWorkers(async (h) => {
          const r = await refusal(h, { source: SOURCE, target: 'us/acid-other', method: 'archive' });
          expect(r.message).toMatch(/us\/acid-other already exists and is a primary cluster/);
        });
        const after = await driver.describeCluster('acid-other');
        expect(after?.leaderRole).toBe('primary');
        expect(after?.standbySource).toBeUndefined();
        expect(after?.uid).toBe(before?.uid);
      } finally {
        await deleteCluster('us/acid-other');
      }
    });
  });
});
