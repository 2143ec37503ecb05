// The `zalando` site kind: clusters of the Zalando Postgres Operator (Patroni + Spilo + WAL-G) in one Kubernetes
// namespace, driven the way the operator expects: `postgresql` objects, its Secrets, Spilo pods. Patroni's REST
// API is reached through the API server (pods/proxy), so the worker needs no network path to the pods' port 8008
// and every call is authorized by the worker's Role; exec is used only where Spilo offers a script and Patroni
// no endpoint (the base backup, stopping and reading the control file of a fenced member). SQL goes to the pod
// address (the worker runs in the cluster's network).
import { Client as PgClient, type ClientConfig } from 'pg';
import { declaredUsers, OPERATOR_SYSTEM_USERS, type ZalandoSiteConfig } from './sites-file';
import type {
  ReplicationSlotRow, StandbySlotResult, PromoteOutcome,
  ArchiveLocation, BaseBackupRun, ClusterFacts, ClusterListing, CreateStandbyRequest, DemoteRequest, DemoteResult, FenceResult, FinalWalResult, FormerPrimaryAssessment,
  QuarantineRequest, QuarantineResult, ReseedRequest, ReseedResult, SecretValue, SiteDriver, StandbySource, StreamingEndpoint,
  DeleteClusterResult, EpochClaim, StoredEpoch,
} from './site-driver';
import { patroniRole } from './site-driver';
import { isSpiloPrimaryLabel, memberStateRunning, promotePathFor } from './patroni-states';
import { assessFormerPrimary, demoteToStandby, quarantineWal, reseedAsStandby } from './zalando/failback';
import { demoteRunningPrimary, patroniVersionOf, undoNativeDemotion } from './zalando/native-demote';
import { dropZalandoSlot, ensureZalandoSlot, listZalandoSlots } from './zalando/slots';
import { alreadyScaledDown, fencedMarkOf, fenceWithoutPatroni, unfenceScaledDown } from './zalando/fence-without-patroni';
import { KubeAccess, type KubeObject } from './zalando/kube';
import { claimZalandoEpoch, readZalandoEpoch } from './zalando/epoch-store';
import { clusterSecrets, outputTail, redact } from './redact';
import { BadInputError, NotReadyError, PreconditionFailedError, SiteUnreachableError, WaitTimedOutError } from '../../workflows/contracts/errors';
import { parseLsn } from '../../workflows/contracts/lsn';

const PG_GROUP = 'acid.zalan.do/v1';
/** Where the runbooks record which cluster a standby follows (the operator's spec has a host or path, not a name). */
export const SOURCE_ANNOTATION = 'standby-runbooks.dev/source';
/** On a drill's throwaway only: `drill/<site>/<cluster>` of its drill. deleteCluster deletes nothing without it. */
export const DRILL_ANNOTATION = 'standby-runbooks.dev/drill';
/** The source's system identifier and timeline at provisioning (StandbySource), kept on the standby's own object. */
export const SOURCE_SYSTEM_ID_ANNOTATION = 'standby-runbooks.dev/source-system-identifier';
export const SOURCE_TIMELINE_ANNOTATION = 'standby-runbooks.dev/source-timeline';
export const CONTAINER = 'postgres';
export const PGDATA = '/home/postgres/pgdata/pgroot/data';
/** Spilo's own backup command (its cron job runs the same). */
export const SPILO_BACKUP_COMMAND = ['envdir', '/run/etc/wal-e.d/env', '/scripts/postgres_backup.sh', PGDATA];

export interface PostgresqlObject extends KubeObject {
  spec: {
    teamId: string;
    numberOfInstances: number;
    postgresql: { version: string; parameters?: Record<string, string> };
    volume: { size: string };
    standby?: { s3_wal_path?: string; gs_wal_path?: string; standby_host?: string; standby_port?: string; standby_primary_slot_name?: string } | null;
    /** The operator syncs these into Patroni's dynamic config; `slots` keeps permanent slots (a null value is merge-patch's removal). */
    patroni?: { slots?: Record<string, { type: string; [k: string]: unknown } | null>; [k: string]: unknown };
    env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
    users?: Record<string, string[]>;
  };
  status?: { PostgresClusterStatus?: string };
}

export interface PodObject extends KubeObject {
  spec: { containers: Array<{ name: string; ports?: Array<{ name?: string; containerPort: number }>; env?: Array<{ name: string; value?: string }> }> };
  status?: { phase?: string; podIP?: string };
}

export interface PatroniMember { name: string; role: string; state: string; timeline?: number }

/** The member holding the leader key: the primary, or the standby leader of a standby cluster. */
export function isLeader(m: PatroniMember): boolean {
  const role = patroniRole(m.role);
  return role === 'primary' || role === 'standby_leader';
}

/** The operator's name for a user's credentials Secret. */
export function credentialsSecretName(user: string, cluster: string): string {
  return `${user.replace(/_/g, '-')}.${cluster}.credentials.postgresql.acid.zalan.do`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** spec.standby of a standby of this source (the operator's fields; the port is a string there). */
export function standbySpec(src: { fromArchive?: { archive: ArchiveLocation }; fromHost?: StreamingEndpoint; slotName?: string }): NonNullable<PostgresqlObject['spec']['standby']> {
  const standby: NonNullable<PostgresqlObject['spec']['standby']> = {};
  if (src.fromArchive) standby.s3_wal_path = src.fromArchive.archive.walPrefix;
  if (src.fromHost) Object.assign(standby, { standby_host: src.fromHost.host, standby_port: String(src.fromHost.port) });
  // Spilo's STANDBY_PRIMARY_SLOT_NAME, i.e. standby_cluster.primary_slot_name: only a streaming standby uses a slot.
  if (src.fromHost && src.slotName) standby.standby_primary_slot_name = src.slotName;
  return standby;
}

export class ZalandoSiteDriver implements SiteDriver {
  readonly kind = 'zalando' as const;
  readonly kube: KubeAccess;

  constructor(readonly cfg: ZalandoSiteConfig & { name: string }) {
    this.kube = new KubeAccess(cfg);
  }

  get site(): string {
    return this.cfg.name;
  }

  pgPath(name = ''): string {
    return this.kube.path(PG_GROUP, `postgresqls${name ? `/${name}` : ''}`);
  }

  async getPostgresql(cluster: string): Promise<PostgresqlObject | null> {
    return this.kube.get<PostgresqlObject>(this.pgPath(cluster));
  }

  /** The namespace's postgresql objects: name, labels and the source annotation a standby was built with. */
  async listClusters(): Promise<ClusterListing[]> {
    return (await this.kube.list<PostgresqlObject>(this.pgPath())).map((pg) => ({
      cluster: pg.metadata.name,
      labels: pg.metadata.labels ?? {},
      recordedSourceRef: pg.metadata.annotations?.[SOURCE_ANNOTATION] ?? null,
      ...(pg.metadata.annotations?.[DRILL_ANNOTATION] ? { drill: pg.metadata.annotations[DRILL_ANNOTATION] } : {}),
    }));
  }

  async pods(cluster: string): Promise<PodObject[]> {
    return (await this.kube.list<PodObject>(this.kube.path('', 'pods'), `cluster-name=${cluster},application=spilo`))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  port(pod: PodObject, name: 'patroni' | 'postgresql', fallback: number): number {
    for (const c of pod.spec.containers) for (const p of c.ports ?? []) if (p.name === name) return p.containerPort;
    return fallback;
  }

  patroni<T>(pod: PodObject, method: 'GET' | 'PATCH' | 'POST', path: string, body?: unknown) {
    return this.kube.patroni<T>(pod.metadata.name, this.port(pod, 'patroni', 8008), method, path, body);
  }

  /** Patroni's view of the cluster and its dynamic config, from the first pod whose Patroni answers. */
  async patroniView(pods: PodObject[]): Promise<{ members: PatroniMember[]; config: Record<string, unknown> | null; via: PodObject } | null> {
    const primaryFirst = (p: PodObject) => Number(isSpiloPrimaryLabel(p.metadata.labels?.['spilo-role']));
    const ordered = [...pods].sort((a, b) => primaryFirst(b) - primaryFirst(a));
    for (const pod of ordered) {
      const c = await this.patroni<{ members?: PatroniMember[] }>(pod, 'GET', '/cluster');
      if (c?.status === 200 && c.body?.members) {
        const cfg = await this.patroni<Record<string, unknown>>(pod, 'GET', '/config');
        return { members: c.body.members, config: cfg?.status === 200 ? cfg.body : null, via: pod };
      }
    }
    return null;
  }

  async leaderPod(cluster: string): Promise<{ pod: PodObject; member: PatroniMember } | null> {
    const pods = await this.pods(cluster);
    const view = await this.patroniView(pods);
    const leader = view?.members.find(isLeader);
    const pod = leader && pods.find((p) => p.metadata.name === leader.name);
    return pod ? { pod, member: leader! } : null;
  }

  /** The S3 prefix this cluster archives to: from the operator's pod env when present, else Spilo's default layout. */
  private walPrefixOf(pg: PostgresqlObject, pod: PodObject | undefined): string {
    const env = new Map((pod?.spec.containers.find((c) => c.name === CONTAINER)?.env ?? []).map((e) => [e.name, e.value ?? '']));
    const bucket = env.get('WAL_S3_BUCKET') || this.cfg.s3.bucket;
    const scope = env.has('WAL_BUCKET_SCOPE_PREFIX') ? env.get('WAL_BUCKET_SCOPE_PREFIX')! : (this.cfg.s3.scopePrefix ? `${this.cfg.s3.scopePrefix}/` : '');
    const suffix = env.has('WAL_BUCKET_SCOPE_SUFFIX') ? env.get('WAL_BUCKET_SCOPE_SUFFIX')! : `/${pg.metadata.uid}`;
    return `s3://${bucket}/${scope}${pg.metadata.name}${suffix}/wal/${pg.spec.postgresql.version}`;
  }

  async describeCluster(cluster: string): Promise<ClusterFacts | null> {
    const pg = await this.getPostgresql(cluster);
    if (!pg) return null;
    const pods = await this.pods(cluster);
    const view = await this.patroniView(pods);
    const members = pods.map((p) => {
      const seen = view?.members.find((m) => m.name === p.metadata.name);
      const state = seen?.state ?? 'unreachable';
      return { name: p.metadata.name, role: patroniRole(seen?.role), state, healthy: memberStateRunning(state) };
    });
    const leader = view?.members.find((m) => isLeader(m) && memberStateRunning(m.state));
    const standbyConfig = view?.config ? view.config.standby_cluster : undefined;
    const isStandby = view?.config ? standbyConfig != null : !!pg.spec.standby;
    const standbySource: StandbySource | undefined = isStandby
      ? {
          walPrefix: pg.spec.standby?.s3_wal_path,
          host: pg.spec.standby?.standby_host,
          port: pg.spec.standby?.standby_port ? Number(pg.spec.standby.standby_port) : undefined,
          sourceRef: pg.metadata.annotations?.[SOURCE_ANNOTATION],
          ...lineageOf(pg.metadata.annotations ?? {}),
        }
      : undefined;
    return {
      site: this.site,
      cluster,
      uid: pg.metadata.uid!,
      labels: pg.metadata.labels ?? {},
      pgVersion: Number(pg.spec.postgresql.version),
      leaderRole: leader ? (patroniRole(leader.role)) : 'unknown',
      leaderMember: leader?.name,
      members,
      standbySource,
      archive: { s3: this.cfg.s3, walPrefix: this.walPrefixOf(pg, pods.find((p) => p.metadata.name === leader?.name) ?? pods[0]) },
      streamingEndpoint: await this.streamingEndpoint(cluster),
      ...(pg.metadata.annotations?.[DRILL_ANNOTATION] ? { drill: pg.metadata.annotations[DRILL_ANNOTATION] } : {}),
    };
  }

  /** The leader Service: its load-balancer or external address when it has one (reachable from another region). */
  private async streamingEndpoint(cluster: string): Promise<{ host: string; port: number }> {
    const svc = await this.kube.get<KubeObject & {
      spec?: { ports?: Array<{ port: number }>; externalIPs?: string[] };
      status?: { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> } };
    }>(this.kube.path('', `services/${cluster}`));
    const ingress = svc?.status?.loadBalancer?.ingress?.[0];
    const host = ingress?.ip ?? ingress?.hostname ?? svc?.spec?.externalIPs?.[0] ?? `${cluster}.${this.cfg.namespace}.svc.cluster.local`;
    return { host, port: svc?.spec?.ports?.[0]?.port ?? 5432 };
  }

  /** Superuser connection settings for one pod (the worker runs in the cluster's network). */
  async podPgConfig(cluster: string, pod: PodObject): Promise<ClientConfig> {
    if (!pod.status?.podIP) throw new SiteUnreachableError(`${this.site}/${cluster}: pod ${pod.metadata.name} has no address`, { cluster });
    const cred = await this.readSecret(cluster, 'postgres');
    if (!cred) throw new PreconditionFailedError(`${this.site}/${cluster}: Secret ${credentialsSecretName('postgres', cluster)} is missing`, { cluster });
    return {
      host: pod.status.podIP, port: this.port(pod, 'postgresql', 5432), user: cred.username, password: cred.password,
      database: 'postgres', connectionTimeoutMillis: 5_000,
    };
  }

  async withLeaderSql<T>(cluster: string, fn: (client: PgClient) => Promise<T>): Promise<T> {
    const leader = await this.leaderPod(cluster);
    if (!leader) throw new SiteUnreachableError(`${this.site}/${cluster}: no leader pod with an address`, { cluster });
    const client = new PgClient(await this.podPgConfig(cluster, leader.pod));
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      throw new SiteUnreachableError(`${this.site}/${cluster}: cannot connect to its leader ${leader.pod.metadata.name}: ${(err as Error).message}`, { cluster });
    }
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async readSecret(cluster: string, user: string): Promise<SecretValue | null> {
    const s = await this.kube.get<KubeObject & { data?: Record<string, string> }>(this.kube.path('', `secrets/${credentialsSecretName(user, cluster)}`));
    if (!s?.data?.username || !s.data.password) return null;
    return { username: Buffer.from(s.data.username, 'base64').toString('utf8'), password: Buffer.from(s.data.password, 'base64').toString('utf8') };
  }

  /** Creates or overwrites the operator-named Secret; the operator adopts a Secret that exists before the cluster. */
  async writeSecret(cluster: string, user: string, value: SecretValue): Promise<void> {
    const name = credentialsSecretName(user, cluster);
    const data = { username: Buffer.from(value.username).toString('base64'), password: Buffer.from(value.password).toString('base64') };
    const path = this.kube.path('', `secrets/${name}`);
    if (await this.kube.get(path)) {
      await this.kube.mergePatch(path, { data });
      return;
    }
    await this.kube.create(this.kube.path('', 'secrets'), {
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
      metadata: { name, labels: { application: 'spilo', 'cluster-name': cluster, team: cluster.split('-')[0] } }, data,
    });
  }

  /**
   * The users of `cluster` that have a credentials Secret here. Each Secret is read by name, never listed: a Role
   * can name the Secrets it grants (scripts/render-worker-rbac), but a LIST cannot be limited to names. Which
   * names: the operator's system users, the cluster's spec.users and the users the sites file declares for it.
   */
  async listSecretUsers(cluster: string): Promise<string[]> {
    const pg = await this.getPostgresql(cluster);
    const candidates = new Set([...(declaredUsers(this.cfg, cluster) ?? OPERATOR_SYSTEM_USERS), ...Object.keys(pg?.spec.users ?? {})]);
    const found: string[] = [];
    for (const user of candidates) {
      const value = await this.readSecret(cluster, user);
      if (value) found.push(value.username);
    }
    return found.sort();
  }

  createStandbyCluster(req: CreateStandbyRequest, onProgress?: (detail: string) => void): Promise<{ changed: boolean }> {
    return this.createStandby(req, req.drill ? { [DRILL_ANNOTATION]: req.drill } : {}, onProgress);
  }

  /**
   * The pod env of a standby of this source: the operator derives Spilo's STANDBY_* env from spec.standby, except
   * the S3 keys, endpoint and region, which go in spec.env by reference to a Secret.
   */
  async standbyEnv(cluster: string, fromArchive?: { archive: ArchiveLocation }): Promise<NonNullable<PostgresqlObject['spec']['env']>> {
    if (!fromArchive) return [];
    // The standby's pods read the source's archive with the keys of this region's S3 Secret, copied under the
    // cluster's name so it lives and dies with it; values stay inside this activity.
    const s3Secret = await this.copyS3Credentials(cluster);
    const s3 = fromArchive.archive.s3;
    return [
      { name: 'STANDBY_AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: s3Secret, key: 'AWS_ACCESS_KEY_ID' } } },
      { name: 'STANDBY_AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: s3Secret, key: 'AWS_SECRET_ACCESS_KEY' } } },
      { name: 'STANDBY_AWS_REGION', value: s3.region },
      ...(s3.endpoint ? [{ name: 'STANDBY_AWS_ENDPOINT', value: s3.endpoint }] : []),
      { name: 'STANDBY_AWS_S3_FORCE_PATH_STYLE', value: String(!!s3.forcePathStyle) },
      { name: 'STANDBY_USE_WALG_RESTORE', value: 'true' },
    ];
  }

  /** A new postgresql object that is a standby of req.sourceRef (provision, and reseed with its own annotations). */
  async createStandby(req: CreateStandbyRequest, annotations: Record<string, string>, onProgress?: (detail: string) => void): Promise<{ changed: boolean }> {
    // The name was checked against the operator's rule when the runbook validated it (zalandoClusterNameProblem).
    const teamId = req.cluster.slice(0, req.cluster.indexOf('-'));
    const version = String(req.like?.pgVersion ?? /\/wal\/(\d+)$/.exec(req.fromArchive?.archive.walPrefix ?? '')?.[1] ?? '');
    if (!version) throw new BadInputError(`${this.site}/${req.cluster}: the Postgres major version of the source is unknown`);

    const standby = standbySpec(req);
    const existing = await this.getPostgresql(req.cluster);
    if (existing) {
      const same = existing.metadata.annotations?.[SOURCE_ANNOTATION] === req.sourceRef &&
        (existing.metadata.annotations?.[DRILL_ANNOTATION] ?? null) === (annotations[DRILL_ANNOTATION] ?? null) &&
        JSON.stringify(existing.spec.standby ?? null) === JSON.stringify(standby);
      if (!same) {
        throw new PreconditionFailedError(`${this.site}/${req.cluster} already exists and is not a standby of ${req.sourceRef} as asked: choose another target or delete it`, { cluster: req.cluster });
      }
      await this.waitStandbyLeader(req.cluster, 600_000, onProgress);
      return { changed: false };
    }
    const env = await this.standbyEnv(req.cluster, req.fromArchive);
    const body: PostgresqlObject = {
      apiVersion: PG_GROUP, kind: 'postgresql',
      metadata: { name: req.cluster, ...(req.labels ? { labels: req.labels } : {}), annotations: { [SOURCE_ANNOTATION]: req.sourceRef, ...lineageAnnotations(req), ...annotations } },
      spec: {
        teamId,
        numberOfInstances: req.like?.instances ?? 2,
        postgresql: { version },
        volume: { size: req.like?.volumeSize ?? '10Gi' },
        standby,
        env,
      },
    };
    onProgress?.(`creating postgresql ${req.cluster} (standby of ${req.sourceRef})`);
    await this.kube.create(this.pgPath(), body);
    await this.waitStandbyLeader(req.cluster, 900_000, onProgress);
    return { changed: true };
  }

  async copyS3Credentials(cluster: string): Promise<string> {
    const ref = this.cfg.s3CredentialsSecret;
    const src = await this.kube.get<KubeObject & { data?: Record<string, string> }>(this.kube.path('', `secrets/${ref.name}`));
    const idKey = ref.accessKeyIdKey ?? 'AWS_ACCESS_KEY_ID';
    const secretKey = ref.secretAccessKeyKey ?? 'AWS_SECRET_ACCESS_KEY';
    if (!src?.data?.[idKey] || !src.data[secretKey]) {
      throw new PreconditionFailedError(`${this.site}: Secret ${ref.name} (s3CredentialsSecret in the sites file) must exist in namespace ${this.cfg.namespace} with keys ${idKey} and ${secretKey}`);
    }
    const name = `${cluster}-standby-s3`;
    const data = { AWS_ACCESS_KEY_ID: src.data[idKey], AWS_SECRET_ACCESS_KEY: src.data[secretKey] };
    const path = this.kube.path('', `secrets/${name}`);
    if (await this.kube.get(path)) await this.kube.mergePatch(path, { data });
    else await this.kube.create(this.kube.path('', 'secrets'), { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name, labels: { 'cluster-name': cluster } }, data });
    return name;
  }

  /**
   * Until the operator says Running, a pod is labelled as the primary (`master` on Spilo with Patroni 3, `primary` with 4),
   * and Patroni on it reports a running standby_leader.
   */
  async waitStandbyLeader(cluster: string, timeoutMs: number, onProgress?: (d: string) => void): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    let lastAt = 0;
    while (Date.now() < deadline) {
      const pg = await this.getPostgresql(cluster);
      const status = pg?.status?.PostgresClusterStatus ?? 'none';
      if (['CreateFailed', 'Invalid'].includes(status)) {
        throw new PreconditionFailedError(`${this.site}/${cluster}: the operator reports ${status}; see its log and the postgresql object`, { cluster });
      }
      const pods = await this.pods(cluster);
      const master = pods.find((p) => isSpiloPrimaryLabel(p.metadata.labels?.['spilo-role']));
      const node = master ? await this.patroni<{ role?: string; state?: string }>(master, 'GET', '/patroni') : null;
      const now = `status ${status}, ${pods.length} pods, master ${master?.metadata.name ?? 'none'}, Patroni ${node?.body?.role ?? '?'}/${node?.body?.state ?? '?'}`;
      // Also every 20 s unchanged: the caller's progress is the activity's heartbeat.
      if (now !== last || Date.now() - lastAt > 20_000) {
        onProgress?.((last = now));
        lastAt = Date.now();
      }
      if (status === 'Running' && node?.body?.role === 'standby_leader' && node.body.state === 'running') return;
      await sleep(1000);
    }
    throw new WaitTimedOutError(`${this.site}/${cluster} did not become a running standby leader in ${timeoutMs / 1000} s (last: ${last})`, { cluster });
  }

  async runBaseBackup(cluster: string, onProgress: (detail: string) => void): Promise<BaseBackupRun> {
    const leader = await this.leaderPod(cluster);
    if (!leader) throw new SiteUnreachableError(`${this.site}/${cluster}: no leader pod answers`, { cluster });
    const secrets = await clusterSecrets(this, cluster, await this.s3Keys());
    const r = await this.kube.exec(leader.pod.metadata.name, CONTAINER, SPILO_BACKUP_COMMAND, 6 * 3600_000, (l) => onProgress(redact(l, secrets)));
    const names = `${r.stdout}\n${r.stderr}`.match(/base_[0-9A-F]{24}/g);
    return { exitCode: r.exitCode, reportedName: names ? names[names.length - 1] : null, outputTail: outputTail(r.stdout, r.stderr, secrets) };
  }

  /** The S3 keys of this region's Spilo pods (the Secret named in the sites file), for scrubbing output; [] if unreadable. */
  private async s3Keys(): Promise<string[]> {
    const src = await this.kube.get<KubeObject & { data?: Record<string, string> }>(this.kube.path('', `secrets/${this.cfg.s3CredentialsSecret.name}`)).catch(() => null);
    return Object.values(src?.data ?? {}).map((v) => Buffer.from(v, 'base64').toString('utf8'));
  }


  /**
   * The operator's way first (remove spec.standby, wait for its rolling update), then Patroni checked directly:
   * the operator's own PATCH of standby_cluster is not retried when it fails, so the runbook makes it when needed.
   */
  async removeStandbyConfig(cluster: string): Promise<PromoteOutcome> {
    const pg = await this.getPostgresql(cluster);
    if (!pg) throw new PreconditionFailedError(`${this.site}/${cluster} does not exist`, { cluster });
    let changed = false;
    if (pg.spec.standby) {
      await this.kube.mergePatch(this.pgPath(cluster), { spec: { standby: null } });
      changed = true;
      await this.waitRolledOut(cluster, 300_000);
    }
    const leader = await this.leaderPod(cluster);
    if (!leader) throw new SiteUnreachableError(`${this.site}/${cluster}: no Patroni leader answers`, { cluster });
    // Sent to the leader, as Patroni 4's promote-cluster does (3.x takes it the same way).
    const patroniVersion = await patroniVersionOf(this, [leader.pod]);
    const outcome = () => ({ changed, ...(patroniVersion ? { patroniVersion } : {}), promotePath: promotePathFor(patroniVersion) });
    const config = await this.patroni<Record<string, unknown>>(leader.pod, 'GET', '/config');
    if (config?.body && config.body.standby_cluster != null) {
      const r = await this.patroni(leader.pod, 'PATCH', '/config', { standby_cluster: null });
      if (r?.status !== 200) throw new SiteUnreachableError(`${this.site}/${cluster}: PATCH /config via ${leader.pod.metadata.name} answered ${r?.status ?? 'nothing'}`, { cluster });
      changed = true;
    }
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const l = await this.leaderPod(cluster);
      if (l && patroniRole(l.member.role) === 'primary' && memberStateRunning(l.member.state)) return outcome();
      await sleep(500);
    }
    throw new WaitTimedOutError(`${this.site}/${cluster}: Patroni's leader did not become primary within 120 s of removing standby_cluster`, { cluster });
  }

  /** The operator applies a spec change by a rolling update of the StatefulSet; wait for it, bounded. */
  async waitRolledOut(cluster: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const pg = await this.getPostgresql(cluster);
      const sts = await this.kube.get<KubeObject & { status?: { currentRevision?: string; updateRevision?: string; readyReplicas?: number; replicas?: number } }>(
        this.kube.path('apps/v1', `statefulsets/${cluster}`));
      const rolled = !sts?.status?.updateRevision || sts.status.currentRevision === sts.status.updateRevision;
      if (pg?.status?.PostgresClusterStatus === 'Running' && rolled) return;
      if (pg?.status?.PostgresClusterStatus === 'UpdateFailed') return; // Patroni is checked next either way.
      await sleep(1000);
    }
  }

  /** The standby-runbooks.dev/fencing-epoch annotation of the postgresql object, set by resourceVersion (zalando/epoch-store.ts). */
  async readEpoch(cluster: string): Promise<StoredEpoch> {
    return readZalandoEpoch(this.kube, this.pgPath(cluster), `${this.site}/${cluster}`);
  }

  async claimEpoch(cluster: string, epoch: number): Promise<EpochClaim> {
    return claimZalandoEpoch(this.kube, this.pgPath(cluster), `${this.site}/${cluster}`, epoch);
  }

  /**
   * Pause Patroni (it must not restart Postgres), stop Postgres fast in every pod, leader last, read the final
   * checkpoint. With no Patroni answering, the fence is a scale to 0 the operator keeps (zalando/fence-without-patroni).
   */
  async fenceCluster(cluster: string): Promise<FenceResult> {
    const mark = fencedMarkOf((await this.getPostgresql(cluster))?.metadata.annotations);
    if (mark) return alreadyScaledDown(this, cluster, mark);
    const pods = await this.pods(cluster);
    if (pods.length === 0) throw new PreconditionFailedError(`${this.site}/${cluster} has no pods`, { cluster });
    const view = await this.patroniView(pods);
    if (!view) return fenceWithoutPatroni(this, cluster, pods, { container: CONTAINER, pgdata: PGDATA });
    const leaderName = view.members.find(isLeader)?.name;
    const running = view.members.filter((m) => memberStateRunning(m.state)).map((m) => m.name);
    const wasPaused = view.config?.pause === true;
    if (!wasPaused) {
      const r = await this.patroni(view.via, 'PATCH', '/config', { pause: true });
      if (r?.status !== 200) throw new SiteUnreachableError(`${this.site}/${cluster}: pausing Patroni answered ${r?.status ?? 'nothing'}`, { cluster });
    }
    const order = [...pods].sort((a, b) => Number(a.metadata.name === leaderName) - Number(b.metadata.name === leaderName));
    for (const pod of order) {
      await this.kube.exec(pod.metadata.name, CONTAINER, ['pg_ctl', 'stop', '-m', 'fast', '-w', '-D', PGDATA], 120_000);
    }
    const leaderPod = pods.find((p) => p.metadata.name === leaderName) ?? pods[0];
    const control = await this.kube.exec(leaderPod.metadata.name, CONTAINER, ['pg_controldata', PGDATA], 60_000);
    const field = (label: string) => new RegExp(`^${label}:\\s+(.+)$`, 'm').exec(control.stdout)?.[1]?.trim() ?? null;
    const state = field('Database cluster state');
    const checkpoint = field('Latest checkpoint location');
    const confirmed = await this.allRefuseConnections(pods);
    const changed = !wasPaused || running.length > 0;
    return {
      changed,
      confirmed,
      method: running.length ? 'paused-and-stopped' : 'already-stopped',
      finalLsn: checkpoint && parseLsn(checkpoint) >= 0n ? checkpoint : null,
      cleanShutdown: state === 'shut down',
      detail: `Patroni paused, Postgres stopped in ${order.map((p) => p.metadata.name).join(', ')} (leader ${leaderName ?? 'none'} last): cluster state "${state ?? '?'}".`,
    };
  }

  async allRefuseConnections(pods: PodObject[]): Promise<boolean> {
    for (const pod of pods) {
      if (!pod.status?.podIP) continue;
      const c = new PgClient({ host: pod.status.podIP, port: this.port(pod, 'postgresql', 5432), user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 });
      c.on('error', () => undefined);
      const refused = await c.connect().then(() => false, (e: { code?: string }) => e.code === 'ECONNREFUSED');
      await c.end().catch(() => undefined);
      if (!refused) return false;
    }
    return true;
  }

  async unfenceCluster(cluster: string): Promise<{ changed: boolean }> {
    const mark = fencedMarkOf((await this.getPostgresql(cluster))?.metadata.annotations);
    if (mark) {
      await unfenceScaledDown(this, cluster, mark);
      return { changed: true };
    }
    const pods = await this.pods(cluster);
    const view = await this.patroniView(pods);
    if (!view) throw new SiteUnreachableError(`${this.site}/${cluster}: no Patroni answers`, { cluster });
    if (view.config?.pause !== true) return { changed: false };
    const r = await this.patroni(view.via, 'PATCH', '/config', { pause: false });
    if (r?.status !== 200) throw new SiteUnreachableError(`${this.site}/${cluster}: resuming Patroni answered ${r?.status ?? 'nothing'}`, { cluster });
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const l = await this.leaderPod(cluster);
      if (l && memberStateRunning(l.member.state)) return { changed: true };
      await sleep(1000);
    }
    throw new NotReadyError(`${this.site}/${cluster}: Patroni resumed but no leader runs yet`, { cluster });
  }

  /**
   * Only a postgresql object annotated with this drill; the operator removes its StatefulSet, pods and volumes.
   * Its Secrets are left: the Role has no `delete` on secrets, and they hold the same values as the real standby's
   * Secrets in this namespace under a fixed name that the next drill overwrites, so keeping them exposes nothing new.
   */
  async deleteCluster(cluster: string, guard: { drill: string }): Promise<DeleteClusterResult> {
    const pg = await this.getPostgresql(cluster);
    const kept = `its Secrets (${credentialsSecretName('<user>', cluster)}, ${cluster}-standby-s3) are kept: the worker's Role cannot delete Secrets`;
    if (pg) {
      const owner = pg.metadata.annotations?.[DRILL_ANNOTATION];
      if (!guard.drill || owner !== guard.drill) {
        throw new PreconditionFailedError(
          `${this.site}/${cluster} was not created by ${guard.drill || 'a drill'}${owner ? ` (it belongs to ${owner})` : ` (no ${DRILL_ANNOTATION} annotation: it is not a drill throwaway)`}: refusing to delete it`,
          { cluster, drill: owner ?? null },
        );
      }
      await this.kube.delete(this.pgPath(cluster));
    }
    // Gone only when its pods are: a new drill of the same name must not meet the old incarnation's members.
    for (const until = Date.now() + 300_000; (await this.getPostgresql(cluster)) || (await this.pods(cluster)).length > 0; await sleep(1000)) {
      if (Date.now() > until) throw new NotReadyError(`${this.site}/${cluster}: its object or pods are still there 300 s after the delete`, { cluster });
    }
    return { changed: !!pg, secretsDeleted: [], kept: pg ? kept : null };
  }

  // Slots: zalando/slots.ts (spec.patroni.slots on the source's manifest, which the operator syncs into Patroni).
  ensureStandbySlot(cluster: string, slot: string): Promise<StandbySlotResult> { return ensureZalandoSlot(this, cluster, slot); }
  dropStandbySlot(cluster: string, slot: string): Promise<StandbySlotResult> { return dropZalandoSlot(this, cluster, slot); }
  listReplicationSlots(cluster: string): Promise<ReplicationSlotRow[]> { return listZalandoSlots(this, cluster); }

  // Failback through the operator lives in zalando/failback.ts.
  demoteToStandby(cluster: string, req: DemoteRequest): Promise<DemoteResult> {
    return demoteToStandby(this, cluster, req);
  }

  // A planned switchover's old primary demoted while running, where its Patroni has demote-cluster, and the undo.
  demoteRunningPrimary(cluster: string, req: DemoteRequest) { return demoteRunningPrimary(this, cluster, req); }
  undoNativeDemotion(cluster: string): Promise<{ changed: boolean }> { return undoNativeDemotion(this, cluster); }

  /** Not built for pods yet: a planned switchover to an archive-only standby of a zalando cluster is refused. */
  async archiveFinalWal(cluster: string): Promise<FinalWalResult> {
    throw new PreconditionFailedError(
      `${this.site}/${cluster}: pushing the final WAL segment after a fence is not built for zalando sites yet; give its standby a streaming path (method "both") or use mode "unplanned"`,
      { cluster },
    );
  }

  assessFormerPrimary(cluster: string): Promise<FormerPrimaryAssessment> {
    return assessFormerPrimary(this, cluster);
  }

  quarantineWal(cluster: string, req: QuarantineRequest): Promise<QuarantineResult> {
    return quarantineWal(this, cluster, req);
  }

  reseedAsStandby(cluster: string, req: ReseedRequest, onProgress?: (detail: string) => void): Promise<ReseedResult> {
    return reseedAsStandby(this, cluster, req, onProgress);
  }
}

function lineageAnnotations(req: CreateStandbyRequest): Record<string, string> {
  return req.sourceLineage
    ? { [SOURCE_SYSTEM_ID_ANNOTATION]: req.sourceLineage.systemIdentifier, [SOURCE_TIMELINE_ANNOTATION]: String(req.sourceLineage.timeline) }
    : {};
}

function lineageOf(annotations: Record<string, string>): Pick<StandbySource, 'sourceSystemIdentifier' | 'sourceTimeline'> {
  const id = annotations[SOURCE_SYSTEM_ID_ANNOTATION];
  const tl = Number(annotations[SOURCE_TIMELINE_ANNOTATION]);
  return { ...(id ? { sourceSystemIdentifier: id } : {}), ...(tl > 0 ? { sourceTimeline: tl } : {}) };
}
