// The production manifests (deploy/kubernetes/) against the real kube-apiserver v1.34.4: every object is accepted
// with strict field validation, the Deployment runs as the ServiceAccount the Role is bound to, and it takes every
// secret by reference. No kubelet runs here, so no pod starts: what is checked is what the API server decides.
// And deploy/temporal/: the search-attribute script registers exactly SEARCH_ATTRIBUTE_REGISTRATIONS, on the
// suite's real Temporal server. Own folder and ports 31700-31799.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadSites } from '../../activities/sites/sites-file';
import {
  ensureNamespace, kubeRequest, readYamlDocuments, startKubeDevServer, stopKubeDevServer, WORKER_RBAC_FILE,
  type KubeCredentials, type KubeObject,
} from '../../scripts/lib/kube-dev-server';
import { temporalCliPath } from '../../scripts/lib/temporal-dev-server';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../../workflows/contracts/search-attributes';
import { REPO_ROOT, testTemporalAddress } from '../helpers/test-env';
import { privatePort } from '../helpers/private-regions';

const DIR = join(tmpdir(), 'dr-kube-deploy-manifests-test');
const PORTS = { etcdClientPort: privatePort(31779), etcdPeerPort: privatePort(31780), apiPort: privatePort(31743) };
const REGIONS = ['eu', 'us'] as const;
const workerFile = (region: string) => join(REPO_ROOT, 'deploy', 'kubernetes', 'regions', region, 'worker.yaml');
const SA_SCRIPT = join(REPO_ROOT, 'deploy', 'temporal', 'register-search-attributes.sh');

/** Where each kind the manifests use lives in the API. */
const RESOURCES: Record<string, string> = {
  ServiceAccount: 'serviceaccounts', ConfigMap: 'configmaps', Role: 'roles', RoleBinding: 'rolebindings', Deployment: 'deployments',
};

function objectPath(obj: KubeObject): string {
  const plural = RESOURCES[obj.kind];
  if (!plural) throw new Error(`deploy manifests hold a ${obj.kind}, which this test does not know: add it to RESOURCES`);
  const group = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const { name, namespace } = obj.metadata as { name: string; namespace: string };
  return `${group}/namespaces/${namespace}/${plural}/${name}`;
}

/** Server-side apply, as `kubectl apply --server-side --field-validation=Strict [--dry-run=server]` sends it. */
async function apply(creds: KubeCredentials, obj: KubeObject, dryRun: boolean) {
  const query = `fieldManager=deploy-manifests-test&force=true&fieldValidation=Strict${dryRun ? '&dryRun=All' : ''}`;
  return kubeRequest(creds, 'PATCH', `${objectPath(obj)}?${query}`, { body: obj, contentType: 'application/apply-patch+yaml' });
}

/** The manifests of a region as `kubectl apply -f worker-rbac.yaml -f regions/<region>/worker.yaml` applies them. */
function manifestsOf(region: string): KubeObject[] {
  return [...readYamlDocuments(WORKER_RBAC_FILE), ...readYamlDocuments(workerFile(region))];
}

/** Moves the objects into `namespace` (one per region here; a cluster per region in production). */
function inNamespace(objs: KubeObject[], namespace: string): KubeObject[] {
  return objs.map((o) => {
    const copy = JSON.parse(JSON.stringify(o)) as KubeObject;
    (copy.metadata as { namespace?: string }).namespace = namespace;
    for (const s of (copy.subjects as Array<{ namespace?: string }> | undefined) ?? []) s.namespace = namespace;
    return copy;
  });
}

type Container = {
  env: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  volumeMounts: Array<{ name: string; mountPath: string }>;
};
type PodSpec = {
  serviceAccountName: string;
  containers: Container[];
  volumes: Array<{ name: string; configMap?: { name: string }; secret?: { secretName: string } }>;
};
const deploymentOf = (objs: KubeObject[]) => objs.find((o) => o.kind === 'Deployment')!;
const podSpecOf = (objs: KubeObject[]) => (deploymentOf(objs).spec as { template: { spec: PodSpec } }).template.spec;
const envOf = (objs: KubeObject[]) => Object.fromEntries(podSpecOf(objs).containers[0].env.map((e) => [e.name, e]));

/** The volume mounted at the folder holding `file`. */
function volumeHolding(spec: PodSpec, file: string) {
  const mount = spec.containers[0].volumeMounts.find((m) => m.mountPath === dirname(file));
  return spec.volumes.find((v) => v.name === mount?.name);
}

describe('deploy/kubernetes against the real API server', () => {
  let admin: KubeCredentials;

  beforeAll(async () => {
    // A killed earlier run may have left its servers up: stop them before wiping their folder.
    await stopKubeDevServer(DIR).catch(() => undefined);
    rmSync(DIR, { recursive: true, force: true });
    const server = await startKubeDevServer({ dir: DIR, ...PORTS });
    admin = server.admin;
    for (const region of REGIONS) await ensureNamespace(server, `deploy-${region}`);
  }, 120_000);

  afterAll(async () => {
    await stopKubeDevServer(DIR);
    rmSync(DIR, { recursive: true, force: true });
  });

  it.each(REGIONS)('every object of region %s is accepted: server-side dry run, then applied for real (strict fields)', async (region) => {
    const objs = inNamespace(manifestsOf(region), `deploy-${region}`);
    expect(objs.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Role', 'RoleBinding', 'ServiceAccount']);
    for (const dryRun of [true, false]) {
      for (const obj of objs) {
        const r = await apply(admin, obj, dryRun);
        // The object's name and the server's message come out in a failure, not just a status.
        const what = `${dryRun ? 'dry run' : 'apply'} ${obj.kind}/${(obj.metadata as { name: string }).name}`;
        expect(`${what}: HTTP ${r.status} ${r.body?.message ?? ''}`.trim()).toMatch(new RegExp(`^${what}: HTTP 20[01]$`));
      }
    }
    const stored = await kubeRequest(admin, 'GET', objectPath(deploymentOf(objs)));
    expect(stored.status).toBe(200);
    expect(stored.body.spec.template.spec.serviceAccountName).toBe('dr-runbooks-worker');
  });

  it.each(REGIONS)('region %s: the Deployment runs as the ServiceAccount the RoleBinding binds, and that identity may use the driver', async (region) => {
    const objs = manifestsOf(region);
    const binding = objs.find((o) => o.kind === 'RoleBinding') as unknown as {
      metadata: { namespace: string }; roleRef: { kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace: string }>;
    };
    const role = objs.find((o) => o.kind === 'Role')!;
    const account = objs.find((o) => o.kind === 'ServiceAccount')!;
    const deployment = deploymentOf(objs);
    const spec = podSpecOf(objs);
    const ns = (deployment.metadata as { namespace: string }).namespace;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: spec.serviceAccountName, namespace: ns }]);
    expect((account.metadata as { name: string; namespace: string })).toMatchObject({ name: spec.serviceAccountName, namespace: ns });
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: (role.metadata as { name: string }).name });
    // The authorizer itself, for the identity the applied Deployment's pods get: one read and one write the driver needs.
    const user = `system:serviceaccount:deploy-${region}:${spec.serviceAccountName}`;
    // Names from the example sites file the Role is rendered from (its "clusters": acid-orders, acid-billing).
    const asked = [
      ['get', 'postgresqls', '', 'acid-orders', true], ['create', 'pods', 'exec', 'acid-billing-2', true],
      ['get', 'secrets', '', 'app.acid-orders.credentials.postgresql.acid.zalan.do', true],
      ['get', 'secrets', '', 'app.acid-unlisted.credentials.postgresql.acid.zalan.do', false],
      ['create', 'pods', 'exec', 'acid-unlisted-0', false], ['delete', 'secrets', '', 'postgres.acid-orders.credentials.postgresql.acid.zalan.do', false],
    ] as const;
    for (const [verb, resource, subresource, name, expected] of asked) {
      const review = await kubeRequest(admin, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        body: {
          apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
          spec: {
            user, groups: ['system:serviceaccounts', `system:serviceaccounts:deploy-${region}`],
            resourceAttributes: {
              namespace: `deploy-${region}`, verb, resource, subresource, name,
              group: resource === 'postgresqls' ? 'acid.zalan.do' : '',
            },
          },
        },
      });
      expect({ verb, resource, subresource, name, allowed: review.body.status.allowed })
        .toEqual({ verb, resource, subresource, name, allowed: expected });
    }
  });

  it.each(REGIONS)('region %s: Temporal env config, S3 and payload keys come from Secrets by reference, never inline', (region) => {
    const objs = manifestsOf(region);
    const env = envOf(objs);
    const spec = podSpecOf(objs);
    expect(env.TEMPORAL_ADDRESS.value).toMatch(/:7233$/);
    expect(env.TEMPORAL_NAMESPACE.value).toBeTruthy();
    expect(env.TEMPORAL_API_KEY.valueFrom?.secretKeyRef).toEqual({ name: 'dr-runbooks-temporal', key: 'api-key' });
    expect(env.AWS_ACCESS_KEY_ID.valueFrom?.secretKeyRef?.name).toBe('dr-runbooks-s3');
    expect(env.AWS_SECRET_ACCESS_KEY.valueFrom?.secretKeyRef?.name).toBe('dr-runbooks-s3');
    expect(volumeHolding(spec, env.DR_PAYLOAD_KEYS_FILE.value!)?.secret?.secretName).toBe('dr-runbooks-payload-keys');
    // Anything named like a credential is a reference or a path, never a value.
    const inline = Object.values(env).filter((e) => /KEY|SECRET|TOKEN|PASSWORD/.test(e.name) && !e.name.endsWith('_FILE') && e.value !== undefined);
    expect(inline.map((e) => e.name)).toEqual([]);
    expect(objs.some((o) => o.kind === 'Secret')).toBe(false);
  });

  it.each(REGIONS)('region %s: the sites file in the ConfigMap loads, the worker serves its own site, and reaches the other by a mounted kubeconfig', (region) => {
    const objs = manifestsOf(region);
    const env = envOf(objs);
    const spec = podSpecOf(objs);
    const configMap = objs.find((o) => o.kind === 'ConfigMap') as unknown as { metadata: { name: string }; data: Record<string, string> };
    expect(volumeHolding(spec, env.DR_SITES_FILE.value!)?.configMap?.name).toBe(configMap.metadata.name);
    const dir = mkdtempSync(join(tmpdir(), 'dr-deploy-sites-'));
    try {
      const file = join(dir, 'sites.json');
      writeFileSync(file, configMap.data[env.DR_SITES_FILE.value!.split('/').pop()!]);
      const sites = loadSites(file).sites;
      expect(Object.keys(sites).sort()).toEqual([...REGIONS]);
      expect(env.DR_WORKER_SITES.value).toBe(region);
      expect(env.DR_WORKER_CONTROL.value).toBe('true');
      for (const [name, site] of Object.entries(sites)) {
        if (site.kind !== 'zalando') throw new Error(`site ${name} is ${site.kind}, not zalando`);
        if (name === region) expect(site.kubeconfig).toBeUndefined();
        else expect(volumeHolding(spec, site.kubeconfig!)?.secret?.secretName).toBe('dr-runbooks-remote-kube');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the us manifest is the eu one with the regions swapped, so the two cannot drift apart', () => {
    const swap = (text: string) => text
      .replace(/eu-central-1|us-east-1/g, (r) => (r === 'eu-central-1' ? '@1' : '@2'))
      .replace(/\b(eu|us)\b/g, (r) => (r === 'eu' ? 'us' : 'eu'))
      .replace(/@1|@2/g, (r) => (r === '@1' ? 'us-east-1' : 'eu-central-1'));
    const read = (region: string) => readFileSync(workerFile(region), 'utf8');
    expect(read('us')).toBe(swap(read('eu')));
  });
});

describe('deploy/temporal/register-search-attributes.sh', () => {
  it('lists exactly SEARCH_ATTRIBUTE_REGISTRATIONS, names and types', () => {
    const printed = execFileSync(SA_SCRIPT, ['print'], { encoding: 'utf8' }).trim().split('\n').map((l) => {
      const [name, type] = l.split(' ');
      return { name, type };
    });
    expect(printed).toEqual(SEARCH_ATTRIBUTE_REGISTRATIONS.map(({ name, type }) => ({ name, type })));
  });

  it('registers them on a fresh namespace of the real Temporal server, and a second run changes nothing', () => {
    const namespace = `dr-sa-${Date.now().toString(36)}`;
    const env = {
      PATH: `${dirname(temporalCliPath())}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: process.env.HOME ?? '/root',
      TEMPORAL_ADDRESS: testTemporalAddress(),
      TEMPORAL_NAMESPACE: namespace,
    };
    execFileSync(temporalCliPath(), ['operator', 'namespace', 'create', '--namespace', namespace, '--address', testTemporalAddress()]);
    const first = execFileSync(SA_SCRIPT, ['self-hosted'], { env, encoding: 'utf8' });
    expect(first.trim().split('\n')).toEqual(SEARCH_ATTRIBUTE_REGISTRATIONS.map((a) => `registered ${a.name} (${a.type})`));
    const second = execFileSync(SA_SCRIPT, ['self-hosted'], { env, encoding: 'utf8' });
    expect(second).toBe(first);
    // The same name registered with another type is a conflict the script must not paper over.
    const clash = `${namespace}-clash`;
    execFileSync(temporalCliPath(), ['operator', 'namespace', 'create', '--namespace', clash, '--address', testTemporalAddress()]);
    execFileSync(temporalCliPath(), [
      'operator', 'search-attribute', 'create', '--namespace', clash, '--address', testTemporalAddress(), '--name', 'DrPhase', '--type', 'Text',
    ]);
    let failed: { status: number; stderr: string } | null = null;
    try {
      execFileSync(SA_SCRIPT, ['self-hosted'], { env: { ...env, TEMPORAL_NAMESPACE: clash }, encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      failed = err as { status: number; stderr: string };
    }
    expect(failed?.status).toBe(1);
    expect(failed?.stderr).toMatch(/failed to register DrPhase \(Keyword\)/);
    const listed = JSON.parse(execFileSync(temporalCliPath(), [
      'operator', 'search-attribute', 'list', '--namespace', namespace, '--address', testTemporalAddress(), '--output', 'json',
    ], { encoding: 'utf8' })) as { customAttributes?: Record<string, string> };
    for (const a of SEARCH_ATTRIBUTE_REGISTRATIONS) {
      expect([a.name, listed.customAttributes?.[a.name]]).toEqual([a.name, expect.stringMatching(new RegExp(a.type, 'i'))]);
    }
  });
});
