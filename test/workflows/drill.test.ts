// drill against real parts: a source with rows in eu, its throwaway copy built from the archive in us, reports
// in the us bucket; a driver that refuses to promote the throwaway; bad input; a delete aimed at a real cluster.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, runbookWorkflowId } from '../../workflows/contracts/runbooks';
import { sandboxIdToken } from '../helpers/identity';
import type { DrillInput, DrillReport } from '../../workflows/contracts/drills';
import { renderDrillReport } from '../../workflows/contracts/drill-report';
import { PreconditionFailedError } from '../../workflows/contracts/errors';
import { listCompleteBackups, s3ClientFor, splitS3Url } from '../../activities/s3/backup-catalogue';
import { listDrillReports, readDrillReport } from '../../activities/s3/drill-reports';
import type { SiteDriver } from '../../activities/sites/site-driver';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { deleteCluster, driverOf, footprint, roleOf, sql } from '../helpers/clusters';
import { createSource, createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { approveWhenAsked } from '../helpers/approvals';
import { saveHistory } from '../helpers/histories';
import { failureOf } from '../helpers/failures';
import { AUDIT_SECRETS_DIR, REPO_ROOT } from '../helpers/test-env';

/** A disruptive drill is started by carol, who may approve the promotion it runs; its gates are decided by others. */
const startDrill = async (h: RunbookHarness, input: DrillInput) => startRunbook(h.client, {
  workflowType: 'drill', runbook: RUNBOOK_NAMES.drill, cluster: input.cluster, taskQueue: h.taskQueue,
  input: input.mode === 'disruptive' ? { ...input, requesterIdToken: await sandboxIdToken('carol', `start:${runbookWorkflowId(RUNBOOK_NAMES.drill, input.cluster)}`) } : input,
});

/** Every object key under an archive prefix (WAL, backups, history files). */
async function archiveKeys(walPrefix: string): Promise<string[]> {
  const { driver } = driverOf('eu/acid-demo');
  const { bucket, key } = splitS3Url(walPrefix);
  const s3 = s3ClientFor({ ...driver.cfg.s3, bucket });
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${key}/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push(o.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

async function timelineOf(ref: string): Promise<number> {
  const [row] = await sql<{ tli: number }>(ref, "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli");
  return Number(row.tli);
}

const usS3 = () => driverOf('us/acid-demo').driver.cfg.s3;

describe('drill', () => {
  const SOURCE = 'eu/acid-drl';
  const THROWAWAY = 'us/acid-drl-drill';
  let sourcePrefix = '';
  const pairs: StandbyPair[] = [];

  beforeAll(async () => {
    sourcePrefix = await createSource(SOURCE);
    await sql(SOURCE, 'INSERT INTO public.writes (id) SELECT g FROM generate_series(1, 500) g ON CONFLICT DO NOTHING');
  });
  afterAll(async () => {
    // The audit runs after these clusters and their secret stores are gone: hand it the passwords the drills copied.
    const values: string[] = [];
    for (const ref of [SOURCE, ...pairs.map((p) => p.source)]) {
      const { driver, cluster } = driverOf(ref);
      for (const user of await driver.listSecretUsers(cluster)) values.push((await driver.readSecret(cluster, user))!.password);
    }
    mkdirSync(AUDIT_SECRETS_DIR(), { recursive: true, mode: 0o700 });
    writeFileSync(join(AUDIT_SECRETS_DIR(), 'drill.json'), JSON.stringify(values), { mode: 0o600 });
    await deleteCluster(THROWAWAY);
    await deleteCluster(SOURCE);
    for (const p of pairs) await deleteStandbyPair(p);
  });

  it('non-disruptive: a throwaway copy from the archive holds the marker and the same rows, is promoted, backed up under its own prefix and removed; the report lands in S3 with the trend', async () => {
    const before = { keys: await archiveKeys(sourcePrefix), timeline: await timelineOf(SOURCE) };
    await withRunbookWorkers(async (h) => {
      const input: DrillInput = { cluster: SOURCE, drSite: 'us', verifyTables: ['public.writes'], limits: { replayTimeoutSeconds: 300 } };
      const first = await startDrill(h, input);
      const report = (await first.result()) as DrillReport;
      expect(report).toMatchObject({
        cluster: SOURCE, drSite: 'us', mode: 'non-disruptive', outcome: 'passed', failure: null, drCluster: THROWAWAY, markerFound: true,
        tables: [{ table: 'public.writes', sourceRows: 500, drillRows: 500, matches: true }], approvals: [], trend: [],
      });
      expect(report.rtoMs).toBeGreaterThan(0);
      expect(report.rpo.basis).toBe('archive');
      expect(report.rpo.bytes).toBeGreaterThanOrEqual(0);
      expect(report.timeline.map((p) => `${p.phase}:${p.outcome}`)).toEqual([
        'validate:done', 'measure-rpo:done', 'mark-source:done', 'provision-throwaway:done', 'wait-for-marker:done',
        'promote-throwaway:done', 'verify-data:done', 'prove-backup:done', 'check-archive:done', 'teardown:done',
      ]);

      // The backup is proven under the throwaway's own prefix in the DR bucket, not the source's.
      const journal = await first.query(getJournalQuery);
      const throwawayPrefix = journal.find((e) => e.step === 'promote-throwaway')!.facts!.walPrefix as string;
      expect(throwawayPrefix).toMatch(/^s3:\/\/dr-us\/spilo\/acid-drl-drill\//);
      expect((await listCompleteBackups(usS3(), throwawayPrefix)).map((b) => b.name)).toContain(report.backup!.name);
      expect(journal.map((e) => `${e.step}:${e.outcome}`)).toEqual([
        'validate-request:done', 'measure-rpo:done', 'mark-source:done', 'provision-throwaway:done', 'wait-for-marker:done',
        'check-lineage:done', 'promote-throwaway:done', 'verify-data:done', 'prove-backup:done', 'check-archive:done', 'check-archive:done',
        'teardown:done', 'write-report:done',
      ]);
      // The copy's backup is proven by restore as well: restored in a scratch, replayed to a marker, amcheck passed.
      const proved = journal.find((e) => e.step === 'prove-backup')!;
      expect(proved.message).toMatch(/by its sentinel, and by restore: replayed to \S+, marker found, amcheck passed on \d+ btree indexes/);
      expect(proved.facts!.restoreProof).toMatchObject({ backupName: report.backup!.name, markerFound: true });
      expect((proved.facts!.restoreProof as { indexesChecked: number }).indexesChecked).toBeGreaterThan(0);
      // WAL-G's wal-verify, read at the DR site: the source's archive (what a failover restores from) and the copy's own.
      const checks = journal.filter((e) => e.step === 'check-archive');
      expect(checks.map((e) => [e.facts!.walPrefix, e.facts!.status])).toEqual([[sourcePrefix, 'OK'], [throwawayPrefix, 'OK']]);
      expect(checks[1].facts!.fromBackup).toBe(report.backup!.name);

      // Gone: cluster and credentials. The source: still the primary on its timeline, its archive got nothing of the copy's.
      expect(footprint(THROWAWAY)).toEqual({ clusterDir: false, secretsDir: false });
      expect(await roleOf(SOURCE)).toBe('primary');
      expect(await timelineOf(SOURCE)).toBe(before.timeline);
      const added = (await archiveKeys(sourcePrefix)).filter((k) => !before.keys.includes(k));
      expect(added.filter((k) => k.includes('/basebackups_005/') || !new RegExp(`/wal_005/${before.timeline.toString(16).toUpperCase().padStart(8, '0')}`).test(k))).toEqual([]);

      // The report in the DR bucket, JSON and Markdown, readable without Temporal.
      const stored = await readDrillReport(usS3(), splitS3Url(report.stored!.json).key);
      expect(stored).toEqual(report);
      const md = await (await s3ClientFor(usS3()).send(new GetObjectCommand({ Bucket: 'dr-us', Key: splitS3Url(report.stored!.markdown).key }))).Body!.transformToString();
      expect(md).toBe(renderDrillReport(report));
      expect(md).toContain(`# Drill of ${SOURCE}: PASSED`);

      // A second drill has the first in its trend.
      await sql(SOURCE, 'INSERT INTO public.writes (id) SELECT g FROM generate_series(501, 600) g');
      const second = await startDrill(h, input);
      const again = (await second.result()) as DrillReport;
      expect(again.outcome).toBe('passed');
      expect(again.tables[0]).toMatchObject({ sourceRows: 600, drillRows: 600, matches: true });
      expect(again.trend[0]).toEqual({ workflowId: report.workflowId, startedAt: report.startedAt, outcome: 'passed', rtoMs: report.rtoMs, rpoBytes: report.rpo.bytes });
      expect((await listDrillReports(usS3(), SOURCE)).map((r) => r.runId).slice(0, 2)).toEqual([again.runId, report.runId]);
      process.stdout.write(`[drill] RTO ${report.rtoMs} ms / ${again.rtoMs} ms, RPO ${JSON.stringify(report.rpo)} / ${JSON.stringify(again.rpo)}, ` +
        `phases ${again.timeline.map((p) => `${p.phase} ${p.durationMs} ms`).join(', ')}\n`);
      await saveHistory(second, 'drill.non-disruptive');
      if (process.env.DR_WRITE_DRILL_EXAMPLE === '1') {
        mkdirSync(join(REPO_ROOT, 'docs', 'examples'), { recursive: true });
        writeFileSync(join(REPO_ROOT, 'docs', 'examples', 'drill-report.md'), await (await s3ClientFor(usS3()).send(
          new GetObjectCommand({ Bucket: 'dr-us', Key: splitS3Url(again.stored!.markdown).key }))).Body!.transformToString());
        writeFileSync(join(REPO_ROOT, 'docs', 'examples', 'drill-report.json'), JSON.stringify(await readDrillReport(usS3(), splitS3Url(again.stored!.json).key), null, 2) + '\n');
      }
    });
  });

  it('a throwaway that never promotes fails the drill, which still tears it down and stores a failed report', async () => {
    // Patroni of the throwaway refuses the promotion; everything else is the real driver.
    const refusesPromotion = (driver: SiteDriver): SiteDriver => Object.assign(Object.create(driver) as SiteDriver, {
      removeStandbyConfig: async (cluster: string) => {
        if (cluster.endsWith('-drill')) throw new PreconditionFailedError(`${driver.site}/${cluster}: Patroni refused the promotion (injected fault)`);
        return driver.removeStandbyConfig(cluster);
      },
    });
    await withRunbookWorkers(async (h) => {
      const handle = await startDrill(h, { cluster: SOURCE, drSite: 'us', verifyTables: ['public.writes'] });
      const failure = await failureOf(handle);
      expect(failure).toMatchObject({ type: 'PreconditionFailedError' });
      expect(failure.message).toMatch(/refused the promotion/);
      const journal = (await handle.query(getJournalQuery)).map((e) => `${e.step}:${e.outcome}`);
      expect(journal).toEqual(expect.arrayContaining(['provision-throwaway:done', 'wait-for-marker:done', 'teardown:done', 'write-report:done', 'runbook:failed']));
      expect(journal).not.toContain('verify-data:done');
      expect(footprint(THROWAWAY)).toEqual({ clusterDir: false, secretsDir: false });
      expect(await roleOf(SOURCE)).toBe('primary');
      const [newest] = await listDrillReports(usS3(), SOURCE, 1);
      expect(newest).toMatchObject({ runId: (await handle.describe()).runId, outcome: 'failed', rtoMs: null, backup: null });
      expect(newest.failure).toMatch(/refused the promotion/);
      expect(newest.timeline.find((p) => p.phase === 'promote-throwaway')).toMatchObject({ outcome: 'failed' });
      expect(newest.timeline.find((p) => p.phase === 'teardown')).toMatchObject({ outcome: 'done' });
      await saveHistory(handle, 'drill.promotion-fails');
    }, { wrapDriver: refusesPromotion });
  });

  it('bad input is refused before anything changes: no throwaway, no credentials copied', async () => {
    await withRunbookWorkers(async (h) => {
      const cases: Array<[DrillInput, string, RegExp]> = [
        [{ cluster: SOURCE, drSite: 'eu' }, 'BadInputError', /is the site of eu\/acid-drl itself/],
        [{ cluster: SOURCE, drSite: 'mars' }, 'BadInputError', /site "mars" is not in the sites file/],
        [{ cluster: SOURCE, drSite: 'us', throwawayName: `acid-${'x'.repeat(60)}` }, 'BadInputError', /the operator allows at most 53/],
        [{ cluster: SOURCE, drSite: 'us', throwawayName: 'drill' }, 'BadInputError', /must start with its team id and a dash/],
        [{ cluster: SOURCE, drSite: 'us', verifyTables: ['writes'] }, 'BadInputError', /"<schema>\.<table>"/],
        [{ cluster: 'eu/acid-nope', drSite: 'us' }, 'ClusterNotFoundError', /does not exist at site eu/],
        [{ cluster: SOURCE, drSite: 'us', verifyTables: ['public.nope'] }, 'BadInputError', /verifyTables names public\.nope, which eu\/acid-drl does not have/],
      ];
      for (const [input, type, message] of cases) {
        const handle = await startDrill(h, input);
        const failure = await failureOf(handle);
        expect({ input, type: failure.type, message: failure.message }).toMatchObject({ type, message: expect.stringMatching(message) });
        const journal = (await handle.query(getJournalQuery)).map((e) => `${e.step}:${e.outcome}`);
        expect(journal[journal.length - 1]).toBe('runbook:refused');
        expect(journal.some((s) => /provision|teardown|promote/.test(s))).toBe(false);
        expect(footprint(THROWAWAY)).toEqual({ clusterDir: false, secretsDir: false });
      }
    });
  });

  it('never deletes a cluster it did not create: a real cluster under the throwaway name is refused, by the drill and by the driver', async () => {
    const real = driverOf('us/acid-drl-real');
    await real.driver.region.createCluster({ name: real.cluster, pgVersion: 15, archive: false, members: 1 });
    try {
      await withRunbookWorkers(async (h) => {
        const handle = await startDrill(h, { cluster: SOURCE, drSite: 'us', throwawayName: real.cluster });
        const failure = await failureOf(handle);
        expect(failure.type).toBe('PreconditionFailedError');
        expect(failure.message).toMatch(/us\/acid-drl-real already exists and is not a throwaway of drill\/eu\/acid-drl: the drill never touches it/);
      });
      await expect(real.driver.deleteCluster(real.cluster, { drill: 'drill/eu/acid-drl' })).rejects.toThrow(/not a drill throwaway\): refusing to delete it/);
      const src = driverOf(SOURCE);
      await expect(src.driver.deleteCluster(src.cluster, { drill: 'drill/eu/acid-drl' })).rejects.toThrow(PreconditionFailedError);
      expect(await roleOf('us/acid-drl-real')).toBe('primary');
      expect(await roleOf(SOURCE)).toBe('primary');
      // Gone already is no change.
      expect(await real.driver.deleteCluster('acid-drl-never', { drill: 'drill/eu/acid-drl' })).toEqual({ changed: false, secretsDeleted: [], kept: null });
    } finally {
      await deleteCluster('us/acid-drl-real');
    }
  });

  it('disruptive: promotes the real standby and switches back through the child runbooks, each approved by a human, and reports the approvals', async () => {
    const pair = await createStandbyPair('drd');
    pairs.push(pair);
    await sql(pair.source, 'INSERT INTO public.writes (id) SELECT g FROM generate_series(1, 50) g');
    await withRunbookWorkers(async (h) => {
      const handle = await startDrill(h, { cluster: pair.source, drSite: 'us', mode: 'disruptive', verifyTables: ['public.writes'], approvalTimeoutSeconds: 600 });
      await approveWhenAsked(h.client.workflow.getHandle(`promote/${pair.standby}`), 'alice', 'DRILL-1');
      await approveWhenAsked(h.client.workflow.getHandle(`promote/${pair.source}`), 'bob', 'DRILL-2');
      const report = (await handle.result()) as DrillReport;
      expect(report).toMatchObject({
        mode: 'disruptive', outcome: 'passed', drCluster: pair.standby, markerFound: true,
        tables: [{ table: 'public.writes', sourceRows: 50, drillRows: 50, matches: true }],
      });
      expect(report.approvals.map((a) => `${a.approver}/${a.ticket}/${a.decision}`)).toEqual(['alice/DRILL-1/approved', 'bob/DRILL-2/approved']);
      expect(report.rtoMs).toBeGreaterThan(0);
      expect(report.backup).not.toBeNull();
      // The promoted standby's first backup is proven by restore too.
      const promoted = (await handle.query(getJournalQuery)).find((e) => e.step === 'promote-standby')!;
      expect(promoted.facts!.restoreProof).toMatchObject({ backupName: report.backup!.name, markerFound: true });
      expect(await roleOf(pair.source)).toBe('primary');
      expect(await roleOf(pair.standby)).toBe('standby_leader');
      expect(renderDrillReport(report)).toContain('| approved | alice | DRILL-1 |');
      process.stdout.write(`[drill disruptive] RTO ${report.rtoMs} ms, phases ${report.timeline.map((p) => `${p.phase} ${p.durationMs} ms`).join(', ')}\n`);
      await saveHistory(handle, 'drill.disruptive');
    });
  });
});
