// The drill through the zalando driver, against the real kube-apiserver with the worker's Role: the throwaway is
// a postgresql object annotated with the drill, deleted by the drill and only by it. Operator and kubelet are the
// stand-ins of test/kube/. Private ports 31400-31499 and a temp folder.
import { startRunbook } from '../../scripts/lib/runbook-client';
import { loadSites } from '../../activities/sites/sites-file';
import { createDriverFactory } from '../../activities/sites';
import { credentialsSecretName, DRILL_ANNOTATION, type PostgresqlObject } from '../../activities/sites/zalando-driver';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES } from '../../workflows/contracts/runbooks';
import type { DrillReport } from '../../workflows/contracts/drills';
import { waitFor } from '../helpers/private-regions';
import { withRunbookWorkers } from '../helpers/runbook-workers';
import { startZalandoHarness, type ZalandoHarness } from './zalando-harness';

const SOURCE = 'eu/acid-zdrl';
let z: ZalandoHarness;

const admin = (method: string, path: string, body?: unknown) => z.admin(method, path, body);
const pgPath = (ns: string, name: string) => `/apis/acid.zalan.do/v1/namespaces/${ns}/postgresqls/${name}`;

beforeAll(async () => {
  z = await startZalandoHarness('zalando-drill', 31400, { 'acid-zdrl': { members: 1, users: ['app'] }, 'acid-zdrl-drill': { members: 1, users: ['app'] } });
});

afterAll(async () => {
  await z?.stop({});
});

describe('drill through the zalando driver', () => {
  it('builds the throwaway as an annotated postgresql object from the archive, promotes, checks, backs it up and deletes it; never deletes an object it did not create', async () => {
    expect((await admin('POST', '/apis/acid.zalan.do/v1/namespaces/eu/postgresqls', {
      apiVersion: 'acid.zalan.do/v1', kind: 'postgresql', metadata: { name: 'acid-zdrl' },
      spec: { teamId: 'acid', numberOfInstances: 1, postgresql: { version: '15' }, volume: { size: '1Gi' }, users: { app: [] } },
    })).status).toBe(201);
    await waitFor('eu/acid-zdrl Running', 180_000, async () => ((await admin('GET', pgPath('eu', 'acid-zdrl'))).body as PostgresqlObject).status?.PostgresClusterStatus === 'Running' ? true : null);
    await z.euBacking.withLeaderSql('acid-zdrl', (c) => c.query('CREATE TABLE public.orders (id int primary key); INSERT INTO public.orders SELECT generate_series(1, 300)'));
    const pushed = await z.euBacking.region.backupPush('acid-zdrl');
    expect(pushed.exitCode).toBe(0);

    await withRunbookWorkers(async (h) => {
      const handle = await startRunbook(h.client, {
        workflowType: 'drill', runbook: RUNBOOK_NAMES.drill, cluster: SOURCE, taskQueue: h.taskQueue,
        input: { cluster: SOURCE, drSite: 'us', verifyTables: ['public.orders'], limits: { replayTimeoutSeconds: 300 } },
      });
      const report = (await handle.result()) as DrillReport;
      expect(report).toMatchObject({ outcome: 'passed', drCluster: 'us/acid-zdrl-drill', markerFound: true, tables: [{ sourceRows: 300, drillRows: 300, matches: true }] });
      expect(report.backup?.sentinelKey).toMatch(/^spilo\/acid-zdrl-drill\//);
      const journal = await handle.query(getJournalQuery);
      // The object carried the drill's annotation while it lived; the Secrets stay (the Role has no delete on them).
      expect(journal.find((e) => e.step === 'teardown')?.message).toMatch(/Deleted throwaway us\/acid-zdrl-drill; its Secrets .* are kept/);
      process.stdout.write(`[zalando drill] RTO ${report.rtoMs} ms, RPO ${JSON.stringify(report.rpo)}, phases ${report.timeline.map((p) => `${p.phase} ${p.durationMs} ms`).join(', ')}\n`);
    }, { sitesFile: z.sitesFile });
    expect((await admin('GET', pgPath('us', 'acid-zdrl-drill'))).status).toBe(404);
    expect((await admin('GET', `/api/v1/namespaces/us/secrets/${credentialsSecretName('postgres', 'acid-zdrl-drill')}`)).status).toBe(200);

    // The driver itself refuses an object without the drill's annotation, and one annotated by another drill.
    const eu = createDriverFactory(loadSites(z.sitesFile))('eu');
    await expect(eu.deleteCluster('acid-zdrl', { drill: 'drill/eu/acid-zdrl' })).rejects.toThrow(/no standby-runbooks.dev\/drill annotation: it is not a drill throwaway\): refusing to delete it/);
    await admin('PATCH', pgPath('eu', 'acid-zdrl'), { metadata: { annotations: { [DRILL_ANNOTATION]: 'drill/eu/acid-other' } } });
    await expect(eu.deleteCluster('acid-zdrl', { drill: 'drill/eu/acid-zdrl' })).rejects.toThrow(/it belongs to drill\/eu\/acid-other/);
    expect((await admin('GET', pgPath('eu', 'acid-zdrl'))).status).toBe(200);
  });
});
