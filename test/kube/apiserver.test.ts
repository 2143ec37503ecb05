// What the real Kubernetes API server (the project-built kube-apiserver v1.34.4 on Debian's etcd) does with the
// Zalando operator's postgresql CRD and with the worker's least-privilege Role (deploy/kubernetes/worker-rbac.yaml,
// rendered for the example clusters acid-orders and acid-billing; test/kube/worker-rbac.test.ts covers the names):
// the facts the `zalando` site driver relies on, asserted against the server itself rather than assumed.
// Independent of the suite's global setup (no Temporal, no sandbox regions): its own folder and ports 31000-31099.
import { rmSync } from 'node:fs';
import { privatePort } from '../helpers/private-regions';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addWorkerIdentity, credentialsFor, ensureNamespace, kubeRequest, POSTGRESQL_CRD_FILE, readYamlDocuments,
  startKubeDevServer, stopKubeDevServer, WORKER_RBAC_FILE, type KubeCredentials, type KubeDevServer, type KubeObject,
} from '../../scripts/lib/kube-dev-server';
import { EXAMPLE_SITES_MANIFEST, renderWorkerRbac } from '../../scripts/lib/worker-rbac';
import type { ZalandoSiteConfig } from '../../activities/sites/sites-file';

/** Site eu of the example sites file (deploy/kubernetes/regions/eu/worker.yaml), the one worker-rbac.yaml is rendered from. */
function exampleSite(): ZalandoSiteConfig & { name: string } {
  const configMap = readYamlDocuments(EXAMPLE_SITES_MANIFEST).find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
  return { ...(JSON.parse(configMap.data['sites.json']).sites.eu as ZalandoSiteConfig), name: 'eu' };
}

const DIR = join(tmpdir(), 'dr-kube-apiserver-test');
const PORTS = { etcdClientPort: privatePort(31079), etcdPeerPort: privatePort(31080), apiPort: privatePort(31443) };
/** Where the stand-in "Patroni" of the pods/proxy test listens. */
const POD_HTTP_PORT = privatePort(31010);
const NS = 'postgres';
const OTHER_NS = 'elsewhere';
const SERVICE_ACCOUNT = 'dr-runbooks-worker';

const postgresqls = (ns = NS) => `/apis/acid.zalan.do/v1/namespaces/${ns}/postgresqls`;
const secrets = (ns = NS) => `/api/v1/namespaces/${ns}/secrets`;
const pods = (ns = NS) => `/api/v1/namespaces/${ns}/pods`;

function postgresql(name: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'acid.zalan.do/v1',
    kind: 'postgresql',
    metadata: { name },
    spec: { teamId: 'acid', numberOfInstances: 1, postgresql: { version: '15' }, volume: { size: '1Gi' }, ...spec },
  };
}

/** The fields a 422 names, from its details.causes (the message alone may say `<nil>` for a schema-level rule). */
const causeFields = (body: { details?: { causes?: Array<{ field?: string }> } }) => (body.details?.causes ?? []).map((c) => c.field);

let server: KubeDevServer;
let admin: KubeCredentials;
let worker: KubeCredentials;
let workerUser: string;

beforeAll(async () => {
  // A killed earlier run may have left its servers up: stop them before wiping their folder.
  await stopKubeDevServer(DIR).catch(() => undefined);
  rmSync(DIR, { recursive: true, force: true });
  const t0 = Date.now();
  server = await startKubeDevServer({ dir: DIR, ...PORTS });
  process.stdout.write(`[kube] etcd + kube-apiserver ready, postgresql CRD established in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  admin = server.admin;
  await ensureNamespace(server, OTHER_NS);
  // The example Role, with the stand-in Patroni's port where Spilo's 8008 would be: pods/proxy names `<pod>:<port>`.
  const rbac = renderWorkerRbac(exampleSite(), { patroniPorts: [POD_HTTP_PORT] }) as KubeObject[];
  const identity = await addWorkerIdentity(server, { namespace: NS, serviceAccount: SERVICE_ACCOUNT, rbac });
  worker = credentialsFor(server.kubeconfig, identity.context);
  workerUser = identity.username;
}, 120_000);

afterAll(async () => {
  await stopKubeDevServer(DIR);
  rmSync(DIR, { recursive: true, force: true });
});

describe('the harness', () => {
  it('starting again reuses the running server, its admin token and the worker context in the kubeconfig', async () => {
    const again = await startKubeDevServer({ dir: DIR, ...PORTS });
    expect(again.started).toBe(false);
    expect(again.admin.token).toBe(admin.token);
    expect(credentialsFor(again.kubeconfig, `dr-worker@${NS}`).token).toBe(worker.token);
    expect((await kubeRequest(again.admin, 'GET', '/version')).body.gitVersion).toBe('v1.34.4');
  });
});

describe('the postgresql CRD refuses what the operator could not run (422, naming the field)', () => {
  it('spec.standby with both s3_wal_path and gs_wal_path', async () => {
    const r = await kubeRequest(admin, 'POST', postgresqls(), {
      body: postgresql('acid-both-paths', { standby: { s3_wal_path: 's3://b/spilo/x/wal/15', gs_wal_path: 'gs://b/x' } }),
    });
    expect(r.status).toBe(422);
    // The schema's `not: {required: [s3_wal_path, gs_wal_path]}`; its cause has no field, the message names it.
    expect(r.body.message).toContain('"spec.standby" must not validate the schema (not)');
  });

  it('spec.standby with none of s3_wal_path, gs_wal_path, standby_host', async () => {
    const r = await kubeRequest(admin, 'POST', postgresqls(), { body: postgresql('acid-no-source', { standby: { standby_port: '5432' } }) });
    expect(r.status).toBe(422);
    expect(r.body.message).toContain('"spec.standby" must validate at least one schema (anyOf)');
    expect(causeFields(r.body)).toContain('spec.standby.s3_wal_path');
  });

  it('spec.postgresql.version outside the enum', async () => {
    const r = await kubeRequest(admin, 'POST', postgresqls(), { body: postgresql('acid-pg9', { postgresql: { version: '9' } }) });
    expect(r.status).toBe(422);
    expect(r.body.message).toContain('spec.postgresql.version: Unsupported value: "9"');
  });

  it('spec.standby.standby_port as a number (the CRD wants a string)', async () => {
    const r = await kubeRequest(admin, 'POST', postgresqls(), {
      body: postgresql('acid-port-number', { standby: { standby_host: 'acid-demo.postgres.svc', standby_port: 5432 } }),
    });
    expect(r.status).toBe(422);
    expect(causeFields(r.body)).toEqual(['spec.standby.standby_port']);
  });

  const crdSchema = readYamlDocuments(POSTGRESQL_CRD_FILE)[0] as unknown as {
    spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: { required: string[] } } } } }> };
  };
  const requiredSpecFields = crdSchema.spec.versions[0].schema.openAPIV3Schema.properties.spec.required;

  it('the CRD requires exactly teamId, numberOfInstances, postgresql and volume in spec', () => {
    expect([...requiredSpecFields].sort()).toEqual(['numberOfInstances', 'postgresql', 'teamId', 'volume']);
  });

  it.each(requiredSpecFields)('a manifest without spec.%s', async (field) => {
    const manifest = postgresql(`acid-without-${field.toLowerCase()}`);
    delete (manifest.spec as Record<string, unknown>)[field];
    const r = await kubeRequest(admin, 'POST', postgresqls(), { body: manifest });
    expect(r.status).toBe(422);
    expect(r.body.message).toContain(`spec.${field}: Required value`);
  });

  // The API server validates a custom resource's name as a DNS-1123 subdomain: at most 253 characters. The
  // operator's own limit for cluster names (53, so that derived Service and Pod names fit 63) is NOT enforced here:
  // the driver must check it before it creates anything.
  it('metadata.name longer than 253 characters (253 is accepted)', async () => {
    const longest = await kubeRequest(admin, 'POST', postgresqls(), { body: postgresql('a'.repeat(253)) });
    expect(longest.status).toBe(201);
    const tooLong = await kubeRequest(admin, 'POST', postgresqls(), { body: postgresql('a'.repeat(254)) });
    expect(tooLong.status).toBe(422);
    expect(causeFields(tooLong.body)).toEqual(['metadata.name']);
    expect(tooLong.body.message).toContain('must be no more than 253 characters');
  });

  it('accepts a standby from an S3 archive plus streaming (standby_port as a string): 201', async () => {
    const standby = { s3_wal_path: 's3://dr-eu/spilo/acid-demo/0f1e2d3c/wal/15', standby_host: 'acid-demo.postgres.svc', standby_port: '5432' };
    const r = await kubeRequest(admin, 'POST', postgresqls(), { body: postgresql('acid-demo-standby', { standby }) });
    expect(r.status).toBe(201);
    expect(r.body.spec.standby).toEqual(standby);
  });
});

describe('the status subresource', () => {
  const path = `${postgresqls()}/acid-status`;

  beforeAll(async () => {
    expect((await kubeRequest(admin, 'POST', postgresqls(), { body: postgresql('acid-status') })).status).toBe(201);
  });

  it('a PATCH of the main resource leaves .status alone; a PATCH of /status sets it and not the spec', async () => {
    const main = await kubeRequest(admin, 'PATCH', path, { body: { status: { PostgresClusterStatus: 'Running' } } });
    expect(main.status).toBe(200);
    expect(main.body.status).toBeUndefined();

    const status = await kubeRequest(admin, 'PATCH', `${path}/status`, {
      body: { spec: { numberOfInstances: 5 }, status: { PostgresClusterStatus: 'Running' } },
    });
    expect(status.status).toBe(200);
    expect(status.body.status).toEqual({ PostgresClusterStatus: 'Running' });
    expect(status.body.spec.numberOfInstances).toBe(1);
  });

  it('a spec change bumps metadata.generation; a status change does not', async () => {
    const before = (await kubeRequest(admin, 'GET', path)).body.metadata.generation as number;
    const status = await kubeRequest(admin, 'PATCH', `${path}/status`, { body: { status: { PostgresClusterStatus: 'Updating' } } });
    expect(status.body.metadata.generation).toBe(before);
    const spec = await kubeRequest(admin, 'PATCH', path, { body: { spec: { numberOfInstances: 2 } } });
    expect(spec.body.metadata.generation).toBe(before + 1);
  });
});

describe('optimistic concurrency', () => {
  const path = `${postgresqls()}/acid-concurrency`;

  it('an update (PUT) with a stale resourceVersion gets 409 Conflict', async () => {
    expect((await kubeRequest(admin, 'POST', postgresqls(), { body: postgresql('acid-concurrency') })).status).toBe(201);
    const read = (await kubeRequest(admin, 'GET', path)).body;
    expect((await kubeRequest(admin, 'PATCH', path, { body: { spec: { numberOfInstances: 2 } } })).status).toBe(200);

    const stale = { ...read, spec: { ...read.spec, numberOfInstances: 0 } };
    const r = await kubeRequest(admin, 'PUT', path, { body: stale });
    expect(r.status).toBe(409);
    expect(r.body.reason).toBe('Conflict');
    expect(r.body.message).toContain('the object has been modified');
  });

  it('a merge patch carrying a stale metadata.resourceVersion gets 409 too (a patch can be a compare-and-swap)', async () => {
    const current = (await kubeRequest(admin, 'GET', path)).body;
    expect((await kubeRequest(admin, 'PATCH', path, { body: { spec: { numberOfInstances: 3 } } })).status).toBe(200);
    const r = await kubeRequest(admin, 'PATCH', path, {
      body: { metadata: { resourceVersion: current.metadata.resourceVersion }, spec: { numberOfInstances: 0 } },
    });
    expect(r.status).toBe(409);
    expect((await kubeRequest(admin, 'GET', path)).body.spec.numberOfInstances).toBe(3);
  });
});

describe('RBAC: the worker, with its real ServiceAccount token, can do exactly what worker-rbac.yaml grants', () => {
  /**
   * What the zalando driver needs (kept in step with deploy/kubernetes/worker-rbac.yaml by the first test), and the
   * name each rule is asked with: empty where RBAC cannot limit the verb by name (create, list).
   */
  const GRANTED: Array<{ group: string; resource: string; verbs: string[]; name: string }> = [
    { group: 'acid.zalan.do', resource: 'postgresqls', verbs: ['get', 'list'], name: '' },
    { group: 'acid.zalan.do', resource: 'postgresqls', verbs: ['create'], name: '' },
    { group: 'acid.zalan.do', resource: 'postgresqls', verbs: ['patch', 'delete'], name: 'acid-orders' },
    { group: '', resource: 'secrets', verbs: ['get', 'patch'], name: 'standby.acid-billing.credentials.postgresql.acid.zalan.do' },
    { group: '', resource: 'secrets', verbs: ['get'], name: 'postgres-pod-s3' },
    { group: '', resource: 'secrets', verbs: ['create'], name: '' },
    { group: '', resource: 'pods', verbs: ['list'], name: '' },
    { group: '', resource: 'pods/proxy', verbs: ['get', 'create', 'patch'], name: `acid-billing-0:${POD_HTTP_PORT}` },
    { group: '', resource: 'pods/exec', verbs: ['get', 'create'], name: 'acid-billing-2' },
    { group: '', resource: 'pods/log', verbs: ['get'], name: 'acid-orders-1' },
    { group: '', resource: 'services', verbs: ['get'], name: 'acid-billing' },
    { group: 'apps', resource: 'statefulsets', verbs: ['get'], name: 'acid-billing' },
  ];
  const DENIED: Array<{ namespace: string; group: string; resource: string; verb: string; name?: string }> = [
    { namespace: NS, group: '', resource: 'secrets', verb: 'delete', name: 'standby.acid-billing.credentials.postgresql.acid.zalan.do' },
    { namespace: NS, group: '', resource: 'secrets', verb: 'list' },
    { namespace: NS, group: '', resource: 'secrets', verb: 'get', name: 'standby.acid-unlisted.credentials.postgresql.acid.zalan.do' },
    { namespace: OTHER_NS, group: '', resource: 'secrets', verb: 'get', name: 'standby.acid-billing.credentials.postgresql.acid.zalan.do' },
    { namespace: OTHER_NS, group: 'acid.zalan.do', resource: 'postgresqls', verb: 'get' },
    { namespace: NS, group: 'acid.zalan.do', resource: 'postgresqls', verb: 'watch' },
    { namespace: NS, group: 'acid.zalan.do', resource: 'postgresqls', verb: 'patch', name: 'acid-unlisted' },
    { namespace: NS, group: 'acid.zalan.do', resource: 'postgresqls', verb: 'deletecollection' },
    { namespace: NS, group: 'acid.zalan.do', resource: 'postgresqls', verb: 'update', name: 'acid-orders' },
    { namespace: NS, group: 'acid.zalan.do', resource: 'postgresqls/status', verb: 'patch', name: 'acid-orders' },
    { namespace: NS, group: '', resource: 'pods', verb: 'create' },
    { namespace: NS, group: '', resource: 'pods', verb: 'delete', name: 'acid-orders-0' },
    { namespace: NS, group: '', resource: 'pods/proxy', verb: 'delete', name: `acid-billing-0:${POD_HTTP_PORT}` },
    { namespace: NS, group: '', resource: 'pods/exec', verb: 'create', name: 'acid-unlisted-0' },
    { namespace: NS, group: '', resource: 'pods/exec', verb: 'create', name: 'acid-orders-2' },
    { namespace: NS, group: '', resource: 'configmaps', verb: 'get' },
    { namespace: NS, group: 'apps', resource: 'statefulsets', verb: 'patch', name: 'acid-billing' },
  ];

  async function workerMay(a: { namespace: string; group: string; resource: string; verb: string; name?: string }): Promise<boolean> {
    const [resource, subresource] = a.resource.split('/');
    const r = await kubeRequest(worker, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { namespace: a.namespace, verb: a.verb, group: a.group, resource, subresource, name: a.name || undefined } },
      },
    });
    expect(r.status).toBe(201);
    return r.body.status.allowed === true;
  }

  it('the Role in worker-rbac.yaml has exactly these rules, each naming what it grants where RBAC can', () => {
    const role = readYamlDocuments(WORKER_RBAC_FILE).find((o) => o.kind === 'Role') as unknown as {
      rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }>;
    };
    expect(role.rules.map((r) => ({ group: r.apiGroups.join(), resource: r.resources.join(), verbs: r.verbs })))
      .toEqual(GRANTED.map(({ name: _name, ...g }) => g));
    // Without names only what RBAC cannot limit by name (create, list) and the get that comes with a list anyway.
    expect(role.rules.filter((r) => !r.resourceNames).map((r) => `${r.verbs.join('+')} ${r.resources.join()}`))
      .toEqual(['get+list postgresqls', 'create postgresqls', 'create secrets', 'list pods']);
  });

  it('the worker is the ServiceAccount, authenticated by its TokenRequest token', async () => {
    const r = await kubeRequest(worker, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    expect(r.status).toBe(201);
    expect(r.body.status.userInfo.username).toBe(`system:serviceaccount:${NS}:${SERVICE_ACCOUNT}`);
    expect(r.body.status.userInfo.groups).toEqual(expect.arrayContaining(['system:serviceaccounts', `system:serviceaccounts:${NS}`]));
  });

  const withGroupName = <T extends { group: string }>(a: T) => ({ ...a, groupName: a.group || 'core' });

  it.each(GRANTED.flatMap((g) => g.verbs.map((verb) => withGroupName({ ...g, verb }))))(
    'SelfSubjectAccessReview allows $verb $resource $name ($groupName)',
    async (a) => {
      expect(await workerMay({ namespace: NS, ...a })).toBe(true);
    },
  );

  it.each(DENIED.map(withGroupName))('SelfSubjectAccessReview refuses $verb $resource $name ($groupName) in namespace $namespace', async (a) => {
    expect(await workerMay(a)).toBe(false);
  });

  it('postgresqls: create, get, list, patch, delete really work; watch (unused) is refused', async () => {
    const path = `${postgresqls()}/acid-orders`;
    expect((await kubeRequest(worker, 'POST', postgresqls(), { body: postgresql('acid-orders') })).status).toBe(201);
    expect((await kubeRequest(worker, 'GET', path)).body.spec.teamId).toBe('acid');
    const list = await kubeRequest(worker, 'GET', postgresqls());
    expect(list.status).toBe(200);
    expect(list.body.items.map((i: { metadata: { name: string } }) => i.metadata.name)).toContain('acid-orders');
    const watch = await kubeRequest(worker, 'GET', `${postgresqls()}?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3Dacid-orders`);
    expect(watch.status).toBe(403);
    const fenced = await kubeRequest(worker, 'PATCH', path, { body: { spec: { numberOfInstances: 0 } } });
    expect(fenced.status).toBe(200);
    expect(fenced.body.spec.numberOfInstances).toBe(0);
    expect((await kubeRequest(worker, 'DELETE', path)).status).toBe(200);
    expect((await kubeRequest(worker, 'GET', path)).status).toBe(404);
  });

  it('secrets: create, get, patch work on a named Secret; list and delete are refused with 403 naming the verb and resource', async () => {
    const name = 'standby.acid-billing.credentials.postgresql.acid.zalan.do';
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name }, type: 'Opaque', stringData: { username: 'standby', password: 'x' } };
    expect((await kubeRequest(worker, 'POST', secrets(), { body: secret })).status).toBe(201);
    expect((await kubeRequest(worker, 'GET', `${secrets()}/${name}`)).body.data.username).toBe(Buffer.from('standby').toString('base64'));
    expect((await kubeRequest(worker, 'GET', secrets())).status).toBe(403);
    expect((await kubeRequest(worker, 'PATCH', `${secrets()}/${name}`, { body: { stringData: { password: 'y' } } })).status).toBe(200);

    const del = await kubeRequest(worker, 'DELETE', `${secrets()}/${name}`);
    expect(del.status).toBe(403);
    expect(del.body.reason).toBe('Forbidden');
    expect(del.body.message).toContain(`User "${workerUser}" cannot delete resource "secrets" in API group "" in the namespace "${NS}"`);
    expect((await kubeRequest(admin, 'GET', `${secrets()}/${name}`)).status).toBe(200);

    expect((await kubeRequest(worker, 'GET', secrets(OTHER_NS))).status).toBe(403);
  });

  describe('pods, services, statefulsets (created by admin, as the operator would)', () => {
    const podName = 'acid-billing-0';
    let patroni: Server | undefined;
    let patroniRequests: IncomingMessage[] = [];
    /** A non-loopback address of this machine: the API server proxies only to global-unicast pod IPs. */
    const podIp = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

    beforeAll(async () => {
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: podName, labels: { 'cluster-name': 'acid-billing', 'spilo-role': 'standby_leader' } },
        spec: { containers: [{ name: 'postgres', image: 'ghcr.io/zalando/spilo-17:4.0-p3', ports: [{ containerPort: 8008, name: 'patroni' }] }] },
      };
      expect((await kubeRequest(admin, 'POST', pods(), { body: pod })).status).toBe(201);
      const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'acid-billing' }, spec: { ports: [{ port: 5432, name: 'postgresql' }] } };
      expect((await kubeRequest(admin, 'POST', `/api/v1/namespaces/${NS}/services`, { body: service })).status).toBe(201);
      const labels = { 'cluster-name': 'acid-billing' };
      const statefulSet = {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'acid-billing' },
        spec: { serviceName: 'acid-billing', replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: pod.spec } },
      };
      expect((await kubeRequest(admin, 'POST', `/apis/apps/v1/namespaces/${NS}/statefulsets`, { body: statefulSet })).status).toBe(201);
    });

    afterAll(async () => {
      if (patroni) await new Promise((r) => patroni!.close(r));
    });

    it('the worker lists pods (a get by name, unused, is refused), gets the service and the statefulset', async () => {
      expect((await kubeRequest(worker, 'GET', `${pods()}/${podName}`)).status).toBe(403);
      const list = await kubeRequest(worker, 'GET', `${pods()}?labelSelector=cluster-name%3Dacid-billing`);
      expect(list.body.items).toHaveLength(1);
      const service = await kubeRequest(worker, 'GET', `/api/v1/namespaces/${NS}/services/acid-billing`);
      expect(service.status).toBe(200);
      expect(service.body.spec.clusterIP).toMatch(/^10\.96\./);
      const sts = await kubeRequest(worker, 'GET', `/apis/apps/v1/namespaces/${NS}/statefulsets/acid-billing`);
      expect(sts.status).toBe(200);
      expect(sts.body.spec.replicas).toBe(1);
    });

    it('pods/proxy refuses a loopback pod IP (400 "address not allowed"): a stand-in pod needs a routable IP', async () => {
      await setPodIp('127.0.0.1');
      const r = await kubeRequest(worker, 'GET', `${pods()}/${podName}:${POD_HTTP_PORT}/proxy/cluster`);
      expect(r.status).toBe(400);
      expect(r.body.message).toBe('address not allowed');
    });

    (podIp ? it : it.skip)('pods/proxy: GET, POST and PATCH reach the pod through the API server, without the worker token', async () => {
      patroniRequests = [];
      patroni = createServer((req, res) => {
        patroniRequests.push(req);
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify({ method: req.method, url: req.url, body }));
        });
      });
      await new Promise<void>((r) => patroni!.listen(POD_HTTP_PORT, podIp, r));
      await setPodIp(podIp!);
      const proxy = `${pods()}/${podName}:${POD_HTTP_PORT}/proxy`;

      const get = await kubeRequest(worker, 'GET', `${proxy}/cluster`);
      expect(get.status).toBe(200);
      expect(get.body).toEqual({ method: 'GET', url: '/cluster', body: '' });
      const post = await kubeRequest(worker, 'POST', `${proxy}/reinitialize`, { body: { force: true } });
      expect(post.body).toEqual({ method: 'POST', url: '/reinitialize', body: '{"force":true}' });
      const patch = await kubeRequest(worker, 'PATCH', `${proxy}/config`, { body: { pause: true } });
      expect(patch.body).toEqual({ method: 'PATCH', url: '/config', body: '{"pause":true}' });
      expect((await kubeRequest(worker, 'DELETE', `${proxy}/switchover`)).status).toBe(403);

      expect(patroniRequests).toHaveLength(3);
      for (const req of patroniRequests) expect(req.headers.authorization).toBeUndefined();
    });

    // No kubelet here, so an exec that passes authorization ends in "does not have a host assigned" (400). On
    // v1.34 a WebSocket exec (the worker's client) is a GET, authorized as verb `get`; a POST (SPDY) as `create`.
    it('pods/exec: both a POST (SPDY) and a WebSocket (GET) exec pass authorization', async () => {
      const exec = `${pods()}/${podName}/exec?container=postgres&command=pg_controldata&stdout=true&stderr=true`;
      const spdy = await kubeRequest(worker, 'POST', exec);
      expect(spdy.status).toBe(400);
      expect(spdy.body.message).toBe(`pod ${podName} does not have a host assigned`);

      const websocket = await kubeRequest(worker, 'GET', exec, {
        headers: {
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Protocol': 'v5.channel.k8s.io',
        },
      });
      expect(websocket.status).toBe(400);
      expect(websocket.body.message).toBe(`pod ${podName} does not have a host assigned`);
    });

    async function setPodIp(ip: string): Promise<void> {
      // A JSON merge patch replaces podIPs whole (a strategic merge would add to it, keyed by ip).
      const r = await kubeRequest(admin, 'PATCH', `${pods()}/${podName}/status`, { body: { status: { podIP: ip, podIPs: [{ ip }] } } });
      expect(r.status).toBe(200);
    }
  });
});
