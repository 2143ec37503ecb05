// The worker's Kubernetes identity for one `zalando` site, rendered from the sites file: a ServiceAccount, a Role
// naming the clusters, Secrets and member pods it may touch, and the RoleBinding. Every rule carries the reason it
// exists (a YAML comment above it), so the Role and the README cannot say different things.
// RBAC cannot limit a `create` or a `list` by name; those rules are namespace-wide and say why that is safe enough.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Document, parseAllDocuments } from 'yaml';
import { credentialsSecretName } from '../../activities/sites/zalando-driver';
import {
  declaredUsers, DEFAULT_CLUSTER_MEMBERS, type ZalandoSiteConfig,
} from '../../activities/sites/sites-file';
import { BadInputError } from '../../workflows/contracts/errors';

const REPO_ROOT = resolve(__dirname, '..', '..');
export const WORKER_IDENTITY = 'dr-runbooks-worker';
/** Spilo's Patroni REST port; pods/proxy is authorized on the name `<pod>:<port>` the request carries. */
export const SPILO_PATRONI_PORT = 8008;

export interface WorkerRbacOptions {
  /** Where the ServiceAccount lives; default: the site's namespace. */
  serviceAccountNamespace?: string;
  /** Patroni's REST port(s) on the member pods; default [8008]. */
  patroniPorts?: number[];
}

export interface WorkerRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
  /** Why the worker needs it: the comment above the rule. */
  why: string;
}

type Site = Pick<ZalandoSiteConfig, 'namespace' | 's3CredentialsSecret' | 'clusters'> & { name: string };

/** The Secrets of `cluster` the worker reads and writes: each user's credentials and the standby's S3 keys copy. */
export function clusterSecretNames(site: Site, cluster: string): string[] {
  return [...declaredUsers(site, cluster)!.map((u) => credentialsSecretName(u, cluster)), `${cluster}-standby-s3`];
}

/** The StatefulSet's pods of `cluster`: `<cluster>-0` .. `<cluster>-<members-1>`. */
export function memberPods(site: Site, cluster: string): string[] {
  const members = site.clusters?.[cluster]?.members ?? DEFAULT_CLUSTER_MEMBERS;
  return Array.from({ length: members }, (_, i) => `${cluster}-${i}`);
}

export function workerRules(site: Site, opts: WorkerRbacOptions = {}): WorkerRule[] {
  const clusters = Object.keys(site.clusters ?? {}).sort();
  if (clusters.length === 0) {
    throw new BadInputError(`site ${site.name} lists no "clusters" in the sites file: a Role rendered from it would name nothing`);
  }
  const ports = opts.patroniPorts ?? [SPILO_PATRONI_PORT];
  const pods = clusters.flatMap((c) => memberPods(site, c));
  const core = [''];
  return [
    {
      apiGroups: ['acid.zalan.do'], resources: ['postgresqls'], verbs: ['get', 'list'],
      why: 'read a cluster (standby spec, lineage, fencing epoch) and list the namespace\'s clusters for the region ' +
        'inventory. A list cannot be limited by name; a postgresql object holds no secret values',
    },
    {
      apiGroups: ['acid.zalan.do'], resources: ['postgresqls'], verbs: ['create'],
      why: 'create a standby (provision-standby), a drill\'s throwaway, and re-create a reseeded cluster. RBAC cannot ' +
        'limit create by name (the name is unknown when it is authorized); the runbooks create only the names ' +
        'they were given, checked against the operator\'s rule',
    },
    {
      apiGroups: ['acid.zalan.do'], resources: ['postgresqls'], resourceNames: clusters, verbs: ['patch', 'delete'],
      why: 'patch: promote (remove spec.standby), fence (numberOfInstances and its annotation), the fencing epoch, ' +
        'replication slots, demote a former primary; delete: a drill\'s throwaway and a reseed. Only these clusters',
    },
    {
      apiGroups: core, resources: ['secrets'], resourceNames: clusters.flatMap((c) => clusterSecretNames(site, c)), verbs: ['get', 'patch'],
      why: 'copy credentials by reference: read the source\'s users, write them to its standby (the operator adopts ' +
        'them), mark a pending reseed on the postgres Secret, refresh the standby\'s copy of the S3 keys. Only the ' +
        'Secrets of these clusters\' users; never delete',
    },
    {
      apiGroups: core, resources: ['secrets'], resourceNames: [site.s3CredentialsSecret.name], verbs: ['get'],
      why: 'the S3 keys Spilo pods of this site use (s3CredentialsSecret): copied for a standby that reads an ' +
        'archive, and scrubbed from a backup\'s output. Read only',
    },
    {
      apiGroups: core, resources: ['secrets'], verbs: ['create'],
      why: 'create a standby\'s credentials and its S3 keys copy before the operator would. RBAC cannot limit create ' +
        'by name: the worker can add a Secret of any name but, outside the names above, never read, change or ' +
        'delete one (a create of an existing name fails)',
    },
    {
      apiGroups: core, resources: ['pods'], verbs: ['list'],
      why: 'find a cluster\'s members by label (cluster-name, spilo-role) and their state. A list cannot be limited ' +
        'by name; a pod spec carries Secret references, not values',
    },
    {
      apiGroups: core, resources: ['pods/proxy'], resourceNames: pods.flatMap((p) => ports.map((port) => `${p}:${port}`)),
      verbs: ['get', 'create', 'patch'],
      why: 'Patroni\'s REST API through the API server (no network path to the pods): GET /cluster, /config, ' +
        '/patroni; POST (create) /reinitialize; PATCH /config. Only these members, on Patroni\'s port',
    },
    {
      apiGroups: core, resources: ['pods/exec'], resourceNames: pods, verbs: ['get', 'create'],
      why: 'Spilo\'s backup script, pg_ctl stop when Patroni is down, pg_controldata, a former primary\'s assessment. ' +
        'The worker\'s client execs over a WebSocket, a GET that Kubernetes 1.34 authorizes as get (from 1.35 as ' +
        'get and create); create covers a POST (SPDY) exec. Only these members',
    },
    {
      apiGroups: core, resources: ['pods/log'], resourceNames: pods, verbs: ['get'],
      why: 'Patroni\'s log (Spilo\'s stdout): whether it ran pg_rewind, and whether that failed, when a former primary ' +
        'is demoted. Only these members',
    },
    {
      apiGroups: core, resources: ['services'], resourceNames: clusters, verbs: ['get'],
      why: 'a source\'s streaming endpoint (its master Service, named as the cluster)',
    },
    {
      apiGroups: ['apps'], resources: ['statefulsets'], resourceNames: clusters, verbs: ['get'],
      why: 'the progress of the operator\'s rolling update after a spec change',
    },
  ];
}

/** ServiceAccount, Role and RoleBinding as plain objects (what `--json` prints and the tests apply). */
export function renderWorkerRbac(site: Site, opts: WorkerRbacOptions = {}): Array<Record<string, unknown>> {
  const ns = site.namespace;
  const saNamespace = opts.serviceAccountNamespace ?? ns;
  const rules = workerRules(site, opts).map(({ why: _why, ...rule }) => rule);
  const labels = { 'app.kubernetes.io/name': WORKER_IDENTITY, 'app.kubernetes.io/part-of': 'standby-runbooks' };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: WORKER_IDENTITY, namespace: saNamespace, labels } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: WORKER_IDENTITY, namespace: ns, labels }, rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: WORKER_IDENTITY, namespace: ns, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: WORKER_IDENTITY },
      subjects: [{ kind: 'ServiceAccount', name: WORKER_IDENTITY, namespace: saNamespace }],
    },
  ];
}

/**
 * What RBAC cannot do: pin the worker's creates to names. A ValidatingAdmissionPolicy (cluster-scoped: a cluster
 * admin applies it) lets the worker create, in this site's namespace, only Opaque Secrets under the names its Role
 * grants and postgresql objects of the listed clusters. Without it, a Secret of type service-account-token created
 * under a listed name that does not exist yet would be filled with a token by Kubernetes and readable by the worker.
 */
export function renderWorkerAdmissionPolicy(site: Site, opts: WorkerRbacOptions = {}): Array<Record<string, unknown>> {
  const clusters = Object.keys(site.clusters ?? {}).sort();
  if (clusters.length === 0) throw new BadInputError(`site ${site.name} lists no "clusters" in the sites file: nothing to pin creates to`);
  const user = `system:serviceaccount:${opts.serviceAccountNamespace ?? site.namespace}:${WORKER_IDENTITY}`;
  const list = (names: string[]) => `[${names.map((n) => `'${n}'`).join(', ')}]`;
  const name = `${WORKER_IDENTITY}-creates.${site.namespace}`;
  const labels = { 'app.kubernetes.io/name': WORKER_IDENTITY, 'app.kubernetes.io/part-of': 'standby-runbooks' };
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy', metadata: { name, labels },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['secrets'] },
            { apiGroups: ['acid.zalan.do'], apiVersions: ['*'], operations: ['CREATE'], resources: ['postgresqls'] },
          ],
        },
        matchConditions: [{ name: 'the-worker', expression: `request.userInfo.username == '${user}'` }],
        validations: [
          {
            expression: `request.resource.resource != 'secrets' || (object.type == 'Opaque' && object.metadata.name in ${list(clusters.flatMap((c) => clusterSecretNames(site, c)))})`,
            message: 'the worker creates only Opaque Secrets of the clusters its site lists (render the Role and this policy again after changing "clusters")',
          },
          {
            expression: `request.resource.resource != 'postgresqls' || object.metadata.name in ${list(clusters)}`,
            message: 'the worker creates only postgresql objects of the clusters its site lists (render the Role and this policy again after changing "clusters")',
          },
        ],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', metadata: { name, labels },
      spec: {
        policyName: name, validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': site.namespace } } },
      },
    },
  ];
}

const wrap = (text: string, width = 112): string[] => {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
};

const comment = (text: string) => wrap(text).map((l) => ` ${l}`).join('\n');

/** The same objects as YAML documents, each rule under the comment that says why it is there. */
export function workerRbacYaml(site: Site, opts: WorkerRbacOptions = {}, header = ''): string {
  const why = workerRules(site, opts).map((r) => r.why);
  const docs = renderWorkerRbac(site, opts).map((obj, i) => {
    const doc = new Document(obj, { aliasDuplicateObjects: false });
    if (obj.kind === 'Role') {
      const rules = doc.get('rules') as { items: Array<{ commentBefore?: string; get(k: string): { flow?: boolean } | undefined }> };
      rules.items.forEach((item, j) => {
        item.commentBefore = comment(why[j]);
        for (const short of ['apiGroups', 'resources', 'verbs']) item.get(short)!.flow = true;
      });
    }
    if (i === 0 && header) doc.commentBefore = header.split('\n').map((l) => (l ? ` ${l}` : '')).join('\n');
    return doc.toString({ lineWidth: 0 });
  });
  return docs.join('---\n');
}

export const EXAMPLE_SITES_MANIFEST = join(REPO_ROOT, 'deploy', 'kubernetes', 'regions', 'eu', 'worker.yaml');

const EXAMPLE_HEADER = `The standby-runbooks worker's identity at a \`zalando\` site: rendered by \`scripts/render-worker-rbac --example\`
from site eu of the example sites file in deploy/kubernetes/regions/eu/worker.yaml (test/kube/worker-rbac.test.ts
keeps it so). For your sites, render your own: \`scripts/render-worker-rbac --sites sites.json --site <site>\`, and
render and apply again whenever the site's "clusters" change: the Role names each cluster, Secret and member pod it
grants (a new cluster, a member added by scaling up, a new user needs a new render), and the API server refuses the
rest. The README (A \`zalando\` site) says why each rule is there.
  - The Role and RoleBinding MUST live in the namespace of the postgresql objects (and their Secrets, Pods,
    Services, StatefulSets): a Role grants nothing outside its own namespace. One site = one namespace.
  - The ServiceAccount may live elsewhere (where the worker runs): --service-account-namespace.
The worker authenticates as this ServiceAccount (its projected token in a pod, or a TokenRequest token).`;

/** deploy/kubernetes/worker-rbac.yaml: the Role of site eu of the example sites file in regions/eu/worker.yaml. */
export function exampleWorkerRbacYaml(): string {
  const configMap = parseAllDocuments(readFileSync(EXAMPLE_SITES_MANIFEST, 'utf8')).map((d) => d.toJS()).find((o) => o?.kind === 'ConfigMap');
  const eu = (JSON.parse(configMap.data['sites.json']) as { sites: Record<string, ZalandoSiteConfig> }).sites.eu;
  return workerRbacYaml({ ...eu, name: 'eu' }, {}, EXAMPLE_HEADER);
}
