// A real Kubernetes API server for tests: the project-built kube-apiserver v1.34.4 (scripts/kube-apiserver) on
// Debian's etcd, with the Zalando operator's postgresql CRD installed. There is no kubelet, scheduler or
// controller-manager: Pods stay Pending without an IP, deleted namespaces are never finalized, and no `default`
// ServiceAccount appears by itself (ensureNamespace creates it, as the ServiceAccount controller would).
// Identities: one admin (system:masters, from a static token file) and, per namespace, the worker's ServiceAccount
// with a real TokenRequest token, so the worker authenticates exactly as a pod's ServiceAccount would.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { startEtcd, stopEtcd, type EtcdSpec } from '../../activities/sites/local/etcd';
import { mkdirOwned, writeFileAtomic } from '../../activities/sites/local/fs-util';
import { startProcess, stopProcess } from '../../activities/sites/local/processes';
import { CHILD_PATH, toolsBin } from '../../activities/sites/local/tools';

const REPO_ROOT = resolve(__dirname, '..', '..');
export const POSTGRESQL_CRD_FILE = join(REPO_ROOT, 'test', 'fixtures', 'kube', 'postgresql.crd.yaml');
export const WORKER_RBAC_FILE = join(REPO_ROOT, 'deploy', 'kubernetes', 'worker-rbac.yaml');
export const KUBE_APISERVER_VERSION = 'v1.34.4';
const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const FIELD_MANAGER = 'standby-runbooks-kube-dev-server';
const ADMIN = 'admin';
const CLUSTER = 'dev';

export interface KubeDevServerSpec {
  dir: string;
  etcdClientPort: number;
  etcdPeerPort: number;
  apiPort: number;
}

/** What a client needs to call the API server as one identity. */
export interface KubeCredentials {
  server: string;
  /** PEM of the serving certificate (self-signed: it is its own CA). */
  ca: string;
  token: string;
}

export interface KubeDevServer {
  dir: string;
  url: string;
  /** The serving certificate, the kubeconfig's certificate-authority. */
  caFile: string;
  kubeconfig: string;
  /** The admin's context in the kubeconfig (system:masters). */
  adminContext: string;
  admin: KubeCredentials;
  /** False when the server was already running and reused. */
  started: boolean;
}

export function kubeDevServerFiles(dir: string) {
  const pki = join(dir, 'pki');
  return {
    pki,
    servingCert: join(pki, 'serving.crt'),
    servingKey: join(pki, 'serving.key'),
    serviceAccountKey: join(pki, 'sa.key'),
    serviceAccountPub: join(pki, 'sa.pub'),
    tokens: join(pki, 'tokens.csv'),
    etcdDir: join(dir, 'etcd'),
    log: join(dir, 'kube-apiserver.log'),
    pid: join(dir, 'kube-apiserver.pid'),
    kubeconfig: join(dir, 'kubeconfig'),
  };
}

export function kubeApiserverBin(): string {
  const bin = process.env.DR_KUBE_APISERVER_BIN ? resolve(process.env.DR_KUBE_APISERVER_BIN) : join(toolsBin(), 'kube-apiserver');
  if (!existsSync(bin)) throw new Error(`kube-apiserver not found at ${bin}: run scripts/bootstrap (it builds ${KUBE_APISERVER_VERSION} into .tools/bin)`);
  return bin;
}

/** The etcd spec of the server in `dir`; the ports matter only for starting it. */
function etcdSpec(dir: string, clientPort = 0, peerPort = 0): EtcdSpec {
  const etcdDir = kubeDevServerFiles(dir).etcdDir;
  return { name: 'kube', dir: etcdDir, clientPort, peerPort, logFile: join(etcdDir, 'etcd.log') };
}

export async function startKubeDevServer(spec: KubeDevServerSpec): Promise<KubeDevServer> {
  const files = kubeDevServerFiles(spec.dir);
  mkdirOwned(spec.dir, 0o700);
  const adminToken = ensurePki(files);
  await startEtcd(etcdSpec(spec.dir, spec.etcdClientPort, spec.etcdPeerPort));

  const url = `https://127.0.0.1:${spec.apiPort}`;
  const { changed } = await startProcess({
    name: 'kube-apiserver',
    cmd: kubeApiserverBin(),
    args: [
      `--etcd-servers=http://127.0.0.1:${spec.etcdClientPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${spec.apiPort}`,
      `--tls-cert-file=${files.servingCert}`,
      `--tls-private-key-file=${files.servingKey}`,
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${files.serviceAccountPub}`,
      `--service-account-signing-key-file=${files.serviceAccountKey}`,
      `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
      '--anonymous-auth=false',
      '--authorization-mode=RBAC',
      `--token-auth-file=${files.tokens}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // A single-user test server: no request queuing, no profiling, no `kubernetes` Service endpoints to keep.
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--endpoint-reconciler-type=none',
      // pods/exec goes to the node's kubelet (the tests' stand-in) at its InternalIP.
      '--kubelet-preferred-address-types=InternalIP',
    ],
    env: { PATH: CHILD_PATH, HOME: process.env.HOME ?? '/root' },
    cwd: spec.dir,
    logFile: files.log,
    pidFile: files.pid,
  });

  const admin: KubeCredentials = { server: url, ca: readFileSync(files.servingCert, 'utf8'), token: adminToken };
  await waitReady(admin, files.log);
  await installPostgresqlCrd(admin);
  writeKubeconfig(files.kubeconfig, (config) => {
    upsertNamed(config.clusters, { name: CLUSTER, cluster: { server: url, 'certificate-authority': files.servingCert } });
    upsertNamed(config.users, { name: ADMIN, user: { token: adminToken } });
    upsertNamed(config.contexts, { name: ADMIN, context: { cluster: CLUSTER, user: ADMIN } });
    config['current-context'] = ADMIN;
  });
  return { dir: spec.dir, url, caFile: files.servingCert, kubeconfig: files.kubeconfig, adminContext: ADMIN, admin, started: changed };
}

export async function stopKubeDevServer(dir: string): Promise<{ changed: boolean }> {
  const apiserver = await stopProcess(kubeDevServerFiles(dir).pid, { signal: 'SIGTERM', timeoutMs: 20_000 });
  const etcd = await stopEtcd(etcdSpec(dir));
  return { changed: apiserver.changed || etcd.changed };
}

/** Serving certificate, ServiceAccount key pair and the admin's token, generated once; returns the admin token. */
function ensurePki(files: ReturnType<typeof kubeDevServerFiles>): string {
  mkdirOwned(files.pki, 0o700);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (!existsSync(files.servingCert) || !existsSync(files.servingKey)) {
    openssl(
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', files.servingKey, '-out', files.servingCert, '-days', '3650',
      '-subj', '/CN=kube-dev-server', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    );
  }
  if (!existsSync(files.serviceAccountKey) || !existsSync(files.serviceAccountPub)) {
    openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', files.serviceAccountKey);
    openssl('pkey', '-in', files.serviceAccountKey, '-pubout', '-out', files.serviceAccountPub);
  }
  if (!existsSync(files.tokens)) {
    // --token-auth-file: token,user,uid,"group1,group2"
    writeFileAtomic(files.tokens, `${randomBytes(32).toString('hex')},${ADMIN},${ADMIN},"system:masters"\n`, 0o600);
  }
  return readFileSync(files.tokens, 'utf8').split(',')[0];
}

async function waitReady(admin: KubeCredentials, logFile: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await kubeRequest(admin, 'GET', '/readyz');
      if (r.status === 200) return;
      last = `HTTP ${r.status}: ${r.text.slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`kube-apiserver at ${admin.server} not ready within ${timeoutMs / 1000}s (${last}); see ${logFile}`);
}

async function installPostgresqlCrd(admin: KubeCredentials, timeoutMs = 30_000): Promise<void> {
  const [crd] = readYamlDocuments(POSTGRESQL_CRD_FILE);
  await applyObject(admin, crd);
  const name = (crd.metadata as { name: string }).name;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await kubeRequest(admin, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    const conditions: Array<{ type: string; status: string }> = r.body?.status?.conditions ?? [];
    const established = conditions.some((c) => c.type === 'Established' && c.status === 'True');
    // Established can come a moment before the new resource is routed: wait until a list is served too.
    if (established && (await kubeRequest(admin, 'GET', '/apis/acid.zalan.do/v1/postgresqls?limit=1')).status === 200) return;
    if (Date.now() > deadline) throw new Error(`CRD ${name} not established within ${timeoutMs / 1000}s: ${JSON.stringify(conditions)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** A namespace with its `default` ServiceAccount (kube-controller-manager would create it; Pods need it). */
export async function ensureNamespace(server: KubeDevServer, namespace: string): Promise<void> {
  await applyObject(server.admin, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await applyObject(server.admin, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace } });
}

/**
 * Applies deploy/kubernetes/worker-rbac.yaml (or `rbac`, a Role rendered from a sites file) into `namespace` (ServiceAccount renamed to `serviceAccount`), asks
 * the TokenRequest API for a token of that ServiceAccount and adds user and context `dr-worker@<namespace>` to the
 * kubeconfig. Calling it again refreshes the token.
 */
export async function addWorkerIdentity(
  server: KubeDevServer,
  opts: { namespace: string; serviceAccount: string; rbac?: KubeObject[] },
): Promise<{ context: string; username: string }> {
  const { namespace, serviceAccount } = opts;
  await ensureNamespace(server, namespace);
  for (const obj of opts.rbac ? structuredClone(opts.rbac) : readYamlDocuments(WORKER_RBAC_FILE)) {
    const metadata = obj.metadata as { name: string; namespace?: string };
    metadata.namespace = namespace;
    if (obj.kind === 'ServiceAccount') metadata.name = serviceAccount;
    if (obj.kind === 'RoleBinding') {
      for (const s of obj.subjects as Array<{ kind: string; name: string; namespace?: string }>) {
        if (s.kind === 'ServiceAccount') Object.assign(s, { name: serviceAccount, namespace });
      }
    }
    await applyObject(server.admin, obj);
  }
  const tokenRequest = await kubeRequest(server.admin, 'POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 24 * 3600 } },
  });
  const token: string | undefined = tokenRequest.body?.status?.token;
  if (tokenRequest.status !== 201 || !token) {
    throw new Error(`TokenRequest for ${namespace}/${serviceAccount} failed: HTTP ${tokenRequest.status} ${tokenRequest.text.slice(0, 300)}`);
  }
  const context = `dr-worker@${namespace}`;
  writeKubeconfig(server.kubeconfig, (config) => {
    upsertNamed(config.users, { name: context, user: { token } });
    upsertNamed(config.contexts, { name: context, context: { cluster: CLUSTER, user: context, namespace } });
  });
  return { context, username: `system:serviceaccount:${namespace}:${serviceAccount}` };
}

// ---- kubeconfig ---------------------------------------------------------------------------------------------

interface Named {
  name: string;
}
interface Kubeconfig {
  apiVersion: 'v1';
  kind: 'Config';
  clusters: Array<Named & { cluster: { server: string; 'certificate-authority': string } }>;
  users: Array<Named & { user: { token: string } }>;
  contexts: Array<Named & { context: { cluster: string; user: string; namespace?: string } }>;
  'current-context': string;
}

function readKubeconfig(path: string): Kubeconfig {
  if (!existsSync(path)) return { apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [], 'current-context': '' };
  return parseYaml(readFileSync(path, 'utf8')) as Kubeconfig;
}

function writeKubeconfig(path: string, edit: (config: Kubeconfig) => void): void {
  const config = readKubeconfig(path);
  edit(config);
  writeFileAtomic(path, stringifyYaml(config), 0o600);
}

function upsertNamed<T extends Named>(list: T[], entry: T): void {
  const i = list.findIndex((e) => e.name === entry.name);
  if (i >= 0) list[i] = entry;
  else list.push(entry);
}

/** The server, CA and token of a context of a kubeconfig written here. */
export function credentialsFor(kubeconfig: string, context: string): KubeCredentials {
  const config = readKubeconfig(kubeconfig);
  const ctx = config.contexts.find((c) => c.name === context)?.context;
  if (!ctx) throw new Error(`no context ${context} in ${kubeconfig}`);
  const cluster = config.clusters.find((c) => c.name === ctx.cluster)?.cluster;
  const user = config.users.find((u) => u.name === ctx.user)?.user;
  if (!cluster || !user) throw new Error(`context ${context} of ${kubeconfig} names a missing cluster or user`);
  return { server: cluster.server, ca: readFileSync(cluster['certificate-authority'], 'utf8'), token: user.token };
}

// ---- HTTP -----------------------------------------------------------------------------------------------------

export interface KubeResponse {
  status: number;
  /** The parsed JSON body (any kind the path returns: callers assert on its fields), undefined when not JSON. */
  body: any;
  text: string;
}

export interface KubeRequestOptions {
  /** An object is sent as JSON; a string as is. */
  body?: unknown;
  /** Default: application/json; for PATCH application/merge-patch+json (custom resources take no strategic merge). */
  contentType?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** One request to the API server; any HTTP status resolves (callers assert on it), only transport errors reject. */
export function kubeRequest(creds: KubeCredentials, method: string, path: string, opts: KubeRequestOptions = {}): Promise<KubeResponse> {
  const payload = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  const contentType = opts.contentType ?? (method === 'PATCH' ? 'application/merge-patch+json' : 'application/json');
  const url = new URL(path, creds.server);
  return new Promise((resolvePromise, reject) => {
    const req = httpsRequest(
      url,
      {
        method,
        ca: creds.ca,
        headers: {
          Authorization: `Bearer ${creds.token}`,
          Accept: 'application/json',
          ...(payload !== undefined ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) } : {}),
          ...opts.headers,
        },
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          resolvePromise({ status: res.statusCode ?? 0, body, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname}: no answer within ${(opts.timeoutMs ?? 30_000) / 1000}s`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// ---- server-side apply ----------------------------------------------------------------------------------------

export type KubeObject = { apiVersion: string; kind: string; metadata: Record<string, unknown> } & Record<string, unknown>;

/** The kinds the harness applies: plural and whether they live in a namespace. */
const KINDS: Record<string, { plural: string; namespaced: boolean }> = {
  Namespace: { plural: 'namespaces', namespaced: false },
  ServiceAccount: { plural: 'serviceaccounts', namespaced: true },
  Role: { plural: 'roles', namespaced: true },
  RoleBinding: { plural: 'rolebindings', namespaced: true },
  CustomResourceDefinition: { plural: 'customresourcedefinitions', namespaced: false },
  ValidatingAdmissionPolicy: { plural: 'validatingadmissionpolicies', namespaced: false },
  ValidatingAdmissionPolicyBinding: { plural: 'validatingadmissionpolicybindings', namespaced: false },
};

/**
 * Applies the worker's admission policy (scripts/render-worker-rbac --admission-policy) and returns once the API
 * server enforces it: a policy is picked up asynchronously, so a dry-run create the policy must refuse is polled.
 */
export async function applyWorkerAdmissionPolicy(admin: KubeCredentials, worker: KubeCredentials, namespace: string, objs: KubeObject[]): Promise<void> {
  for (const obj of objs) await applyObject(admin, obj);
  const probe = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'admission-policy-probe' }, type: 'Opaque', stringData: { k: 'v' } };
  const deadline = Date.now() + 60_000;
  for (let pause = 50; ; pause = Math.min(pause * 2, 1000)) {
    const r = await kubeRequest(worker, 'POST', `/api/v1/namespaces/${namespace}/secrets?dryRun=All`, { body: probe });
    if (r.status !== 201 && /ValidatingAdmissionPolicy/.test(r.body?.message ?? '')) return;
    if (Date.now() > deadline) throw new Error(`the worker's admission policy is not enforced in ${namespace} after 60 s: HTTP ${r.status} ${r.body?.message ?? ''}`);
    await new Promise((res) => setTimeout(res, pause));
  }
}

export function readYamlDocuments(file: string): KubeObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

/** Server-side apply (idempotent create-or-update), as `kubectl apply --server-side --force-conflicts` does. */
export async function applyObject(creds: KubeCredentials, obj: KubeObject): Promise<void> {
  const kind = KINDS[obj.kind];
  if (!kind) throw new Error(`applyObject: kind ${obj.kind} is not known to the harness`);
  const { name, namespace } = obj.metadata as { name: string; namespace?: string };
  const groupPath = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const path = `${groupPath}${kind.namespaced ? `/namespaces/${namespace}` : ''}/${kind.plural}/${name}?fieldManager=${FIELD_MANAGER}&force=true`;
  // JSON is YAML: the apply content type takes it as is.
  const r = await kubeRequest(creds, 'PATCH', path, { body: obj, contentType: 'application/apply-patch+yaml' });
  if (r.status !== 200 && r.status !== 201) {
    throw new Error(`apply ${obj.kind} ${namespace ? `${namespace}/` : ''}${name}: HTTP ${r.status} ${r.body?.message ?? r.text.slice(0, 300)}`);
  }
}
