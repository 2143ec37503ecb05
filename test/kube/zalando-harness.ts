// Two `zalando` sites (namespaces eu and us) on one REAL kube-apiserver, each backed by a private sandbox region
// through the stand-in operator and kubelet; the worker authenticates with a real ServiceAccount token bound to
// the Role scripts/render-worker-rbac renders from the harness's sites file: it names the clusters a test uses, and
// nothing else, so a runbook that reaches past them is refused by the API server; and its admission policy, which
// lets the worker create only the Secrets and postgresql objects of those clusters. On stop, every Secret value the harness saw is handed to the suite's
// secrets audit (test/audit/no-secrets.test.ts), so no run through the zalando driver may leak one either.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import {
  addWorkerIdentity, applyWorkerAdmissionPolicy, credentialsFor, kubeRequest, startKubeDevServer, stopKubeDevServer, type KubeDevServer, type KubeObject,
} from '../../scripts/lib/kube-dev-server';
import type { LocalSiteDriver } from '../../activities/sites/local-driver';
import type { ZalandoClusterGrant } from '../../activities/sites/sites-file';
import { renderWorkerAdmissionPolicy, renderWorkerRbac } from '../../scripts/lib/worker-rbac';
import { privatePort, privateRegions, sql, waitFor } from '../helpers/private-regions';
import { withRunbookWorkers } from '../helpers/runbook-workers';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { RUNBOOK_NAMES } from '../../workflows/contracts/runbooks';
import type { PostgresqlObject } from '../../activities/sites/zalando-driver';
import { AUDIT_SECRETS_DIR, testLayout } from '../helpers/test-env';
import { StandInOperator } from './stand-in-operator';
import { SANDBOX_APPROVALS, sandboxIdentityConfig } from '../../scripts/lib/sandbox/layout';

export const HOST_IP = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

export interface ZalandoHarness {
  regions: ReturnType<typeof privateRegions>;
  euBacking: LocalSiteDriver;
  usBacking: LocalSiteDriver;
  kube: KubeDevServer;
  operator: StandInOperator;
  sitesFile: string;
  admin(method: string, path: string, body?: unknown): ReturnType<typeof kubeRequest>;
  stop(timings: Record<string, number>): Promise<void>;
}

/**
 * Ports base .. base+99: S3 base, regions base+10 / base+50, etcd base+4/+5, API server base+6, kubelet base+7.
 * `clusters`: the clusters (at both sites: a standby keeps its source's name) the worker's Role names.
 */
export async function startZalandoHarness(label: string, base: number, clusters: Record<string, ZalandoClusterGrant>): Promise<ZalandoHarness> {
  if (!HOST_IP) throw new Error('no non-loopback IPv4 address: pods/proxy refuses loopback pod IPs');
  const regions = privateRegions(label, base);
  const euBacking = regions.driverFor('eu-backing', base + 10);
  const usBacking = regions.driverFor('us-backing', base + 50);
  await regions.start([euBacking, usBacking]);
  const kube = await startKubeDevServer({ dir: join(regions.tmp, 'kube'), etcdClientPort: privatePort(base + 4), etcdPeerPort: privatePort(base + 5), apiPort: privatePort(base + 6) });
  const admin = (method: string, path: string, body?: unknown) => kubeRequest(kube.admin, method, path, { body });
  const contexts: Record<string, string> = {};
  const backingOf: Record<string, LocalSiteDriver> = { eu: euBacking, us: usBacking };
  for (const ns of ['eu', 'us']) {
    // Each stand-in member's Patroni listens on its own port of the backing region (Spilo's all on 8008).
    const { first, last } = backingOf[ns].cfg.memberPorts;
    const site = { name: ns, namespace: ns, s3CredentialsSecret: { name: 'dr-s3' }, clusters };
    const rbac = renderWorkerRbac(site, { patroniPorts: Array.from({ length: last - first + 1 }, (_, i) => first + i) }) as KubeObject[];
    contexts[ns] = (await addWorkerIdentity(kube, { namespace: ns, serviceAccount: 'dr-runbooks-worker', rbac })).context;
    await applyWorkerAdmissionPolicy(kube.admin, credentialsFor(kube.kubeconfig, contexts[ns]), ns, renderWorkerAdmissionPolicy(site) as KubeObject[]);
    // The S3 keys Spilo pods of this region use, as the site's admin would have stored them.
    await admin('POST', `/api/v1/namespaces/${ns}/secrets`, {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'dr-s3' },
      stringData: { AWS_ACCESS_KEY_ID: 'sandboxkey', AWS_SECRET_ACCESS_KEY: 'sandboxsecret123' },
    });
  }
  const site = (ns: string, backing: LocalSiteDriver) => ({
    kind: 'zalando', kubeconfig: kube.kubeconfig, context: contexts[ns], namespace: ns, s3: backing.cfg.s3, s3CredentialsSecret: { name: 'dr-s3' }, clusters,
  });
  const sitesFile = join(regions.tmp, 'sites.json');
  writeFileSync(sitesFile, JSON.stringify({
    sites: { eu: site('eu', euBacking), us: site('us', usBacking) }, identity: sandboxIdentityConfig(testLayout()), approvals: SANDBOX_APPROVALS,
  }, null, 2));
  const operator = new StandInOperator({
    admin: kube.admin, dir: join(regions.tmp, 'operator'), kubeletPort: privatePort(base + 7),
    regions: { eu: { ...euBacking.cfg, exposeOn: HOST_IP }, us: { ...usBacking.cfg, exposeOn: HOST_IP } },
  });
  await operator.start();

  async function secretValues(): Promise<string[]> {
    const values = new Set<string>();
    for (const ns of ['eu', 'us']) {
      const list = (await admin('GET', `/api/v1/namespaces/${ns}/secrets`)).body as { items?: Array<{ data?: Record<string, string> }> };
      for (const s of list.items ?? []) {
        for (const [k, v] of Object.entries(s.data ?? {})) if (k !== 'username') values.add(Buffer.from(v, 'base64').toString('utf8'));
      }
    }
    return [...values].filter((v) => v.length >= 8);
  }

  return {
    regions, euBacking, usBacking, kube, operator, sitesFile, admin,
    async stop(timings) {
      regions.log(`timings (ms): ${JSON.stringify(timings)}; operator errors: ${JSON.stringify(operator.errors)}`);
      mkdirSync(AUDIT_SECRETS_DIR(), { recursive: true, mode: 0o700 });
      writeFileSync(join(AUDIT_SECRETS_DIR(), `${label}.json`), JSON.stringify(await secretValues().catch(() => [])), { mode: 0o600 });
      await operator.stop();
      await stopKubeDevServer(join(regions.tmp, 'kube')).catch(() => undefined);
      await regions.stop([euBacking, usBacking]);
      rmSync(regions.tmp, { recursive: true, force: true });
    },
  };
}

/**
 * `eu/<name>` created through the operator (`instances` pods) with `seedSql` run on it and a proven backup
 * (force-backup), and `us/<name>` provisioned as its standby by archive and streaming (provision-standby).
 */
export async function createProtectedPair(z: ZalandoHarness, name: string, seedSql: string, instances = 1): Promise<void> {
  const postgresql = async () => (await z.admin('GET', `/apis/acid.zalan.do/v1/namespaces/eu/postgresqls/${name}`)).body as PostgresqlObject;
  await z.admin('POST', '/apis/acid.zalan.do/v1/namespaces/eu/postgresqls', {
    apiVersion: 'acid.zalan.do/v1', kind: 'postgresql', metadata: { name },
    spec: { teamId: name.split('-')[0], numberOfInstances: instances, postgresql: { version: '15' }, volume: { size: '1Gi' } },
  });
  await waitFor(`eu/${name} Running`, 180_000, async () => ((await postgresql()).status?.PostgresClusterStatus === 'Running' ? true : null));
  await sql(z.euBacking, name, seedSql);
  await withRunbookWorkers(async (h) => {
    const run = (workflowType: string, runbook: string, cluster: string, input: unknown) =>
      startRunbook(h.client, { workflowType, runbook, cluster, taskQueue: h.taskQueue, input });
    await (await run('forceBackup', RUNBOOK_NAMES.forceBackup, `eu/${name}`, { cluster: `eu/${name}` })).result();
    await (await run('provisionStandby', RUNBOOK_NAMES.provisionStandby, `us/${name}`, {
      source: `eu/${name}`, target: `us/${name}`, method: 'both', limits: { pollIntervalSeconds: 1 },
    })).result();
  }, { sitesFile: z.sitesFile });
}
