// STAND-IN for the Zalando Postgres Operator and the kubelet, for tests only. No operator or kubelet runs here,
// so this plays their part against the REAL kube-apiserver: for each `postgresql` object in a watched namespace it
// creates what the operator would (Secrets adopted or generated, a StatefulSet, Pods labelled cluster-name /
// application=spilo / spilo-role, the leader Service, status.PostgresClusterStatus) and backs every Pod with a REAL
// Patroni member of a sandbox region on this machine: pods/proxy reaches that member's Patroni REST API, SQL its
// Postgres, and pods/exec (through the stand-in kubelet, test/kube/stand-in-kubelet) runs Spilo's commands on its
// data directory. What it does NOT do: roll pods, run Spilo's image, use the STANDBY_AWS_* keys itself (it checks
// they resolve to a Secret, then restores with the sandbox's S3 credentials).
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listCompleteBackups, splitS3Url } from '../../activities/s3/backup-catalogue';
import { LocalRegion } from '../../activities/sites/local/region';
import { clusterDir, withRegionLock, writeClusterFile, type StandbySpec } from '../../activities/sites/local/cluster-files';
import { runAsOf } from '../../activities/sites/local/cluster-state';
import { standbyClusterSection } from '../../activities/sites/local/patroni-config';
import { lookupUser, startProcess, stopProcess } from '../../activities/sites/local/processes';
import { patroniGet, type PatroniNodeStatus } from '../../activities/sites/local/patroni-api';
import { spiloPrimaryLabelFor } from '../../activities/sites/patroni-states';
import { pgBinDir, toolsBin } from '../../activities/sites/local/tools';
import { walgEnv, walgScriptPaths, writeWalgFiles } from '../../activities/sites/local/walg-env';
import type { LocalSiteConfig } from '../../activities/sites/sites-file';
import { credentialsSecretName, SPILO_BACKUP_COMMAND, type PostgresqlObject } from '../../activities/sites/zalando-driver';
import { kubeRequest, type KubeCredentials } from '../../scripts/lib/kube-dev-server';
import { syncPatroniSlots, type KnownSlots } from './stand-in-slots';

const NODE = 'stand-in-node';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface StandInOperatorSpec {
  admin: KubeCredentials;
  /** namespace -> the sandbox region whose members back its pods (exposeOn = the pods' IP). */
  regions: Record<string, LocalSiteConfig & { name: string }>;
  /** Folder for the kubelet's pods.json, shims, pid and log. */
  dir: string;
  kubeletPort: number;
  /**
   * Simulates the operator's documented gap: it does not PATCH Patroni's standby_cluster after spec.standby changes
   * (removed: promotion; added: demotion). Also what a test sets while it re-points a standby by hand (a partition).
   */
  skipStandbyPatch?: boolean;
}

export class StandInOperator {
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly creating = new Map<string, Promise<void>>();
  private readonly pods: Record<string, { shim: string; log: string }> = {};
  /** Clusters whose numberOfInstances is 0: their members are stopped, not deleted (the operator keeps volumes). */
  private readonly scaledDown = new Set<string>();
  /** Per `<ns>/<name>@<uid>`: the slots this operator put into Patroni (stand-in-slots.ts). */
  private readonly replicationSlots: KnownSlots = new Map();
  readonly errors: string[] = [];

  constructor(readonly spec: StandInOperatorSpec) {}

  private api(method: string, path: string, body?: unknown, contentType?: string) {
    return kubeRequest(this.spec.admin, method, path, { body, contentType });
  }

  private async must(method: string, path: string, body?: unknown, contentType?: string) {
    const r = await this.api(method, path, body, contentType);
    if (r.status >= 300 && !(method === 'DELETE' && r.status === 404)) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body;
  }

  async start(): Promise<void> {
    mkdirSync(this.spec.dir, { recursive: true });
    writeFileSync(this.podsFile, '{}\n');
    if (!existsSync(join(this.spec.dir, 'kubelet.key'))) {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', '/CN=stand-in-kubelet',
        '-keyout', join(this.spec.dir, 'kubelet.key'), '-out', join(this.spec.dir, 'kubelet.crt')], { stdio: 'ignore' });
    }
    await startProcess({
      name: 'stand-in-kubelet', cmd: join(toolsBin(), 'stand-in-kubelet'),
      args: ['--listen', `127.0.0.1:${this.spec.kubeletPort}`, '--pods', this.podsFile,
        '--tls-cert', join(this.spec.dir, 'kubelet.crt'), '--tls-key', join(this.spec.dir, 'kubelet.key')],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: this.spec.dir,
      logFile: join(this.spec.dir, 'kubelet.log'), pidFile: join(this.spec.dir, 'kubelet.pid'),
    });
    if ((await this.api('GET', `/api/v1/nodes/${NODE}`)).status === 404) await this.must('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE } });
    await this.must('PATCH', `/api/v1/nodes/${NODE}/status`, {
      status: {
        addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
        daemonEndpoints: { kubeletEndpoint: { Port: this.spec.kubeletPort } },
        conditions: [{ type: 'Ready', status: 'True', reason: 'StandIn', message: 'stand-in kubelet' }],
      },
    }, 'application/merge-patch+json');
    for (const ns of Object.keys(this.spec.regions)) {
      if ((await this.api('GET', `/api/v1/namespaces/${ns}/serviceaccounts/default`)).status === 404) {
        await this.must('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
      }
    }
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        for (const ns of Object.keys(this.spec.regions)) {
          await this.reconcile(ns).catch((e: Error) => { this.errors.push(`${ns}: ${e.message}`); });
        }
        await sleep(1000);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.allSettled([...this.creating.values()]);
    await stopProcess(join(this.spec.dir, 'kubelet.pid'), { signal: 'SIGTERM', timeoutMs: 10_000 });
  }

  private get podsFile(): string {
    return join(this.spec.dir, 'pods.json');
  }

  private region(ns: string): LocalRegion {
    return new LocalRegion(this.spec.regions[ns]);
  }

  private async reconcile(ns: string): Promise<void> {
    const region = this.region(ns);
    const list = (await this.must('GET', `/apis/acid.zalan.do/v1/namespaces/${ns}/postgresqls`)) as { items: PostgresqlObject[] };
    const wanted = new Map(list.items.map((pg) => [pg.metadata.name, pg]));
    // Deleted objects: no garbage collector runs here, so the operator's children go with them.
    for (const info of region.listClusters()) {
      if (!wanted.has(info.name) && !this.creating.has(`${ns}/${info.name}`)) await this.deleteChildren(ns, region, info.name);
    }
    for (const pg of list.items) {
      const key = `${ns}/${pg.metadata.name}`;
      if (this.creating.has(key)) continue;
      const info = region.getCluster(pg.metadata.name);
      if (!info || info.uid !== pg.metadata.uid) {
        if (info) await this.deleteChildren(ns, region, info.name);
        this.creating.set(key, this.create(ns, region, pg)
          .catch(async (e: Error) => {
            this.errors.push(`${key}: ${e.message}`);
            await this.setStatus(ns, pg.metadata.name, 'CreateFailed').catch(() => undefined);
          })
          .finally(() => this.creating.delete(key)));
        continue;
      }
      await this.sync(ns, region, pg);
    }
  }

  private async setStatus(ns: string, name: string, status: string): Promise<void> {
    await this.must('PATCH', `/apis/acid.zalan.do/v1/namespaces/${ns}/postgresqls/${name}/status`,
      { status: { PostgresClusterStatus: status } }, 'application/merge-patch+json');
  }

  /** What the operator does on a new object: secrets (adopted or generated), the cluster, its pods and service. */
  private async create(ns: string, region: LocalRegion, pg: PostgresqlObject): Promise<void> {
    const name = pg.metadata.name;
    await this.setStatus(ns, name, 'Creating');
    for (const user of ['postgres', 'standby', ...Object.keys(pg.spec.users ?? {})]) {
      const path = `/api/v1/namespaces/${ns}/secrets/${credentialsSecretName(user, name)}`;
      let secret = (await this.api('GET', path)).body as { data?: Record<string, string> } | null;
      if (!secret?.data) {
        secret = (await this.must('POST', `/api/v1/namespaces/${ns}/secrets`, {
          apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
          metadata: { name: credentialsSecretName(user, name), labels: { application: 'spilo', 'cluster-name': name, team: pg.spec.teamId } },
          data: { username: Buffer.from(user).toString('base64'), password: Buffer.from(randomBytes(24).toString('base64url')).toString('base64') },
        })) as { data: Record<string, string> };
      }
      const d = secret.data!;
      await region.writeSecret(name, user, { username: Buffer.from(d.username, 'base64').toString(), password: Buffer.from(d.password, 'base64').toString() });
    }
    const cfg = this.spec.regions[ns];
    let standby;
    if (pg.spec.standby) {
      const s = pg.spec.standby;
      let fromArchive;
      if (s.s3_wal_path) {
        await this.checkStandbyEnv(ns, pg);
        const backups = await listCompleteBackups(cfg.s3, s.s3_wal_path);
        if (!backups.length) throw new Error(`no complete base backup under ${s.s3_wal_path}`);
        // The sandbox's buckets share one S3 server and one key pair: this region's S3 config, the source's bucket.
        fromArchive = { s3: { ...cfg.s3, bucket: splitS3Url(s.s3_wal_path).bucket }, walPrefix: s.s3_wal_path, backupName: backups[backups.length - 1].name };
      }
      standby = {
        fromArchive,
        fromHost: s.standby_host ? { host: s.standby_host, port: Number(s.standby_port ?? 5432) } : undefined,
        // Spilo's STANDBY_PRIMARY_SLOT_NAME: standby_cluster.primary_slot_name of a streaming standby.
        ...(s.standby_host && s.standby_primary_slot_name ? { slotName: s.standby_primary_slot_name } : {}),
        sourceRef: pg.metadata.annotations?.['standby-runbooks.dev/source'] ?? `${s.standby_host}:${s.standby_port}`,
      };
    }
    if (pg.spec.postgresql.version !== '15') throw new Error(`the sandbox runs Postgres 15 only, not ${pg.spec.postgresql.version}`);
    await region.createCluster({
      name, uid: pg.metadata.uid, pgVersion: 15, members: pg.spec.numberOfInstances, archive: true, standby,
    }, { timeoutMs: 600_000 });
    await this.must('POST', `/apis/apps/v1/namespaces/${ns}/statefulsets`, {
      apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name, labels: { application: 'spilo', 'cluster-name': name } },
      spec: {
        replicas: pg.spec.numberOfInstances, serviceName: name,
        selector: { matchLabels: { application: 'spilo', 'cluster-name': name } },
        template: { metadata: { labels: { application: 'spilo', 'cluster-name': name } }, spec: { containers: [{ name: 'postgres', image: 'stand-in/spilo' }] } },
      },
    });
    await this.sync(ns, region, pg);
    await this.setStatus(ns, name, 'Running');
  }

  /** The STANDBY_AWS_* env must resolve to a Secret with both keys, as Spilo would need it. */
  private async checkStandbyEnv(ns: string, pg: PostgresqlObject): Promise<void> {
    for (const key of ['STANDBY_AWS_ACCESS_KEY_ID', 'STANDBY_AWS_SECRET_ACCESS_KEY']) {
      const ref = (pg.spec.env?.find((e) => e.name === key)?.valueFrom as { secretKeyRef?: { name: string; key: string } } | undefined)?.secretKeyRef;
      if (!ref) throw new Error(`${key} is not set from a Secret in spec.env`);
      const secret = (await this.api('GET', `/api/v1/namespaces/${ns}/secrets/${ref.name}`)).body as { data?: Record<string, string> };
      if (!secret?.data?.[ref.key]) throw new Error(`${key}: Secret ${ref.name} has no key ${ref.key}`);
    }
  }

  /** Pods mirror the members (labels from Patroni's roles); the Service points at the leader; spec.standby removal is applied. */
  private async sync(ns: string, region: LocalRegion, pg: PostgresqlObject): Promise<void> {
    const name = pg.metadata.name;
    const info = region.getCluster(name);
    if (!info) return;
    if (await this.syncScale(ns, region, pg)) return;
    const leader = await region.leaderMember(name);
    const cfg = this.spec.regions[ns];
    // Labelled as Spilo labels under the Patroni the member runs: `master` with 3.x, `primary` with 4.x.
    const leaderNode = leader ? await patroniGet<PatroniNodeStatus>(leader.restUrl, '/patroni') : null;
    for (const m of info.members) {
      const podName = m.name;
      const role = leader?.name === m.name ? spiloPrimaryLabelFor(leaderNode?.patroni?.version) : 'replica';
      const path = `/api/v1/namespaces/${ns}/pods/${podName}`;
      const got = await this.api('GET', path);
      const existing = got.status === 200 ? (got.body as { metadata: { labels?: Record<string, string> } }) : null;
      if (!existing) {
        await this.must('POST', `/api/v1/namespaces/${ns}/pods`, {
          apiVersion: 'v1', kind: 'Pod',
          metadata: { name: podName, labels: { application: 'spilo', 'cluster-name': name, 'spilo-role': role } },
          spec: {
            nodeName: NODE, automountServiceAccountToken: false,
            containers: [{ name: 'postgres', image: 'stand-in/spilo', ports: [{ name: 'postgresql', containerPort: m.pgPort }, { name: 'patroni', containerPort: m.restPort }] }],
          },
        });
        await this.must('PATCH', `${path}/status`, {
          status: { phase: 'Running', podIP: cfg.exposeOn, podIPs: [{ ip: cfg.exposeOn }], conditions: [{ type: 'Ready', status: 'True' }] },
        }, 'application/merge-patch+json');
        this.writeShim(ns, region, name, m.name);
      } else if (existing.metadata.labels?.['spilo-role'] !== role) {
        await this.must('PATCH', path, { metadata: { labels: { 'spilo-role': role } } }, 'application/merge-patch+json');
      }
    }
    const svcPath = `/api/v1/namespaces/${ns}/services/${name}`;
    const leaderPort = info.members.find((m) => m.name === leader?.name)?.pgPort ?? info.members[0].pgPort;
    const svc = (await this.api('GET', svcPath)).body as { spec?: { ports?: Array<{ port: number }> } } | null;
    if (!svc?.spec) {
      await this.must('POST', `/api/v1/namespaces/${ns}/services`, {
        apiVersion: 'v1', kind: 'Service', metadata: { name, labels: { application: 'spilo', 'cluster-name': name } },
        spec: { ports: [{ name: 'postgresql', port: leaderPort }], externalIPs: [cfg.exposeOn] },
      });
    } else if (svc.spec.ports?.[0]?.port !== leaderPort) {
      await this.must('PATCH', svcPath, { spec: { ports: [{ name: 'postgresql', port: leaderPort }] } }, 'application/merge-patch+json');
    }
    await this.syncPatroniSlots(ns, region, pg, leader?.name ?? null);
    if (pg.spec.standby && !this.spec.skipStandbyPatch) await this.recordStandby(ns, region, pg);
    // Operator 1.11+: spec.standby removed -> rolling update, then PATCH standby_cluster null on Patroni.
    if (!pg.spec.standby && info.standby && !this.spec.skipStandbyPatch) {
      const leaderRest = info.members.find((m) => m.name === leader?.name);
      if (leaderRest) {
        await fetch(`http://127.0.0.1:${leaderRest.restPort}/config`, {
          method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ standby_cluster: null }),
        });
      }
    }
  }

  /**
   * Operator 1.11+ on a running cluster with spec.standby: nothing is recreated; its sync writes standby_cluster
   * into Patroni (restore_command reading Spilo's env-standby dir, which Spilo writes from the STANDBY_* env). The
   * backing member's equivalent of that dir and script is the local restore wrapper with the source's WAL-G env:
   * that is what is written here, with the spec recorded in cluster.json, whenever Patroni's section differs.
   */
  private async recordStandby(ns: string, region: LocalRegion, pg: PostgresqlObject): Promise<void> {
    const name = pg.metadata.name;
    const s = pg.spec.standby!;
    const cfg = this.spec.regions[ns];
    const spec: StandbySpec = {
      sourceRef: pg.metadata.annotations?.['standby-runbooks.dev/source'] ?? `${s.standby_host}:${s.standby_port}`,
      fromHost: s.standby_host ? { host: s.standby_host, port: Number(s.standby_port ?? 5432) } : undefined,
      ...(s.standby_host && s.standby_primary_slot_name ? { slotName: s.standby_primary_slot_name } : {}),
      fromArchive: s.s3_wal_path ? { s3: { ...cfg.s3, bucket: splitS3Url(s.s3_wal_path).bucket }, walPrefix: s.s3_wal_path } : undefined,
    };
    const dir = clusterDir(cfg.dataDir, name);
    const want = standbyClusterSection(spec, walgScriptPaths(dir), null);
    const info = region.getCluster(name)!;
    type Section = { host?: string; port?: number | string; restore_command?: string; primary_slot_name?: string } | null;
    let found: { have: Section; rest: string } | null = null;
    for (const m of info.members) {
      const r = (await fetch(`http://127.0.0.1:${m.restPort}/config`).then((x) => (x.ok ? x.json() : null), () => null)) as { standby_cluster?: Section } | null;
      if (r) {
        found = { have: r.standby_cluster ?? null, rest: `http://127.0.0.1:${m.restPort}` };
        break;
      }
    }
    if (!found) return;
    const { have, rest } = found;
    if (have && have.host === want.host && String(have.port) === String(want.port) && have.restore_command === want.restore_command &&
      (have.primary_slot_name ?? null) === (want.primary_slot_name ?? null)) return;
    if (spec.fromArchive) {
      const u = lookupUser(runAsOf(region));
      writeWalgFiles(dir, { uid: u.uid, gid: u.gid }, null, { env: await walgEnv(spec.fromArchive.s3, spec.fromArchive.walPrefix), backupName: null });
    }
    await withRegionLock(cfg.dataDir, async () => {
      const fresh = region.getCluster(name)!;
      writeClusterFile(cfg.dataDir, { ...fresh, standby: spec, bootstrapBackup: null });
    });
    const patch = (body: unknown) => fetch(`${rest}/config`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (have) await patch({ standby_cluster: null });
    await patch({ standby_cluster: want });
  }

  private async syncPatroniSlots(ns: string, region: LocalRegion, pg: PostgresqlObject, leader: string | null): Promise<void> {
    const info = region.getCluster(pg.metadata.name)!;
    const via = info.members.find((m) => m.name === leader) ?? info.members[0];
    await syncPatroniSlots(this.replicationSlots, `${ns}/${pg.metadata.name}@${pg.metadata.uid}`, pg, `http://127.0.0.1:${via.restPort}`);
  }

  /** The pod's "container": a shim that runs Spilo's commands against the member backing it. */
  private writeShim(ns: string, region: LocalRegion, cluster: string, member: string): void {
    const info = region.getCluster(cluster)!;
    const m = info.members.find((x) => x.name === member)!;
    const p = region.memberPaths(cluster, member);
    const shim = join(this.spec.dir, 'shims', ns, member);
    mkdirSync(join(this.spec.dir, 'shims', ns), { recursive: true });
    const asPg = (cmd: string) => `runuser -u postgres -- ${cmd}`;
    writeFileSync(shim, `#!/bin/bash
# Stand-in container of pod ${ns}/${member}: Spilo's commands, run against sandbox member ${member} of ${cluster}.
set -u
export LC_ALL=C
case "$*" in
  ${shq(SPILO_BACKUP_COMMAND.join(' '))})
    # Like Spilo's postgres_backup.sh: no backup (and exit 0) when the node is in recovery.
    rec=$(${asPg(`${shq(join(pgBinDir(), 'psql'))} -h ${shq(p.socketDir)} -p ${m.pgPort} -U postgres -d postgres -Atc 'select pg_is_in_recovery()'`)})
    if [ "$rec" != f ]; then echo "Not a primary (in recovery: $rec): skipping the backup"; exit 0; fi
    cd ${shq(p.memberDir)} && exec ${asPg(`env PGHOST=${shq(p.socketDir)} PGPORT=${m.pgPort} PGUSER=postgres PGDATABASE=postgres ${shq(walgScriptPaths(clusterDir(this.spec.regions[ns].dataDir, cluster)).archive)} backup-push ${shq(m.dataDir)}`)} ;;
  'pg_ctl stop -m fast -w -D /home/postgres/pgdata/pgroot/data')
    exec ${asPg(`${shq(join(pgBinDir(), 'pg_ctl'))} stop -m fast -w -D ${shq(m.dataDir)}`)} ;;
  'pg_controldata /home/postgres/pgdata/pgroot/data')
    exec ${asPg(`${shq(join(pgBinDir(), 'pg_controldata'))} ${shq(m.dataDir)}`)} ;;
  'ls /home/postgres/pgdata/pgroot/data/pg_wal')
    exec ls ${shq(join(m.dataDir, 'pg_wal'))} ;;
  'pg_waldump '*|'base64 -w0 /home/postgres/pgdata/pgroot/data/pg_wal/'*)
    # Spilo's PGDATA is this member's data directory here.
    spilo=/home/postgres/pgdata/pgroot/data
    args=("\${@//"$spilo"/${m.dataDir}}")
    if [ "$1" = pg_waldump ]; then exec ${asPg(`${shq(join(pgBinDir(), 'pg_waldump'))} "\${args[@]:1}"`)}; fi
    exec "\${args[@]}" ;;
  *) echo "stand-in pod ${ns}/${member}: command not supported: $*" >&2; exit 127 ;;
esac
`);
    chmodSync(shim, 0o755);
    // The pod's log: Spilo's Patroni logs to the container's stdout, read through pods/log.
    this.pods[`${ns}/${member}`] = { shim, log: p.logFile };
    writeFileSync(this.podsFile, JSON.stringify(this.pods, null, 2) + '\n');
  }

  /**
   * numberOfInstances 0, as the operator does it: the StatefulSet scaled to 0, its pods gone (their members' Patroni
   * and Postgres stopped), the volumes (data directories) kept, and kept so on every sync; back to N, the members
   * start again and the pods come back. True while the cluster is scaled to 0 (nothing else to sync).
   */
  private async syncScale(ns: string, region: LocalRegion, pg: PostgresqlObject): Promise<boolean> {
    const name = pg.metadata.name;
    const key = `${ns}/${name}`;
    const info = region.getCluster(name)!;
    if (pg.spec.numberOfInstances === 0) {
      await this.must('PATCH', `/apis/apps/v1/namespaces/${ns}/statefulsets/${name}`, { spec: { replicas: 0 } }, 'application/merge-patch+json');
      for (const m of info.members) {
        if (!this.pods[`${ns}/${m.name}`]) continue;
        await this.must('DELETE', `/api/v1/namespaces/${ns}/pods/${m.name}?gracePeriodSeconds=0`);
        delete this.pods[`${ns}/${m.name}`];
      }
      writeFileSync(this.podsFile, JSON.stringify(this.pods, null, 2) + '\n');
      if (!this.scaledDown.has(key)) {
        await region.stopCluster(name);
        this.scaledDown.add(key);
      }
      return true;
    }
    if (this.scaledDown.has(key)) {
      await this.must('PATCH', `/apis/apps/v1/namespaces/${ns}/statefulsets/${name}`, { spec: { replicas: pg.spec.numberOfInstances } }, 'application/merge-patch+json');
      await region.startCluster(name);
      this.scaledDown.delete(key);
    }
    return false;
  }

  private async deleteChildren(ns: string, region: LocalRegion, name: string): Promise<void> {
    const info = region.getCluster(name);
    for (const m of info?.members ?? []) {
      // Grace period 0: a real kubelet confirms a pod's end once its containers stop; none runs here to do it.
      await this.must('DELETE', `/api/v1/namespaces/${ns}/pods/${m.name}?gracePeriodSeconds=0`);
      delete this.pods[`${ns}/${m.name}`];
    }
    writeFileSync(this.podsFile, JSON.stringify(this.pods, null, 2) + '\n');
    await this.must('DELETE', `/apis/apps/v1/namespaces/${ns}/statefulsets/${name}`);
    await this.must('DELETE', `/api/v1/namespaces/${ns}/services/${name}`);
    await region.deleteCluster(name);
  }
}
