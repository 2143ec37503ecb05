// InstantSiteDriver: a FAST, IN-MEMORY site with no Postgres, Patroni or Kubernetes behind it. It exists only to
// measure and test the orchestration of hundreds of promotions (region-failover at scale): every cluster is a
// standby that promotes the moment it is asked. Nothing that runs through it says anything about real clusters.
import type { Client as PgClient } from 'pg';
import type { S3ArchiveConfig } from '../../activities/sites/sites-file';
import type { ClusterFacts, ClusterListing, EpochClaim, SiteDriver, StoredEpoch } from '../../activities/sites/site-driver';
import { claimWithCas } from '../../activities/sites/epoch';
import { PreconditionFailedError } from '../../workflows/contracts/errors';

interface InstantCluster {
  labels: Record<string, string>;
  sourceRef: string;
  standby: boolean;
  timeline: number;
  markers: Map<string, Date>;
  epoch: number | null;
  epochVersion: number;
}

/** The replayed LSN every instant standby reports: the end of segment 000000010000000000000002. */
export const INSTANT_REPLAYED_LSN = '0/3000000';

export class InstantSiteDriver implements SiteDriver {
  readonly kind = 'local' as const;
  readonly clusters = new Map<string, InstantCluster>();
  /** How many times each cluster was asked to promote (a second ask would be a duplicated promotion). */
  readonly promotions = new Map<string, number>();
  /** Clusters whose promotion is refused, as a Patroni that will not drop standby_cluster would. */
  readonly refusePromotion = new Set<string>();

  constructor(readonly site: string, private readonly s3: S3ArchiveConfig, private readonly sourceWalPrefix: string) {}

  addStandby(cluster: string, sourceRef: string, labels: Record<string, string>): void {
    this.clusters.set(cluster, { labels, sourceRef, standby: true, timeline: 1, markers: new Map(), epoch: null, epochVersion: 0 });
  }

  private need(cluster: string): InstantCluster {
    const c = this.clusters.get(cluster);
    if (!c) throw new Error(`InstantSiteDriver: no cluster ${cluster}`);
    return c;
  }

  async listClusters(): Promise<ClusterListing[]> {
    return [...this.clusters].map(([cluster, c]) => ({ cluster, labels: c.labels, recordedSourceRef: c.sourceRef }));
  }

  async describeCluster(cluster: string): Promise<ClusterFacts | null> {
    const c = this.clusters.get(cluster);
    if (!c) return null;
    return {
      site: this.site, cluster, uid: `instant-${cluster}`, labels: c.labels, pgVersion: 15,
      leaderRole: c.standby ? 'standby_leader' : 'primary', leaderMember: `${cluster}-0`,
      members: [{ name: `${cluster}-0`, role: c.standby ? 'standby_leader' : 'primary', state: 'running', healthy: true }],
      standbySource: c.standby ? { walPrefix: this.sourceWalPrefix, sourceRef: c.sourceRef, host: undefined, port: undefined } : undefined,
      archive: { s3: this.s3, walPrefix: `s3://${this.s3.bucket}/instant/${cluster}/wal/15` },
      streamingEndpoint: { host: '127.0.0.1', port: 1 },
    };
  }

  /** Answers the few statements the position, marker and verify-writable activities send, from memory. */
  async withLeaderSql<T>(cluster: string, fn: (client: PgClient) => Promise<T>): Promise<T> {
    const c = this.need(cluster);
    const query = async (text: string, params: unknown[] = []) => {
      if (/pg_is_in_recovery\(\) AS in_recovery/.test(text)) {
        return { rows: [{
          in_recovery: c.standby, lsn: c.standby ? INSTANT_REPLAYED_LSN : '0/3000100', timeline: c.timeline, at: new Date(),
          replayed_at: c.standby ? new Date() : null, system_id: '7000000000000000001',
        }] };
      }
      // An instant standby always "streams": no restartpoint is needed to read its timeline.
      if (/NOT EXISTS \(SELECT 1 FROM pg_stat_wal_receiver\) AS yes/.test(text)) return { rows: [{ yes: false }] };
      if (/^CREATE (SCHEMA|TABLE) IF NOT EXISTS/.test(text)) return { rows: [] };
      if (/^INSERT INTO standby_runbooks\.markers/.test(text)) {
        if (!c.markers.has(String(params[0]))) c.markers.set(String(params[0]), new Date());
        return { rows: [] };
      }
      if (/^SELECT written_at FROM standby_runbooks\.markers/.test(text)) {
        const at = c.markers.get(String(params[0]));
        return { rows: at ? [{ written_at: at }] : [] };
      }
      throw new Error(`InstantSiteDriver cannot answer: ${text.slice(0, 80)}`);
    };
    return fn({ query } as unknown as PgClient);
  }

  async removeStandbyConfig(cluster: string): Promise<{ changed: boolean }> {
    const c = this.need(cluster);
    this.promotions.set(cluster, (this.promotions.get(cluster) ?? 0) + 1);
    if (this.refusePromotion.has(cluster)) throw new PreconditionFailedError(`InstantSiteDriver: promotion of ${cluster} refused (injected)`);
    if (!c.standby) return { changed: false };
    c.standby = false;
    c.timeline += 1;
    return { changed: true };
  }

  /** In memory, with the same compare-and-set rules as the real stores (activities/sites/epoch.ts). */
  async readEpoch(cluster: string): Promise<StoredEpoch> {
    return { epoch: this.need(cluster).epoch };
  }

  async claimEpoch(cluster: string, epoch: number): Promise<EpochClaim> {
    const c = this.need(cluster);
    return claimWithCas(`${this.site}/${cluster}`, epoch, async () => ({ epoch: c.epoch, version: String(c.epochVersion) }), async (e, version) => {
      if (String(c.epochVersion) !== version) return false;
      c.epoch = e;
      c.epochVersion += 1;
      return true;
    });
  }

  private unsupported(what: string): never {
    throw new Error(`InstantSiteDriver does not ${what}: it only stands in for standbys being promoted`);
  }

  readSecret(): never { return this.unsupported('hold secrets'); }
  writeSecret(): never { return this.unsupported('hold secrets'); }
  listSecretUsers(): never { return this.unsupported('hold secrets'); }
  createStandbyCluster(): never { return this.unsupported('create clusters'); }
  runBaseBackup(): never { return this.unsupported('take backups'); }
  fenceCluster(): never { return this.unsupported('fence'); }
  unfenceCluster(): never { return this.unsupported('fence'); }
  demoteToStandby(): never { return this.unsupported('demote'); }
  archiveFinalWal(): never { return this.unsupported('archive final WAL'); }
  assessFormerPrimary(): never { return this.unsupported('assess former primaries'); }
  quarantineWal(): never { return this.unsupported('quarantine WAL'); }
  reseedAsStandby(): never { return this.unsupported('reseed'); }
  deleteCluster(): never { return this.unsupported('delete clusters'); }
  ensureStandbySlot(): never { return this.unsupported('keep replication slots'); }
  dropStandbySlot(): never { return this.unsupported('keep replication slots'); }
  listReplicationSlots(): never { return this.unsupported('keep replication slots'); }
}
