// A local region: one etcd, a secret store and any number of Patroni clusters of Postgres 15 with WAL-G
// archiving to the site's S3 bucket in Spilo's layout. Every method is idempotent.
import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientConfig } from 'pg';
import type { LocalSiteConfig } from '../sites-file';
import { ClusterNotFoundError, PreconditionFailedError, SiteUnreachableError } from '../../../workflows/contracts/errors';
import {
  allocatePorts, clusterDir, listClusterFiles, readClusterFile, withRegionLock, writeClusterFile,
  type CreateLocalClusterSpec, type LocalClusterInfo, type LocalMemberInfo,
} from './cluster-files';
import { ClusterSetup } from './cluster-setup';
import { checkSameShape, checkSourceHost, requireStandbySecrets, resolveSourceBackup, validateSpec } from './cluster-checks';
import { etcdDeletePrefix, etcdHealthy, startEtcd, stopEtcd, type EtcdSpec } from './etcd';
import { forgetLocalEpoch } from './epoch-store';
import { mkdirOwned, type Owner } from './fs-util';
import { memberPaths, restUrl, startMember, stopMember, waitReady, type ProgressFn, type WaitOptions } from './members';
import type { MemberPaths } from './patroni-config';
import { leaderOf, patroniGet, type PatroniClusterMember, type PatroniClusterView } from './patroni-api';
import { lookupUser } from './processes';
import { ensureBucket } from './s3-server';
import { SecretStore, type Credentials } from './secret-store';
import type { DemoteResult, FenceResult, FinalWalResult, FormerPrimaryAssessment, QuarantineRequest, QuarantineResult, ReseedResult, PromoteOutcome } from '../site-driver';
import { assessFormerPrimary } from './former-primary';
import { quarantineWal } from './quarantine-wal';
import { reseedAsStandby, type ReseedSpec } from './reseed';
import { fenceCluster, unfenceCluster, type FenceOptions, type UnfenceOptions } from './fencing';
import { demoteToStandby, promoteStandbyCluster, type DemoteSpec } from './standby-switch';
import { demoteRunningPrimary, undoNativeDemotion } from './native-demote';
import { archiveFinalWal } from './final-wal';
import { runCommand, walgScriptPaths, walPrefixFor, type RunResult } from './walg-env';

export type LocalRegionConfig = LocalSiteConfig & { name: string };
export type { CreateLocalClusterSpec, LocalClusterInfo, LocalMemberInfo, StandbySpec } from './cluster-files';
export type { ProgressFn, WaitOptions } from './members';

export interface LeaderInfo extends LocalMemberInfo {
  role: string;
  state: string;
  restUrl: string;
}

export class LocalRegion {
  readonly name: string;
  private readonly secrets: SecretStore;

  constructor(readonly cfg: LocalRegionConfig) {
    this.name = cfg.name;
    this.secrets = new SecretStore(cfg.secretStore.dir);
  }

  private get runAs(): string {
    return this.cfg.runAs ?? 'postgres';
  }

  private owner(): Owner {
    return lookupUser(this.runAs);
  }

  private logDir(cluster?: string): string {
    return cluster ? join(this.cfg.dataDir, 'logs', cluster) : join(this.cfg.dataDir, 'logs');
  }

  private etcdSpec(): EtcdSpec {
    return {
      name: this.name,
      dir: join(this.cfg.dataDir, 'etcd'),
      clientPort: this.cfg.etcd.clientPort,
      peerPort: this.cfg.etcd.peerPort,
      logFile: join(this.logDir(), 'etcd.log'),
    };
  }

  // ---- etcd -------------------------------------------------------------------------------------------------
  startEtcd(): Promise<{ changed: boolean }> {
    return startEtcd(this.etcdSpec());
  }

  stopEtcd(): Promise<{ changed: boolean }> {
    return stopEtcd(this.etcdSpec());
  }

  etcdHealthy(): Promise<boolean> {
    return etcdHealthy(this.cfg.etcd.clientPort);
  }

  // ---- secrets ----------------------------------------------------------------------------------------------
  async readSecret(cluster: string, user: string): Promise<Credentials | null> {
    return this.secrets.read(cluster, user);
  }

  async writeSecret(cluster: string, user: string, value: Credentials): Promise<{ changed: boolean }> {
    return this.secrets.write(cluster, user, value);
  }

  listSecretUsers(cluster: string): string[] {
    return this.secrets.listUsers(cluster);
  }

  // ---- clusters ---------------------------------------------------------------------------------------------
  getCluster(name: string): LocalClusterInfo | null {
    return readClusterFile(this.cfg.dataDir, name);
  }

  listClusters(): LocalClusterInfo[] {
    return listClusterFiles(this.cfg.dataDir);
  }

  private need(name: string): LocalClusterInfo {
    const c = this.getCluster(name);
    if (!c) throw new ClusterNotFoundError(`no cluster ${name} in region ${this.name}`, { cluster: name, site: this.name });
    return c;
  }

  private setup(): ClusterSetup {
    return new ClusterSetup(this.cfg, this.secrets, this.runAs, (c, m) => this.memberPaths(c, m), (c) => this.pgConfig(c));
  }

  memberPaths(cluster: string, member: string): MemberPaths {
    return memberPaths(clusterDir(this.cfg.dataDir, cluster), this.logDir(cluster), member);
  }

  async createCluster(
    spec: CreateLocalClusterSpec,
    opts: WaitOptions = {},
  ): Promise<{ changed: boolean; cluster: LocalClusterInfo }> {
    validateSpec(spec);
    const existing = this.getCluster(spec.name);
    if (existing) {
      checkSameShape(existing, spec);
      const wrote = await this.setup().materialize(existing);
      const started = await this.startCluster(spec.name);
      await waitReady(existing, (m) => this.memberPaths(existing.name, m.name), opts);
      const users = existing.standby ? false : await this.setup().ensureAppUsers(existing);
      return { changed: wrote || started.changed || users, cluster: existing };
    }

    // Everything that can refuse the request runs before anything is written.
    const progress: ProgressFn = opts.onProgress ?? (() => undefined);
    if (!(await this.etcdHealthy())) {
      throw new SiteUnreachableError(`etcd of region ${this.name} is not running (startEtcd first)`, { site: this.name });
    }
    let bootstrapBackup: string | null = null;
    if (spec.standby) {
      const creds = requireStandbySecrets(this.secrets, spec.name);
      if (spec.standby.fromHost) await checkSourceHost(spec.name, spec.standby.fromHost, creds);
      bootstrapBackup = await resolveSourceBackup(spec);
      progress({ phase: 'checked', detail: `source ok${bootstrapBackup ? `, restoring ${bootstrapBackup}` : ''}` });
    }
    if (spec.archive) await ensureBucket(this.cfg.s3);
    if (!spec.standby) {
      for (const u of ['postgres', 'standby', ...(spec.users ?? [])]) this.secrets.ensure(spec.name, u);
    }

    const info = await withRegionLock(this.cfg.dataDir, async () => {
      const again = this.getCluster(spec.name);
      if (again) return again;
      const n = spec.members ?? 2;
      const ports = await allocatePorts(this.cfg.dataDir, this.cfg.memberPorts, 2 * n, [
        this.cfg.etcd.clientPort,
        this.cfg.etcd.peerPort,
      ]);
      const uid = spec.uid ?? randomUUID();
      const dir = clusterDir(this.cfg.dataDir, spec.name);
      const members: LocalMemberInfo[] = Array.from({ length: n }, (_, i) => ({
        name: `${spec.name}-${i}`,
        pgPort: ports[2 * i],
        restPort: ports[2 * i + 1],
        dataDir: join(dir, `${spec.name}-${i}`, 'pgdata'),
      }));
      const created: LocalClusterInfo = {
        name: spec.name,
        uid,
        pgVersion: 15,
        site: this.name,
        archive: spec.archive,
        archivePrefix: spec.archive ? walPrefixFor(this.cfg.s3, spec.name, uid, 15) : null,
        members,
        standby: spec.standby ?? null,
        bootstrapBackup,
        users: spec.users ?? [],
        ...(spec.labels ? { labels: spec.labels } : {}),
        ...(spec.drill ? { drill: spec.drill } : {}),
        createdAt: new Date().toISOString(),
      };
      mkdirOwned(dir, 0o755, this.owner());
      writeClusterFile(this.cfg.dataDir, created);
      return created;
    });

    // A scope left in etcd by an earlier cluster of the same name would make Patroni wait for a leader forever.
    await etcdDeletePrefix(this.cfg.etcd.clientPort, `/service/${info.name}/`);
    await this.setup().materialize(info);
    const leaderPaths = this.memberPaths(info.name, info.members[0].name);
    await startMember(leaderPaths, info.members[0], this.runAs);
    progress({ phase: 'leader', detail: `started ${info.members[0].name}` });
    await waitReady(info, (m) => this.memberPaths(info.name, m.name), { ...opts, scope: 'leader' });
    for (const m of info.members.slice(1)) await startMember(this.memberPaths(info.name, m.name), m, this.runAs);
    await waitReady(info, (m) => this.memberPaths(info.name, m.name), opts);
    if (!info.standby) await this.setup().ensureAppUsers(info);
    return { changed: true, cluster: info };
  }

  async startCluster(name: string): Promise<{ changed: boolean }> {
    const info = this.need(name);
    let changed = false;
    // A creation interrupted between cluster.json and the config files leaves nothing to start from.
    if (info.members.some((m) => !existsSync(this.memberPaths(name, m.name).configFile))) {
      changed = await this.setup().materialize(info);
    }
    for (const m of info.members) changed = (await startMember(this.memberPaths(name, m.name), m, this.runAs)) || changed;
    return { changed };
  }

  waitClusterReady(name: string, opts: WaitOptions = {}): Promise<PatroniClusterView> {
    const info = this.need(name);
    return waitReady(info, (m) => this.memberPaths(name, m.name), opts);
  }

  /** Replicas first, then the leader: stopping the leader first would hand leadership to a replica. */
  async stopCluster(name: string): Promise<{ changed: boolean }> {
    const info = this.need(name);
    const leader = await this.leaderMember(name);
    const order = [...info.members.filter((m) => m.name !== leader?.name), ...info.members.filter((m) => m.name === leader?.name)];
    let changed = false;
    for (const m of order) changed = (await stopMember(this.memberPaths(name, m.name), m)) || changed;
    return { changed };
  }

  async startAll(): Promise<{ changed: boolean }> {
    let changed = (await this.startEtcd()).changed;
    for (const c of this.listClusters()) changed = (await this.startCluster(c.name)).changed || changed;
    return { changed };
  }

  async stopAll(): Promise<{ changed: boolean }> {
    let changed = false;
    for (const c of this.listClusters()) changed = (await this.stopCluster(c.name)).changed || changed;
    changed = (await this.stopEtcd()).changed || changed;
    return { changed };
  }

  /** Stops the cluster, removes its data, logs, DCS keys and fencing epoch; secrets stay unless asked. */
  async deleteCluster(name: string, opts: { deleteSecrets?: boolean } = {}): Promise<{ changed: boolean }> {
    let changed = false;
    if (this.getCluster(name)) {
      await this.stopCluster(name);
      if (await this.etcdHealthy()) {
        await etcdDeletePrefix(this.cfg.etcd.clientPort, `/service/${name}/`);
        await forgetLocalEpoch(this.cfg.etcd.clientPort, name);
      }
      rmSync(clusterDir(this.cfg.dataDir, name), { recursive: true, force: true });
      rmSync(this.logDir(name), { recursive: true, force: true });
      changed = true;
    }
    if (opts.deleteSecrets) changed = this.secrets.deleteCluster(name).changed || changed;
    return { changed };
  }

  /** Everything stopped and the region's folder removed (the secret store too when asked). */
  async wipeRegion(opts: { deleteSecrets?: boolean } = {}): Promise<{ changed: boolean }> {
    const had = existsSync(this.cfg.dataDir);
    if (had) await this.stopAll();
    rmSync(this.cfg.dataDir, { recursive: true, force: true });
    const secrets = opts.deleteSecrets && existsSync(this.cfg.secretStore.dir);
    if (secrets) rmSync(this.cfg.secretStore.dir, { recursive: true, force: true });
    return { changed: had || !!secrets };
  }

  // ---- fencing and role switches (fencing.ts, standby-switch.ts) -------------------------------------------
  fenceCluster(name: string, opts?: FenceOptions): Promise<FenceResult> {
    return fenceCluster(this, name, opts);
  }

  unfenceCluster(name: string, opts?: UnfenceOptions): Promise<{ changed: boolean }> {
    return unfenceCluster(this, name, opts);
  }

  promoteCluster(name: string, opts?: { timeoutMs?: number }): Promise<PromoteOutcome> {
    return promoteStandbyCluster(this, name, opts);
  }

  demoteToStandby(name: string, req: DemoteSpec, opts?: { timeoutMs?: number }): Promise<DemoteResult> {
    return demoteToStandby(this, name, req, opts);
  }

  demoteRunningPrimary(name: string, req: DemoteSpec, opts?: { timeoutMs?: number }) {
    return demoteRunningPrimary(this, name, req, opts);
  }

  undoNativeDemotion(name: string): Promise<{ changed: boolean }> {
    return undoNativeDemotion(this, name);
  }

  archiveFinalWal(name: string, finalLsn: string): Promise<FinalWalResult> {
    return archiveFinalWal(this, name, finalLsn);
  }

  // ---- failback of a former primary (former-primary.ts, quarantine-wal.ts, reseed.ts) ----------------------
  assessFormerPrimary(name: string): Promise<FormerPrimaryAssessment> {
    return assessFormerPrimary(this, name);
  }

  quarantineWal(name: string, req: QuarantineRequest): Promise<QuarantineResult> {
    return quarantineWal(this, name, req);
  }

  reseedAsStandby(name: string, req: ReseedSpec, opts?: { onProgress?: ProgressFn; timeoutMs?: number }): Promise<ReseedResult> {
    return reseedAsStandby(this, name, req, opts);
  }

  // ---- endpoints --------------------------------------------------------------------------------------------
  patroniUrl(name: string, member?: string): string {
    const info = this.need(name);
    const m = member ? info.members.find((x) => x.name === member) : info.members[0];
    if (!m) throw new ClusterNotFoundError(`cluster ${name} has no member ${member}`, { cluster: name, member });
    return restUrl(m);
  }

  /** The leader (or standby_leader) as Patroni's /cluster reports it; null when no member answers or none leads. */
  async leaderMember(name: string): Promise<LeaderInfo | null> {
    const info = this.need(name);
    for (const m of info.members) {
      const view = await patroniGet<PatroniClusterView>(restUrl(m), '/cluster');
      if (!view?.members) continue;
      const l: PatroniClusterMember | null = leaderOf(view);
      const lm = l && info.members.find((x) => x.name === l.name);
      return l && lm ? { ...lm, role: l.role, state: l.state, restUrl: restUrl(lm) } : null;
    }
    return null;
  }

  /** pg connection settings for a member (default: the leader) as `user` with the secret store's password. */
  async pgConfig(name: string, opts: { member?: string; user?: string; database?: string } = {}): Promise<ClientConfig> {
    const info = this.need(name);
    const m = opts.member
      ? info.members.find((x) => x.name === opts.member)
      : (await this.leaderMember(name)) ?? undefined;
    if (!m) throw new SiteUnreachableError(`cluster ${name}: no ${opts.member ?? 'leader'} to connect to`, { cluster: name });
    const user = opts.user ?? 'postgres';
    const cred = this.secrets.read(name, user);
    if (!cred) throw new PreconditionFailedError(`secret ${name}/${user} missing`, { cluster: name, user });
    return { host: '127.0.0.1', port: m.pgPort, user: cred.username, password: cred.password, database: opts.database ?? 'postgres' };
  }

  // ---- backups ----------------------------------------------------------------------------------------------
  /**
   * `wal-g backup-push` of the leader's data directory, as postgres, with the cluster's own archive env.
   * Refuses a standby leader (its own prefix has no WAL until promotion).
   */
  async backupPush(
    name: string,
    opts: { onProgress?: (p: { elapsedMs: number; line?: string }) => void; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<RunResult & { backupName: string | null }> {
    const info = this.need(name);
    if (!info.archivePrefix) throw new PreconditionFailedError(`cluster ${name} does not archive`, { cluster: name });
    const leader = await this.leaderMember(name);
    if (!leader) throw new SiteUnreachableError(`cluster ${name} has no leader`, { cluster: name });
    if (leader.role !== 'leader') {
      throw new PreconditionFailedError(`cluster ${name} leader is a ${leader.role}: backups are taken on a primary`, {
        cluster: name,
        role: leader.role,
      });
    }
    const p = this.memberPaths(name, leader.name);
    const t0 = Date.now();
    const beat = setInterval(() => opts.onProgress?.({ elapsedMs: Date.now() - t0 }), 10_000);
    try {
      const r = await runCommand(
        walgScriptPaths(clusterDir(this.cfg.dataDir, name)).archive,
        ['backup-push', leader.dataDir],
        { PGHOST: p.socketDir, PGPORT: String(leader.pgPort), PGUSER: 'postgres', PGDATABASE: 'postgres', WALG_TIMEOUT: String(24 * 3600) },
        { runAs: this.runAs, cwd: p.memberDir, timeoutMs: opts.timeoutMs, signal: opts.signal, onLine: (line) => opts.onProgress?.({ elapsedMs: Date.now() - t0, line }) },
      );
      const m = /Wrote backup with name (\S+)/.exec(r.stderr + r.stdout);
      return { ...r, backupName: m ? m[1] : null };
    } finally {
      clearInterval(beat);
    }
  }
}
