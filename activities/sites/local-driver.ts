// The `local` site kind: a sandbox region of real Patroni clusters on this machine (activities/sites/local/).
import { Client as PgClient } from 'pg';
import type { LocalSiteConfig } from './sites-file';
import type {
  BaseBackupRun, ClusterFacts, ClusterListing, CreateStandbyRequest, DemoteRequest, DemoteResult, FenceResult, FinalWalResult, FormerPrimaryAssessment,
  QuarantineRequest, QuarantineResult, ReseedRequest, ReseedResult, SecretValue, SiteDriver, StandbySource,
  DeleteClusterResult, EpochClaim, StoredEpoch, ReplicationSlotRow, StandbySlotResult, PromoteOutcome,
} from './site-driver';
import { patroniRole } from './site-driver';
import { memberStateRunning } from './patroni-states';
import { runLocalBaseBackup } from './local/base-backup';
import { LocalRegion } from './local/region';
import { dropStandbySlot, ensureStandbySlot, replicationSlots } from './local/standby-slots';
import { patroniGet, type PatroniClusterView } from './local/patroni-api';
import { restUrl } from './local/members';
import { probePort } from './local/pg-control';
import { PreconditionFailedError, SiteUnreachableError } from '../../workflows/contracts/errors';
import { claimLocalEpoch, readLocalEpoch } from './local/epoch-store';

export class LocalSiteDriver implements SiteDriver {
  readonly kind = 'local' as const;
  readonly region: LocalRegion;

  constructor(readonly cfg: LocalSiteConfig & { name: string }) {
    this.region = new LocalRegion(cfg);
  }

  get site(): string {
    return this.cfg.name;
  }

  async describeCluster(cluster: string): Promise<ClusterFacts | null> {
    const info = this.region.getCluster(cluster);
    if (!info) return null;
    let view: PatroniClusterView | null = null;
    let dynamicConfig: Record<string, unknown> | null = null;
    for (const m of info.members) {
      view = await patroniGet<PatroniClusterView>(restUrl(m), '/cluster');
      if (view?.members) {
        dynamicConfig = await patroniGet<Record<string, unknown>>(restUrl(m), '/config');
        break;
      }
    }
    // Patroni publishes member state once per cycle: right after a fence, /cluster still says "running" for a
    // stopped Postgres. A refused connection is the truth about a member that claims to run.
    const refused = new Set<string>();
    for (const m of info.members) if ((await probePort(m.pgPort)) === 'refused') refused.add(m.name);
    const members = info.members.map((m) => {
      const seen = view?.members?.find((x) => x.name === m.name);
      let state = seen?.state ?? 'unreachable';
      if (seen && refused.has(m.name) && (memberStateRunning(state) || state === 'starting')) state = 'stopped';
      return { name: m.name, role: patroniRole(seen?.role), state, healthy: memberStateRunning(state) };
    });
    const leader = view?.members?.find((x) => (x.role === 'leader' || x.role === 'standby_leader') && !refused.has(x.name));
    const leaderInfo = leader && info.members.find((m) => m.name === leader.name);
    // Patroni's dynamic config is the truth about standby mode; the cluster file says where it points.
    const isStandby = dynamicConfig ? dynamicConfig.standby_cluster != null : info.standby !== null;
    const standbySource: StandbySource | undefined = isStandby && info.standby
      ? {
          walPrefix: info.standby.fromArchive?.walPrefix,
          host: info.standby.fromHost?.host,
          port: info.standby.fromHost?.port,
          sourceRef: info.standby.sourceRef,
          ...(info.standby.sourceSystemIdentifier ? { sourceSystemIdentifier: info.standby.sourceSystemIdentifier } : {}),
          ...(info.standby.sourceTimeline ? { sourceTimeline: info.standby.sourceTimeline } : {}),
        }
      : undefined;
    return {
      site: this.site,
      cluster,
      uid: info.uid,
      labels: info.labels ?? {},
      pgVersion: info.pgVersion,
      leaderRole: leader ? (patroniRole(leader.role)) : 'unknown',
      leaderMember: leader?.name,
      members,
      standbySource,
      archive: { s3: this.cfg.s3, walPrefix: info.archivePrefix ?? '' },
      streamingEndpoint: { host: '127.0.0.1', port: (leaderInfo ?? info.members[0]).pgPort },
      ...(info.drill ? { drill: info.drill } : {}),
    };
  }

  async listClusters(): Promise<ClusterListing[]> {
    return this.region.listClusters().map((c) => ({
      cluster: c.name, labels: c.labels ?? {}, recordedSourceRef: c.standby?.sourceRef ?? null, ...(c.drill ? { drill: c.drill } : {}),
    }));
  }

  async withLeaderSql<T>(cluster: string, fn: (client: PgClient) => Promise<T>): Promise<T> {
    const config = await this.region.pgConfig(cluster);
    const client = new PgClient({ ...config, connectionTimeoutMillis: 5_000, statement_timeout: 60_000 });
    try {
      await client.connect();
    } catch (err) {
      throw new SiteUnreachableError(
        `cannot connect to the leader of ${this.site}/${cluster} at ${config.host}:${config.port}: ${(err as Error).message}`,
        { site: this.site, cluster },
      );
    }
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async readSecret(cluster: string, user: string): Promise<SecretValue | null> {
    return this.region.readSecret(cluster, user);
  }

  async writeSecret(cluster: string, user: string, value: SecretValue): Promise<void> {
    await this.region.writeSecret(cluster, user, value);
  }

  async listSecretUsers(cluster: string): Promise<string[]> {
    return this.region.listSecretUsers(cluster);
  }

  async createStandbyCluster(req: CreateStandbyRequest, onProgress?: (detail: string) => void): Promise<{ changed: boolean }> {
    const { changed } = await this.region.createCluster({
      name: req.cluster,
      pgVersion: 15,
      archive: true,
      // As the operator would: the standby has as many members as the source it copies.
      ...(req.like?.instances ? { members: req.like.instances } : {}),
      ...(req.labels ? { labels: req.labels } : {}),
      ...(req.drill ? { drill: req.drill } : {}),
      ...(req.like?.instances ? { members: req.like.instances } : {}),
      standby: {
        fromArchive: req.fromArchive
          ? { s3: req.fromArchive.archive.s3, walPrefix: req.fromArchive.archive.walPrefix, backupName: req.fromArchive.backupName }
          : undefined,
        fromHost: req.fromHost,
        ...(req.fromHost && req.slotName ? { slotName: req.slotName } : {}),
        sourceRef: req.sourceRef,
        ...(req.sourceLineage
          ? { sourceSystemIdentifier: req.sourceLineage.systemIdentifier, sourceTimeline: req.sourceLineage.timeline }
          : {}),
      },
    }, {
      onProgress: onProgress && ((p) => onProgress(`${p.phase}: ${p.detail}`)),
      // provision-standby waits on this: a standby leader seen a second late is a second on the runbook's clock.
      intervalMs: 200,
    });
    return { changed };
  }

  /** `wal-g backup-push` on the primary leader; the region refuses a standby leader (PreconditionFailedError). */
  async runBaseBackup(cluster: string, onProgress: (detail: string) => void, signal?: AbortSignal): Promise<BaseBackupRun> {
    return runLocalBaseBackup(this.region, cluster, onProgress, signal);
  }

  /** Promotion: `standby_cluster` removed from Patroni's config, then a writable primary awaited (NotReadyError). */
  async removeStandbyConfig(cluster: string): Promise<PromoteOutcome> {
    return this.region.promoteCluster(cluster);
  }

  /** Patroni paused, Postgres fast-stopped leader last, proven by refused connections (fencing.ts). */
  async fenceCluster(cluster: string): Promise<FenceResult> {
    return this.region.fenceCluster(cluster);
  }

  async unfenceCluster(cluster: string): Promise<{ changed: boolean }> {
    return this.region.unfenceCluster(cluster);
  }

  /** A fenced cluster becomes a standby of req.sourceRef (standby-switch.ts); a running one is refused. */
  async demoteToStandby(cluster: string, req: DemoteRequest): Promise<DemoteResult> {
    return this.region.demoteToStandby(cluster, {
      sourceRef: req.sourceRef,
      fromHost: req.fromHost,
      fromArchive: req.fromArchive && { s3: req.fromArchive.archive.s3, walPrefix: req.fromArchive.archive.walPrefix },
      slotName: req.slotName,
    });
  }

  /** Patroni >= 4's demote-cluster on the running primary, writes proven stopped (local/native-demote.ts). */
  async demoteRunningPrimary(cluster: string, req: DemoteRequest) {
    return this.region.demoteRunningPrimary(cluster, {
      sourceRef: req.sourceRef,
      fromHost: req.fromHost,
      fromArchive: req.fromArchive && { s3: req.fromArchive.archive.s3, walPrefix: req.fromArchive.archive.walPrefix },
      slotName: req.slotName,
    });
  }

  async undoNativeDemotion(cluster: string): Promise<{ changed: boolean }> {
    return this.region.undoNativeDemotion(cluster);
  }

  /** The partial segment holding a fenced primary's shutdown checkpoint, pushed to its archive (local/final-wal.ts). */
  async archiveFinalWal(cluster: string, finalLsn: string): Promise<FinalWalResult> {
    return this.region.archiveFinalWal(cluster, finalLsn);
  }

  /** Control file, pg_waldump and pg_wal of the (former) leader, or SQL when it runs (local/former-primary.ts). */
  async assessFormerPrimary(cluster: string): Promise<FormerPrimaryAssessment> {
    return this.region.assessFormerPrimary(cluster);
  }

  /** Plain copies of the former leader's pg_wal files from the fork point on, plus a manifest (local/quarantine-wal.ts). */
  async quarantineWal(cluster: string, req: QuarantineRequest): Promise<QuarantineResult> {
    return this.region.quarantineWal(cluster, req);
  }

  /**
   * A key in the region's etcd (local/epoch-store.ts): readable and settable with Patroni and Postgres stopped, and
   * not tied to the cluster's files, which a reseed removes and re-creates (a retried reseed must still check it).
   */
  async readEpoch(cluster: string): Promise<StoredEpoch> {
    return readLocalEpoch(this.cfg.etcd.clientPort, cluster);
  }

  async claimEpoch(cluster: string, epoch: number): Promise<EpochClaim> {
    return claimLocalEpoch(this.cfg.etcd.clientPort, this.site, cluster, epoch);
  }

  /** Only a cluster whose cluster file names this drill; its secrets go with it (they were copied for it alone). */
  async deleteCluster(cluster: string, guard: { drill: string }): Promise<DeleteClusterResult> {
    const info = this.region.getCluster(cluster);
    if (!info) return { changed: false, secretsDeleted: [], kept: null };
    if (!guard.drill || info.drill !== guard.drill) {
      throw new PreconditionFailedError(
        `${this.site}/${cluster} was not created by ${guard.drill || 'a drill'}${info.drill ? ` (it belongs to ${info.drill})` : ' (it is not a drill throwaway)'}: refusing to delete it`,
        { cluster, drill: info.drill ?? null },
      );
    }
    const users = this.region.listSecretUsers(cluster);
    const r = await this.region.deleteCluster(cluster, { deleteSecrets: true });
    return { changed: r.changed, secretsDeleted: users, kept: null };
  }

  /** Patroni's permanent slots in the cluster's dynamic config (local/standby-slots.ts). */
  async ensureStandbySlot(cluster: string, slot: string): Promise<StandbySlotResult> {
    return ensureStandbySlot(this.region, cluster, slot);
  }

  async dropStandbySlot(cluster: string, slot: string): Promise<StandbySlotResult> {
    return dropStandbySlot(this.region, cluster, slot);
  }

  async listReplicationSlots(cluster: string): Promise<ReplicationSlotRow[]> {
    return replicationSlots(this.region, cluster);
  }

  /** Re-check, move the old data aside and bootstrap as a standby of req.sourceRef from its backup (local/reseed.ts). */
  async reseedAsStandby(cluster: string, req: ReseedRequest, onProgress?: (detail: string) => void): Promise<ReseedResult> {
    return this.region.reseedAsStandby(cluster, {
      sourceRef: req.sourceRef,
      fromArchive: { s3: req.fromArchive.archive.s3, walPrefix: req.fromArchive.archive.walPrefix, backupName: req.fromArchive.backupName },
      fromHost: req.fromHost,
      slotName: req.slotName,
      assessedSystemIdentifier: req.assessedSystemIdentifier,
      runTag: req.runTag,
    }, { onProgress: onProgress && ((p) => onProgress(`${p.phase}: ${p.detail}`)) });
  }
}
