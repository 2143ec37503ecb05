// The worker's Role as scripts/render-worker-rbac renders it from a sites file, judged by the real kube-apiserver
// (v1.34.4, RBAC on): the worker, with its real ServiceAccount token, reaches the Secrets and member pods of the
// clusters its site lists and nothing else of the namespace: not another cluster's Secret, not an exec into
// another cluster's pod, never a delete of a Secret. Each is asked of the authorizer (SelfSubjectAccessReview)
// and tried as a real request. Own folder and private ports 31900-31999.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { credentialsSecretName } from '../../activities/sites/zalando-driver';
import { loadSites, type ZalandoSiteConfig } from '../../activities/sites/sites-file';
import {
  addWorkerIdentity, applyWorkerAdmissionPolicy, credentialsFor, kubeRequest, readYamlDocuments, startKubeDevServer, stopKubeDevServer, WORKER_RBAC_FILE,
  type KubeCredentials, type KubeObject,
} from '../../scripts/lib/kube-dev-server';
import {
  EXAMPLE_SITES_MANIFEST, exampleWorkerRbacYaml, renderWorkerAdmissionPolicy, renderWorkerRbac, workerRules,
} from '../../scripts/lib/worker-rbac';
import { REPO_ROOT } from '../helpers/test-env';
import { privatePort } from '../helpers/private-regions';

const DIR = join(tmpdir(), 'dr-kube-worker-rbac-test');
const PORTS = { etcdClientPort: privatePort(31979), etcdPeerPort: privatePort(31980), apiPort: privatePort(31943) };
/** Where the stand-in "Patroni" of acid-mine-0 listens (a real pod's would be 8008). */
const PATRONI_PORT = privatePort(31910);
const NS = 'rbac';
const MINE = 'acid-mine';
const OTHER = 'acid-other';
const SITE = {
  name: 'eu', kind: 'zalando' as const, namespace: NS, s3: { bucket: 'b', region: 'r', scopePrefix: 'spilo' },
  s3CredentialsSecret: { name: 'pod-s3' }, clusters: { [MINE]: { members: 2, users: ['app'] } },
};
const POD_IP = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
const secretPath = (name = '') => `/api/v1/namespaces/${NS}/secrets${name ? `/${name}` : ''}`;
const podPath = (name: string, sub = '') => `/api/v1/namespaces/${NS}/pods/${name}${sub}`;

let admin: KubeCredentials;
let worker: KubeCredentials;
let patroni: Server;

beforeAll(async () => {
  await stopKubeDevServer(DIR).catch(() => undefined);
  rmSync(DIR, { recursive: true, force: true });
  const server = await startKubeDevServer({ dir: DIR, ...PORTS });
  admin = server.admin;
  const rbac = renderWorkerRbac(SITE, { patroniPorts: [PATRONI_PORT] }) as KubeObject[];
  worker = credentialsFor(server.kubeconfig, (await addWorkerIdentity(server, { namespace: NS, serviceAccount: 'dr-runbooks-worker', rbac })).context);
  // What the operator would have made for two clusters: their users' Secrets and their member pods.
  for (const cluster of [MINE, OTHER]) {
    for (const user of ['postgres', 'standby', 'app']) {
      const name = credentialsSecretName(user, cluster);
      const r = await kubeRequest(admin, 'POST', secretPath(), { body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, labels: { 'cluster-name': cluster } }, stringData: { username: user, password: `${cluster}-${user}-pw` } } });
      expect(r.status).toBe(201);
    }
    for (const i of [0, 1, 2]) {
      const pod = {
        apiVersion: 'v1', kind: 'Pod', metadata: { name: `${cluster}-${i}`, labels: { application: 'spilo', 'cluster-name': cluster } },
        spec: { containers: [{ name: 'postgres', image: 'spilo', ports: [{ name: 'patroni', containerPort: PATRONI_PORT }] }] },
      };
      expect((await kubeRequest(admin, 'POST', `/api/v1/namespaces/${NS}/pods`, { body: pod })).status).toBe(201);
      const status = await kubeRequest(admin, 'PATCH', podPath(`${cluster}-${i}`, '/status'), { body: { status: { podIP: POD_IP, podIPs: [{ ip: POD_IP }] } } });
      expect(status.status).toBe(200);
    }
  }
  patroni = createServer((req, res) => res.end(JSON.stringify({ url: req.url })));
  await new Promise<void>((r) => patroni.listen(PATRONI_PORT, POD_IP, r));
}, 120_000);

afterAll(async () => {
  if (patroni) await new Promise((r) => patroni.close(r));
  await stopKubeDevServer(DIR);
  rmSync(DIR, { recursive: true, force: true });
});

type Ask = { verb: string; resource: string; name?: string; group?: string };

async function workerMay(a: Ask): Promise<boolean> {
  const [resource, subresource] = a.resource.split('/');
  const r = await kubeRequest(worker, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
    body: {
      apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { namespace: NS, verb: a.verb, group: a.group ?? '', resource, subresource, name: a.name } },
    },
  });
  expect(r.status).toBe(201);
  return r.body.status.allowed === true;
}

const PG = 'acid.zalan.do';
const ALLOWED: Ask[] = [
  ...['postgres', 'standby', 'app'].flatMap((u) => ['get', 'patch'].map((verb) => ({ verb, resource: 'secrets', name: credentialsSecretName(u, MINE) }))),
  { verb: 'get', resource: 'secrets', name: `${MINE}-standby-s3` },
  { verb: 'get', resource: 'secrets', name: 'pod-s3' },
  { verb: 'create', resource: 'secrets' },
  { verb: 'get', resource: 'pods/exec', name: `${MINE}-0` },
  { verb: 'create', resource: 'pods/exec', name: `${MINE}-1` },
  { verb: 'get', resource: 'pods/log', name: `${MINE}-1` },
  { verb: 'patch', resource: 'pods/proxy', name: `${MINE}-0:${PATRONI_PORT}` },
  { verb: 'list', resource: 'pods' },
  { verb: 'patch', resource: 'postgresqls', group: PG, name: MINE },
  { verb: 'delete', resource: 'postgresqls', group: PG, name: MINE },
  { verb: 'create', resource: 'postgresqls', group: PG },
  { verb: 'get', resource: 'services', name: MINE },
  { verb: 'get', resource: 'statefulsets', group: 'apps', name: MINE },
];
const REFUSED: Ask[] = [
  ...['postgres', 'standby', 'app'].map((u) => ({ verb: 'get', resource: 'secrets', name: credentialsSecretName(u, OTHER) })),
  { verb: 'get', resource: 'secrets', name: 'dr-runbooks-temporal' },
  { verb: 'list', resource: 'secrets' },
  { verb: 'patch', resource: 'secrets', name: 'pod-s3' },
  { verb: 'delete', resource: 'secrets', name: credentialsSecretName('postgres', MINE) },
  { verb: 'delete', resource: 'secrets', name: `${MINE}-standby-s3` },
  { verb: 'get', resource: 'pods/exec', name: `${OTHER}-0` },
  { verb: 'create', resource: 'pods/exec', name: `${OTHER}-0` },
  { verb: 'get', resource: 'pods/exec', name: `${MINE}-2` },
  { verb: 'get', resource: 'pods/proxy', name: `${OTHER}-0:${PATRONI_PORT}` },
  { verb: 'get', resource: 'pods/log', name: `${OTHER}-0` },
  { verb: 'get', resource: 'pods', name: `${OTHER}-0` },
  { verb: 'patch', resource: 'postgresqls', group: PG, name: OTHER },
  { verb: 'delete', resource: 'postgresqls', group: PG, name: OTHER },
  { verb: 'get', resource: 'services', name: OTHER },
];

describe('the rendered Role, asked of the authorizer (SelfSubjectAccessReview with the worker\'s token)', () => {
  const named = (asks: Ask[]) => asks.map((a) => ({ ...a, label: a.name ?? '(no name: namespace-wide)' }));
  it.each(named(ALLOWED))('allows $verb $resource $label', async (a) => {
    expect(await workerMay(a)).toBe(true);
  });
  it.each(named(REFUSED))('refuses $verb $resource $label', async (a) => {
    expect(await workerMay(a)).toBe(false);
  });
});

describe('the rendered Role, tried with real requests as the worker', () => {
  it('reads its own cluster\'s Secret; another cluster\'s Secret, a list of Secrets and a delete are 403', async () => {
    const own = await kubeRequest(worker, 'GET', secretPath(credentialsSecretName('app', MINE)));
    expect(own.status).toBe(200);
    for (const [method, path] of [
      ['GET', secretPath(credentialsSecretName('postgres', OTHER))],
      ['GET', secretPath()],
      ['DELETE', secretPath(credentialsSecretName('app', MINE))],
    ] as const) {
      const r = await kubeRequest(worker, method, path);
      expect({ method, path, status: r.status }).toEqual({ method, path, status: 403 });
    }
    expect((await kubeRequest(admin, 'GET', secretPath(credentialsSecretName('app', MINE)))).status).toBe(200);
  });

  it('exec passes authorization on its own member (then fails: no kubelet here) and is 403 on another cluster\'s pod', async () => {
    const exec = (pod: string) => podPath(pod, '/exec?container=postgres&command=pg_controldata&stdout=true');
    const own = await kubeRequest(worker, 'POST', exec(`${MINE}-0`));
    expect([own.status, own.body.message]).toEqual([400, `pod ${MINE}-0 does not have a host assigned`]);
    for (const pod of [`${OTHER}-0`, `${MINE}-2`]) {
      const r = await kubeRequest(worker, 'POST', exec(pod));
      expect({ pod, status: r.status }).toEqual({ pod, status: 403 });
    }
  });

  it('pods/proxy reaches its own member\'s Patroni port, not another port of it (the name carries the port), not another cluster\'s', async () => {
    const own = await kubeRequest(worker, 'GET', podPath(`${MINE}-1:${PATRONI_PORT}`, '/proxy/cluster'));
    expect([own.status, own.body]).toEqual([200, { url: '/cluster' }]);
    for (const target of [`${MINE}-1:${PATRONI_PORT + 1}`, `${MINE}-1`, `${OTHER}-0:${PATRONI_PORT}`]) {
      const r = await kubeRequest(worker, 'GET', podPath(target, '/proxy/cluster'));
      expect({ target, status: r.status }).toEqual({ target, status: 403 });
    }
  });

  it('a Secret it creates under a name outside the Role stays out of its reach', async () => {
    const name = 'made-by-worker';
    const created = await kubeRequest(worker, 'POST', secretPath(), { body: { apiVersion: 'v1', kind: 'Secret', metadata: { name }, stringData: { k: 'v' } } });
    expect(created.status).toBe(201);
    for (const method of ['GET', 'PATCH', 'DELETE']) expect((await kubeRequest(worker, method, secretPath(name), method === 'PATCH' ? { body: { data: {} } } : {})).status).toBe(403);
    // A create of an existing name is a conflict, never an overwrite.
    const again = await kubeRequest(worker, 'POST', secretPath(), { body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: credentialsSecretName('postgres', OTHER) }, stringData: { password: 'mine' } } });
    expect(again.status).toBe(409);
  });
});

describe('the admission policy pins what RBAC cannot: the names the worker creates', () => {
  const tokenSecret = (name: string) => ({
    apiVersion: 'v1', kind: 'Secret', metadata: { name, annotations: { 'kubernetes.io/service-account.name': 'default' } }, type: 'kubernetes.io/service-account-token',
  });
  const pgObject = (name: string) => ({
    apiVersion: 'acid.zalan.do/v1', kind: 'postgresql', metadata: { name },
    spec: { teamId: 'acid', numberOfInstances: 1, postgresql: { version: '15' }, volume: { size: '1Gi' } },
  });
  const pgPath = `/apis/acid.zalan.do/v1/namespaces/${NS}/postgresqls`;

  it('without it, the Role alone lets the worker create a service-account-token Secret under a name it may read', async () => {
    const r = await kubeRequest(worker, 'POST', `${secretPath()}?dryRun=All`, { body: tokenSecret(`${MINE}-standby-s3`) });
    expect(r.status).toBe(201);
  });

  it('with it: only Opaque Secrets and postgresql objects of the listed clusters; the admin is not bound by it', async () => {
    await applyWorkerAdmissionPolicy(admin, worker, NS, renderWorkerAdmissionPolicy(SITE) as KubeObject[]);
    const refused = [
      ['a token Secret under a listed name', secretPath(), tokenSecret(`${MINE}-standby-s3`)],
      ['an Opaque Secret under another name', secretPath(), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'elsewhere' }, type: 'Opaque', stringData: { k: 'v' } }],
      ['a postgresql of a cluster not listed', pgPath, pgObject(OTHER)],
    ] as const;
    for (const [what, path, body] of refused) {
      const r = await kubeRequest(worker, 'POST', path, { body });
      expect({ what, status: r.status, message: r.body.message }).toEqual({ what, status: 422, message: expect.stringMatching(/ValidatingAdmissionPolicy .* denied request: the worker creates only/) });
    }
    const s3Copy = await kubeRequest(worker, 'POST', secretPath(), { body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${MINE}-standby-s3` }, type: 'Opaque', stringData: { k: 'v' } } });
    expect(s3Copy.status).toBe(201);
    expect((await kubeRequest(worker, 'POST', pgPath, { body: pgObject(MINE) })).status).toBe(201);
    expect((await kubeRequest(admin, 'POST', secretPath(), { body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'by-admin' }, stringData: { k: 'v' } } })).status).toBe(201);
  });
});

describe('the renderer', () => {
  it('every rule says why it is there, and the README lists every rule\'s resource and verbs', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    for (const rule of workerRules(SITE)) {
      expect(rule.why.length).toBeGreaterThan(40);
      expect(readme).toContain(`| ${rule.resources.join()} | ${rule.verbs.join(', ')} |`);
    }
  });

  it('refuses a site that lists no clusters', () => {
    expect(() => workerRules({ ...SITE, clusters: {} })).toThrow(/lists no "clusters"/);
  });

  it.each([
    [{ Orders: {} }, /cluster "Orders" is not a name the operator can have/],
    [{ 'acid-x': { members: 0 } }, /"members" must be a whole number from 1 to 16/],
    [{ 'acid-x': { users: ['App-User'] } }, /"users" must be a list of Postgres role names/],
    [['acid-x'], /"clusters" must be an object/],
  ])('the sites file refuses bad "clusters" %j', (clusters, why) => {
    const file = join(DIR, 'bad-clusters.json');
    const { name: _name, ...site } = SITE;
    writeFileSync(file, JSON.stringify({ sites: { eu: { ...site, clusters } } }));
    expect(() => loadSites(file)).toThrow(why);
  });

  it('deploy/kubernetes/worker-rbac.yaml is what it renders from the eu example sites file (regions/eu/worker.yaml)', () => {
    const configMap = readYamlDocuments(EXAMPLE_SITES_MANIFEST).find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
    const file = join(DIR, 'example-sites.json');
    writeFileSync(file, configMap.data['sites.json']);
    // The example loads as a sites file, and lists the clusters its Role names.
    expect(Object.keys((loadSites(file).sites.eu as ZalandoSiteConfig).clusters ?? {})).not.toHaveLength(0);
    // Out of step? `scripts/render-worker-rbac --example > deploy/kubernetes/worker-rbac.yaml`
    expect(readFileSync(WORKER_RBAC_FILE, 'utf8')).toBe(exampleWorkerRbacYaml());
  });

  it('the CLI prints the same objects with --json, and exits 2 naming a site without clusters', () => {
    const file = join(DIR, 'cli-sites.json');
    const { name: _name, ...site } = SITE;
    writeFileSync(file, JSON.stringify({ sites: { eu: site, us: { ...site, clusters: undefined } } }));
    const cli = join(REPO_ROOT, 'scripts', 'render-worker-rbac');
    const json = JSON.parse(execFileSync(cli, ['--sites', file, '--site', 'eu', '--json'], { encoding: 'utf8' }));
    expect(json).toEqual({ sites: { eu: renderWorkerRbac(SITE) } });
    const yaml = execFileSync(cli, ['--sites', file, '--site', 'eu'], { encoding: 'utf8' });
    expect(yaml.split(/^---$/m).map((d) => parse(d))).toEqual(renderWorkerRbac(SITE));
    let failed: { status: number; stderr: string } | null = null;
    try {
      execFileSync(cli, ['--sites', file], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      failed = err as { status: number; stderr: string };
    }
    expect(failed?.status).toBe(2);
    expect(failed?.stderr).toMatch(/site us lists no "clusters"/);
  });
});
