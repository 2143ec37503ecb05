// The runbooks through the zalando driver, against a REAL kube-apiserver (v1.34.4, RBAC on, the operator's CRD,
// the worker authenticated by a real ServiceAccount token bound to the Role rendered from the harness's sites file). The
// operator and the kubelet are stand-ins (test/kube/stand-in-operator.ts) whose pods are backed by real Patroni
// members of two private sandbox regions, so a promotion through the driver really promotes a Postgres cluster and
// a backup really lands in S3. Private ports 31300-31399 and a temp folder.
import { startRunbook } from '../../scripts/lib/runbook-client';
import { kubeRequest } from '../../scripts/lib/kube-dev-server';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { credentialsSecretName, type PostgresqlObject } from '../../activities/sites/zalando-driver';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type ForceBackupResult, type PromoteResult, type ProvisionStandbyResult } from '../../workflows/contracts/runbooks';
import { approveWhenAsked } from '../helpers/approvals';
import { failureOf } from '../helpers/failures';
import { waitFor } from '../helpers/private-regions';
import { withRunbookWorkers } from '../helpers/runbook-workers';
import { HOST_IP, startZalandoHarness, type ZalandoHarness } from './zalando-harness';

const SOURCE = 'eu/acid-zsrc';
const STANDBY = 'us/acid-zsrc';
let z: ZalandoHarness;
let euBacking: ZalandoHarness['euBacking'];
let usBacking: ZalandoHarness['usBacking'];
let operator: ZalandoHarness['operator'];
let kube: ZalandoHarness['kube'];
let sitesFile: string;
const timings: Record<string, number> = {};

const admin = (method: string, path: string, body?: unknown) => z.admin(method, path, body);
const postgresql = async (ns: string, name: string) => (await admin('GET', `/apis/acid.zalan.do/v1/namespaces/${ns}/postgresqls/${name}`)).body as PostgresqlObject;
const patroniRole = async (backing: typeof euBacking, cluster: string) => (await backing.describeCluster(cluster))?.leaderRole;

beforeAll(async () => {
  const t0 = Date.now();
  z = await startZalandoHarness('zalando', 31300, { 'acid-zsrc': { users: ['app'] }, 'acid-zarc': { users: ['app'] }, 'acid-zstr': { users: ['app'] } });
  ({ euBacking, usBacking, operator, kube, sitesFile } = z);
  timings.harnessStartMs = Date.now() - t0;
});

afterAll(async () => {
  await z?.stop(timings);
});

/** The lineage annotations of a postgresql object. */
const lineageAnnotations = (pg: { metadata: { annotations?: Record<string, string> } }) => Object.fromEntries(
  Object.entries(pg.metadata.annotations ?? {}).filter(([k]) => /^standby-runbooks\.dev\/source-(system-identifier|timeline)$/.test(k)),
);

describe('runbooks through the zalando driver', () => {
  it('force-backup runs Spilo\'s backup script in the leader pod (exec) and proves it by the sentinel in S3', async () => {
    const t0 = Date.now();
    const created = await admin('POST', '/apis/acid.zalan.do/v1/namespaces/eu/postgresqls', {
      apiVersion: 'acid.zalan.do/v1', kind: 'postgresql', metadata: { name: 'acid-zsrc' },
      spec: { teamId: 'acid', numberOfInstances: 2, postgresql: { version: '15' }, volume: { size: '1Gi' }, users: { app: [] } },
    });
    expect(created.status).toBe(201);
    await waitFor('eu/acid-zsrc Running', 180_000, async () => ((await postgresql('eu', 'acid-zsrc')).status?.PostgresClusterStatus === 'Running' ? true : null));
    timings.sourceCreateMs = Date.now() - t0;
    await euBacking.withLeaderSql('acid-zsrc', (c) => c.query("CREATE TABLE public.orders (id int primary key); INSERT INTO public.orders SELECT generate_series(1, 500)"));

    await withRunbookWorkers(async (h) => {
      const handle = await startRunbook(h.client, {
        workflowType: 'forceBackup', runbook: RUNBOOK_NAMES.forceBackup, cluster: SOURCE, taskQueue: h.taskQueue, input: { cluster: SOURCE },
      });
      const r = (await handle.result()) as ForceBackupResult;
      const uid = (await postgresql('eu', 'acid-zsrc')).metadata.uid;
      const backups = await listCompleteBackups(euBacking.cfg.s3, `s3://dr-eu-backing/spilo/acid-zsrc/${uid}/wal/15`);
      expect(backups.map((b) => b.name)).toContain(r.backupName);
    }, { sitesFile });
  });

  it('provision-standby creates the standby the operator\'s way: Secrets copied first, spec.standby, STANDBY_* env by reference', async () => {
    const t0 = Date.now();
    await withRunbookWorkers(async (h) => {
      const handle = await startRunbook(h.client, {
        workflowType: 'provisionStandby', runbook: RUNBOOK_NAMES.provisionStandby, cluster: STANDBY, taskQueue: h.taskQueue,
        input: { source: SOURCE, target: STANDBY, method: 'both', limits: { pollIntervalSeconds: 1 } },
      });
      const result = (await handle.result()) as ProvisionStandbyResult;
      // The source's lineage lives on the standby's own object, so a promotion can check it with the source gone.
      expect(lineageAnnotations(await postgresql('us', 'acid-zsrc'))).toEqual({
        'standby-runbooks.dev/source-system-identifier': result.sourceLineage!.systemIdentifier,
        'standby-runbooks.dev/source-timeline': String(result.sourceLineage!.timeline),
      });
    }, { sitesFile });
    timings.provisionMs = Date.now() - t0;
    const pg = await postgresql('us', 'acid-zsrc');
    const uid = (await postgresql('eu', 'acid-zsrc')).metadata.uid;
    expect(pg.spec.standby).toEqual({
      s3_wal_path: `s3://dr-eu-backing/spilo/acid-zsrc/${uid}/wal/15`, standby_host: HOST_IP, standby_port: expect.any(String), standby_primary_slot_name: 'dr_us_acid_zsrc',
    });
    expect(pg.metadata.annotations?.['standby-runbooks.dev/source']).toBe(SOURCE);
    const env = new Map((pg.spec.env ?? []).map((e) => [e.name, e]));
    expect(env.get('STANDBY_AWS_SECRET_ACCESS_KEY')).toEqual({ name: 'STANDBY_AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 'acid-zsrc-standby-s3', key: 'AWS_SECRET_ACCESS_KEY' } } });
    expect(env.get('STANDBY_USE_WALG_RESTORE')?.value).toBe('true');
    expect(env.has('STANDBY_WITH_WALE')).toBe(false);
    // The standby's Secrets hold the source's values (replication would not start otherwise).
    for (const user of ['postgres', 'standby', 'app']) {
      const a = (await admin('GET', `/api/v1/namespaces/eu/secrets/${credentialsSecretName(user, 'acid-zsrc')}`)).body as { data: Record<string, string> };
      const b = (await admin('GET', `/api/v1/namespaces/us/secrets/${credentialsSecretName(user, 'acid-zsrc')}`)).body as { data: Record<string, string> };
      expect(b.data).toEqual(a.data);
    }
    expect(await patroniRole(usBacking, 'acid-zsrc')).toBe('standby_leader');
    const rows = await usBacking.withLeaderSql('acid-zsrc', (c) => c.query<{ n: number }>('SELECT count(*)::int AS n FROM public.orders'));
    expect(rows.rows[0].n).toBe(500);
  });

  it.each([['archive', 'acid-zarc'], ['stream', 'acid-zstr']] as const)('provision-standby by %s only: spec.standby has only that source', async (method, name) => {
    const target = `us/${name}`;
    await withRunbookWorkers(async (h) => {
      const handle = await startRunbook(h.client, {
        workflowType: 'provisionStandby', runbook: RUNBOOK_NAMES.provisionStandby, cluster: target, taskQueue: h.taskQueue,
        input: { source: SOURCE, target, method, limits: { pollIntervalSeconds: 1 } },
      });
      await handle.result();
    }, { sitesFile });
    const standby = (await postgresql('us', name)).spec.standby!;
    if (method === 'archive') {
      expect(Object.keys(standby)).toEqual(['s3_wal_path']);
      expect((await postgresql('us', name)).spec.env?.map((e) => e.name)).toContain('STANDBY_AWS_ACCESS_KEY_ID');
    } else {
      expect(Object.keys(standby).sort()).toEqual(['standby_host', 'standby_port', 'standby_primary_slot_name']);
    }
    expect(await patroniRole(usBacking, name)).toBe('standby_leader');
    const rows = await usBacking.withLeaderSql(name, (c) => c.query<{ n: number }>('SELECT count(*)::int AS n FROM public.orders'));
    expect(rows.rows[0].n).toBe(500);
    expect((await admin('DELETE', `/apis/acid.zalan.do/v1/namespaces/us/postgresqls/${name}`)).status).toBe(200);
  });

  it('promote removes spec.standby, checks Patroni itself and PATCHes standby_cluster when the operator did not', async () => {
    operator.spec.skipStandbyPatch = true;
    const t0 = Date.now();
    await withRunbookWorkers(async (h) => {
      const handle = await startRunbook(h.client, {
        workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: STANDBY, taskQueue: h.taskQueue,
        input: { cluster: STANDBY, mode: 'unplanned', limits: { regionTimeoutSeconds: 10 } },
      });
      const gate = await approveWhenAsked(handle, 'alice');
      // The source answered: the fence ran in its pods (pause Patroni, pg_ctl stop, pg_controldata) and is confirmed.
      expect(gate.fence).toBe('CONFIRMED');
      const r = (await handle.result()) as PromoteResult;
      expect(r.fence).toBe('CONFIRMED');
      expect(r.timelineAfter).toBeGreaterThan(r.timelineBefore!);
      const journal = await handle.query(getJournalQuery);
      expect(journal.find((e) => e.step === 'remove-standby-config')?.outcome).toBe('done');
      timings.promoteRtoMs = r.rtoMs!;
      const uid = (await postgresql('us', 'acid-zsrc')).metadata.uid;
      const backups = await listCompleteBackups(usBacking.cfg.s3, `s3://dr-us-backing/spilo/acid-zsrc/${uid}/wal/15`);
      expect(backups.map((b) => b.name)).toContain(r.backup!.backupName);
    }, { sitesFile });
    timings.promoteMs = Date.now() - t0;
    expect((await postgresql('us', 'acid-zsrc')).spec.standby ?? null).toBeNull();
    expect(await patroniRole(usBacking, 'acid-zsrc')).toBe('primary');
    await usBacking.withLeaderSql('acid-zsrc', (c) => c.query('INSERT INTO public.orders VALUES (501)'));
    // The old primary stays fenced: its Postgres refuses connections.
    await expect(euBacking.withLeaderSql('acid-zsrc', (c) => c.query('SELECT 1'))).rejects.toThrow();
    operator.spec.skipStandbyPatch = false;
  });
  it('a worker whose Role lacks a verb fails clearly, naming what the Role must allow', async () => {
    const role = `/apis/rbac.authorization.k8s.io/v1/namespaces/us/roles/dr-runbooks-worker`;
    const before = (await admin('GET', role)).body as { rules: Array<{ resources: string[] }> };
    const without = before.rules.filter((r) => !r.resources.includes('pods/exec'));
    expect((await kubeRequest(kube.admin, 'PATCH', role, { body: { rules: without } })).status).toBe(200);
    // New writes: the last backup no longer covers the current LSN, so force-backup must run the script (exec).
    const lsn = await usBacking.withLeaderSql('acid-zsrc', async (c) => {
      await c.query('INSERT INTO public.orders VALUES (502)');
      return (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
    });
    try {
      await withRunbookWorkers(async (h) => {
        const handle = await startRunbook(h.client, {
          workflowType: 'forceBackup', runbook: RUNBOOK_NAMES.forceBackup, cluster: STANDBY, taskQueue: h.taskQueue,
          input: { cluster: STANDBY, notBeforeLsn: lsn },
        });
        const err = await failureOf(handle);
        expect(err.type).toBe('PreconditionFailedError');
        expect(err.message).toMatch(/pods\/exec/);
        expect(err.message).toMatch(/worker-rbac\.yaml/);
        z.regions.log(`refused as: ${err.message}`);
      }, { sitesFile });
    } finally {
      await kubeRequest(kube.admin, 'PATCH', role, { body: { rules: before.rules } });
    }
  });
  it('refuses a target name the operator cannot have before anything changes', async () => {
    const secretsBefore = ((await admin('GET', '/api/v1/namespaces/us/secrets')).body as { items: unknown[] }).items.length;
    await withRunbookWorkers(async (h) => {
      for (const [target, why] of [['us/orders', /must start with its team id and a dash/], [`us/acid-${'x'.repeat(50)}`, /the operator allows at most 53/]] as const) {
        const handle = await startRunbook(h.client, {
          workflowType: 'provisionStandby', runbook: RUNBOOK_NAMES.provisionStandby, cluster: target, taskQueue: h.taskQueue,
          input: { source: SOURCE, target, method: 'both' },
        });
        const err = await failureOf(handle);
        expect(err.type).toBe('BadInputError');
        expect(err.message).toMatch(why);
      }
    }, { sitesFile });
    const names = ((await admin('GET', '/apis/acid.zalan.do/v1/namespaces/us/postgresqls')).body as { items: PostgresqlObject[] }).items.map((p) => p.metadata.name);
    expect(names).toEqual(['acid-zsrc']);
    expect(((await admin('GET', '/api/v1/namespaces/us/secrets')).body as { items: unknown[] }).items.length).toBe(secretsBefore);
  });
});
