// The `local` site kind: a sandbox region of real Patroni clusters on this machine (activities/sites/local/).
import { Client as PgClient } from 'pg';
import type { LocalSiteConfig } from './sites-file';
import type {
  ClusterFacts, CreateStandbyRequest, PatroniRole, SecretValue, SiteDriver, StandbySource,
} from './site-driver';
import { LocalRegion } from './local/region';
import { patroniGet, type PatroniClusterView } from './local/patroni-api';
import { restUrl } from './local/members';
import { SiteUnreachableError } from '../../workflows/contracts/errors';

const ROLE: Record<string, PatroniRole> = {
  leader: 'primary', master: 'primary', primary: 'primary', standby_leader: 'standby_leader',
  replica: 'replica', sync_standby: 'replica',
};

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
    const members = info.members.map((m) => {
      const seen = view?.members?.find((x) => x.name === m.name);
      const state = seen?.state ?? 'unreachable';
      return { name: m.name, role: ROLE[seen?.role ?? ''] ?? 'unknown', state, healthy: state === 'running' || state === 'streaming' };
    });
    const leader = view?.members?.find((x) => x.role === 'leader' || x.role === 'standby_leader');
    const leaderInfo = leader && info.members.find((m) => m.name === leader.name);
    // Patroni's dynamic config is the truth about standby mode; the cluster file says where it points.
    const isStandby = dynamicConfig ? dynamicConfig.standby_cluster != null : info.standby !== null;
    const standbySource: StandbySource | undefined = isStandby && info.standby
      ? { walPrefix: info.standby.fromArchive?.walPrefix, host: info.standby.fromHost?.host, port: info.standby.fromHost?.port }
      : undefined;
    return {
      site: this.site,
      cluster,
      uid: info.uid,
      pgVersion: info.pgVersion,
      leaderRole: leader ? (ROLE[leader.role] ?? 'unknown') : 'unknown',
      leaderMember: leader?.name,
      members,
      standbySource,
      archive: { s3: this.cfg.s3, walPrefix: info.archivePrefix ?? '' },
      streamingEndpoint: { host: '127.0.0.1', port: (leaderInfo ?? info.members[0]).pgPort },
    };
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

  async createStandbyCluster(req: CreateStandbyRequest): Promise<{ changed: boolean }> {
    const { changed } = await this.region.createCluster({
      name: req.cluster,
      pgVersion: 15,
      archive: true,
      standby: {
        fromArchive: req.fromArchive
          ? { s3: req.fromArchive.archive.s3, walPrefix: req.fromArchive.archive.walPrefix, backupName: req.fromArchive.backupName }
          : undefined,
        fromHost: req.fromHost,
      },
    });
    return { changed };
  }
}
