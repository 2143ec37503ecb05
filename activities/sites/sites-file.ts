// The sites file says what each site is and how to reach it. It holds references to secrets
// (an AWS profile in a shared credentials file, a secret-store folder), never secret values.
import { readFileSync } from 'node:fs';
import { resolve, dirname, isAbsolute } from 'node:path';
import { BadInputError } from '../../workflows/contracts/errors';
import { parseApprovalPolicy, type ApprovalPolicy } from '../identity/approval-policy';
import type { IdentityConfig } from '../../workflows/contracts/identity';
import { parseIdentityConfig } from './identity-config';

/** Where a site's WAL-G archive lives. Credentials come from the AWS SDK default chain, narrowed by `profile`. */
export interface S3ArchiveConfig {
  bucket: string;
  /** WAL_BUCKET_SCOPE_PREFIX of Spilo: `spilo` by default, '' to drop it. */
  scopePrefix: string;
  region: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Profile name in the shared credentials file (AWS_PROFILE semantics). */
  profile?: string;
  /** Shared credentials file (AWS_SHARED_CREDENTIALS_FILE semantics); relative to the sites file. */
  credentialsFile?: string;
}

/** A region of real Patroni clusters on this machine (the sandbox). */
export interface LocalSiteConfig {
  kind: 'local';
  /** The region's folder: etcd, clusters, logs. Relative paths are relative to the sites file. */
  dataDir: string;
  etcd: { clientPort: number; peerPort: number };
  /** Loopback ports handed out to cluster members (Postgres and Patroni REST). */
  memberPorts: { first: number; last: number };
  s3: S3ArchiveConfig;
  /** Stands in for Kubernetes Secrets: one 0600 JSON file per cluster user. */
  secretStore: { dir: string };
  /** OS user that runs Postgres and Patroni when the worker runs as root. */
  runAs?: string;
  /** Members also listen on this non-loopback address (the tests' stand-in operator gives it to its pods). */
  exposeOn?: string;
}

/** Clusters of the Zalando Postgres Operator in one Kubernetes namespace. */
export interface ZalandoSiteConfig {
  kind: 'zalando';
  /** kubeconfig file (relative to the sites file); absent: the in-cluster ServiceAccount of the worker's pod. */
  kubeconfig?: string;
  /** kubeconfig context; absent: the file's current context. */
  context?: string;
  namespace: string;
  /** This region's archive bucket, as the worker reaches it (AWS SDK default credential chain, narrowed by profile). */
  s3: S3ArchiveConfig;
  /**
   * The NAME of the Secret in `namespace` holding the S3 keys Spilo pods of this region use; a standby created here
   * gets its STANDBY_AWS_* env from a copy of it, by reference. Never the keys themselves.
   */
  s3CredentialsSecret: { name: string; accessKeyIdKey?: string; secretAccessKeyKey?: string };
  /**
   * The clusters the worker may touch at this site, by name: the worker's Role is rendered from them
   * (scripts/render-worker-rbac), so a cluster missing here is refused by the API server. Absent: a Role for the
   * whole namespace must be written by hand.
   */
  clusters?: Record<string, ZalandoClusterGrant>;
}

/** What the rendered Role names of one cluster: its member pods and its users' credentials Secrets. */
export interface ZalandoClusterGrant {
  /** Pods `<cluster>-0` .. `<cluster>-<members-1>` (the operator's StatefulSet); default 2. */
  members?: number;
  /** Users besides `postgres` and `standby` whose Secrets the operator keeps (spec.users and the like). */
  users?: string[];
}

/** Users whose Secrets every cluster of the operator has: its superuser and its replication user. */
export const OPERATOR_SYSTEM_USERS = ['postgres', 'standby'];
export const DEFAULT_CLUSTER_MEMBERS = 2;

/** Every user whose credentials Secret the worker may read for `cluster` at this site, or null if not declared. */
export function declaredUsers(site: Pick<ZalandoSiteConfig, 'clusters'>, cluster: string): string[] | null {
  const grant = site.clusters?.[cluster];
  return grant ? [...new Set([...OPERATOR_SYSTEM_USERS, ...(grant.users ?? [])])] : null;
}

export type SiteConfig = LocalSiteConfig | ZalandoSiteConfig;

export interface SitesFile {
  sites: Record<string, SiteConfig>;
  /** Who may decide which approval gate: parsed by identity/approval-policy.ts. */
  approvals?: unknown;
  /** The OpenID Connect issuers whose ID tokens may sign approvals (the company IdP; the sandbox's own issuer). */
  identity?: IdentityConfig;
}

export interface LoadedSites {
  path: string;
  sites: Record<string, SiteConfig & { name: string }>;
  /** Who may decide which approval gate (approval-policy.ts); absent in the file: nobody may. */
  approvals: ApprovalPolicy;
  identity?: IdentityConfig;
}

export function sitesFilePath(explicit?: string): string {
  const p = explicit ?? process.env.DR_SITES_FILE;
  if (!p) {
    throw new BadInputError(
      'no sites file: set DR_SITES_FILE (the sandbox writes .sandbox/sites.json) or pass --sites',
    );
  }
  return resolve(p);
}

export function loadSites(explicit?: string): LoadedSites {
  const path = sitesFilePath(explicit);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new BadInputError(`cannot read sites file ${path}: ${(err as Error).message}`);
  }
  const file = raw as Partial<SitesFile>;
  if (!file || typeof file !== 'object' || !file.sites || typeof file.sites !== 'object') {
    throw new BadInputError(`sites file ${path} has no "sites" object`);
  }
  const base = dirname(path);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const sites: LoadedSites['sites'] = {};
  for (const [name, site] of Object.entries(file.sites)) {
    if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) {
      throw new BadInputError(`sites file ${path}: site name "${name}" must be lower-case letters, digits and '-'`);
    }
    if (site.kind === 'local') {
      sites[name] = {
        ...site,
        name,
        dataDir: abs(site.dataDir),
        secretStore: { dir: abs(site.secretStore.dir) },
        s3: { ...site.s3, credentialsFile: site.s3.credentialsFile ? abs(site.s3.credentialsFile) : undefined },
      };
    } else if (site.kind === 'zalando') {
      const bad = (what: string) => new BadInputError(`sites file ${path}: zalando site "${name}" ${what}`);
      if (!site.namespace || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(site.namespace)) throw bad('needs "namespace", a DNS label');
      if (!site.s3?.bucket) throw bad('needs "s3": { "bucket", "region", ... } of its archive');
      if (!site.s3CredentialsSecret?.name) throw bad('needs "s3CredentialsSecret": { "name" } (the Secret holding the S3 keys Spilo uses)');
      checkClusterGrants(site.clusters, bad);
      sites[name] = {
        ...site,
        name,
        kubeconfig: site.kubeconfig ? abs(site.kubeconfig) : undefined,
        s3: { ...site.s3, scopePrefix: site.s3.scopePrefix ?? 'spilo', credentialsFile: site.s3.credentialsFile ? abs(site.s3.credentialsFile) : undefined },
      };
    } else {
      throw new BadInputError(`sites file ${path}: site "${name}" has unknown kind "${(site as { kind?: string }).kind}" (known: local, zalando)`);
    }
  }
  const identity = file.identity === undefined ? undefined : parseIdentityConfig(file.identity, (what) => new BadInputError(`sites file ${path}: "identity" ${what}`));
  return { path, sites, ...(identity ? { identity } : {}), approvals: parseApprovalPolicy(file.approvals, `sites file ${path}`) };
}

function checkClusterGrants(clusters: unknown, bad: (what: string) => BadInputError): void {
  if (clusters === undefined) return;
  if (!clusters || typeof clusters !== 'object' || Array.isArray(clusters)) throw bad('"clusters" must be an object: { "<cluster>": { "members", "users" } }');
  for (const [cluster, grant] of Object.entries(clusters as Record<string, ZalandoClusterGrant>)) {
    if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(cluster) || cluster.length > 53) throw bad(`cluster "${cluster}" is not a name the operator can have (DNS-1035, at most 53)`);
    if (grant.members !== undefined && !(Number.isInteger(grant.members) && grant.members >= 1 && grant.members <= 16)) {
      throw bad(`cluster "${cluster}": "members" must be a whole number from 1 to 16`);
    }
    if (grant.users !== undefined && !(Array.isArray(grant.users) && grant.users.every((u) => typeof u === 'string' && /^[a-z0-9_][-a-z0-9_]*$/.test(u)))) {
      throw bad(`cluster "${cluster}": "users" must be a list of Postgres role names (lower case, digits, _ and -)`);
    }
  }
}

/** A site that must be a local (sandbox) region, e.g. for the sandbox's own tooling. */
export function localSite(loaded: LoadedSites, name: string): LocalSiteConfig & { name: string } {
  const site = loaded.sites[name];
  if (site?.kind !== 'local') throw new BadInputError(`site "${name}" in ${loaded.path} is not a local sandbox region`);
  return site;
}
