// Real Patroni/Postgres 15/etcd/WAL-G/versitygw on loopback ports 27000-27999: a source cluster archiving to S3,
// a standby cluster restored from that archive in a second region, and a streaming standby.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Client } from 'pg';
import { PreconditionFailedError } from '../../workflows/contracts/errors';
import type { LocalRegion } from '../../activities/sites/local/region';
import { listKeys } from '../../activities/sites/local/s3-server';
import { privateRegions } from '../helpers/private-regions';
import { isAlive, startProcess, stopProcess } from '../../activities/sites/local/processes';
import { etcdCountPrefix } from '../../activities/sites/local/etcd';

const regions = privateRegions('local-region', 27000);
const east = regions.driverFor('east', 27100);
const west = regions.driverFor('west', 27200);
const { tmp, log } = regions;
const a = east.region;
const b = west.region;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sql<T extends Record<string, unknown>>(region: LocalRegion, cluster: string, text: string): Promise<T[]> {
  const c = new Client(await region.pgConfig(cluster));
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

async function waitForRow(region: LocalRegion, cluster: string, marker: string, timeoutMs = 120_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    try {
      const rows = await sql<{ n: string }>(region, cluster, `select count(*) as n from marker where note = '${marker}'`);
      if (Number(rows[0].n) === 1) return Date.now() - t0;
    } catch {
      // the table may not have been replayed yet
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`${marker} did not reach ${cluster} in ${timeoutMs} ms`);
    await sleep(500);
  }
}

async function copySecrets(from: LocalRegion, src: string, to: LocalRegion, dst: string): Promise<void> {
  for (const u of from.listSecretUsers(src)) {
    const v = await from.readSecret(src, u);
    if (v) await to.writeSecret(dst, u, v);
  }
}

beforeAll(() => regions.start([east, west]));

afterAll(async () => {
  await regions.stop([east, west]);
  if (!process.env.KEEP_LOCAL_REGION) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
});

describe('processes', () => {
  test('start is idempotent, pid reuse is detected, stop escalates', async () => {
    const pidFile = join(tmp, 'sleep.pid');
    const spec = { name: 'sleep', cmd: '/bin/sh', args: ['-c', 'trap "" TERM; sleep 300'], env: {}, cwd: tmp, logFile: join(tmp, 'sleep.log'), pidFile };
    expect((await startProcess(spec)).changed).toBe(true);
    expect((await startProcess(spec)).changed).toBe(false);
    expect(isAlive(pidFile)).toBe(true);
    const r = await stopProcess(pidFile, { timeoutMs: 500 });
    expect(r).toEqual({ changed: true, killed: true });
    expect(isAlive(pidFile)).toBe(false);
    expect((await stopProcess(pidFile)).changed).toBe(false);
    // A pid file naming a live process that is not the one started (pid reuse) must read as dead.
    writeFileSync(pidFile, JSON.stringify({ pid: process.pid, startTime: '1', args: ['x'], name: 'x' }));
    expect(isAlive(pidFile)).toBe(false);
  });
});

describe('local regions', () => {
  let backupName = '';
  let srcUid = '';

  test('source cluster with WAL-G archive and a base backup', async () => {
    let t0 = Date.now();
    const { changed, cluster } = await a.createCluster({ name: 'acid-src', pgVersion: 15, archive: true, users: ['app'] });
    log(`createCluster acid-src (2 members): ${Date.now() - t0} ms`);
    expect(changed).toBe(true);
    srcUid = cluster.uid;
    expect(cluster.archivePrefix).toBe(`s3://dr-east/spilo/acid-src/${cluster.uid}/wal/15`);
    expect(a.listSecretUsers('acid-src')).toEqual(['app', 'postgres', 'standby']);
    const leader = await a.leaderMember('acid-src');
    expect(leader?.role).toBe('leader');
    const view = await a.waitClusterReady('acid-src');
    expect(view.members.filter((m) => m.role === 'replica')).toHaveLength(1);
    const roles = await sql<{ rolname: string }>(a, 'acid-src', "select rolname from pg_roles where rolname in ('app','standby')");
    expect(roles.map((r) => r.rolname).sort()).toEqual(['app', 'standby']);

    await sql(a, 'acid-src', 'create table marker(id serial primary key, note text not null)');
    await sql(a, 'acid-src', "insert into marker(note) select 'before-backup-' || g from generate_series(1, 1000) g");
    t0 = Date.now();
    let beats = 0;
    const r = await a.backupPush('acid-src', { onProgress: () => beats++, timeoutMs: 300_000 });
    log(`backupPush: ${Date.now() - t0} ms, exit ${r.exitCode}, ${r.backupName}, ${beats} progress calls`);
    if (r.exitCode !== 0) log(`backup-push stderr:\n${r.stderr.slice(-3000)}`);
    expect(r.exitCode).toBe(0);
    expect(r.backupName).toMatch(/^base_[0-9A-F]{24}$/);
    backupName = r.backupName as string;
    const keys = await listKeys(a.cfg.s3, 'dr-east', `spilo/acid-src/${cluster.uid}/wal/15/`);
    expect(keys).toContain(`spilo/acid-src/${cluster.uid}/wal/15/basebackups_005/${backupName}_backup_stop_sentinel.json`);
    expect(keys.some((k) => /\/wal_005\/[0-9A-F]{24}\.lz4$/.test(k))).toBe(true);
  });

  test('a standby without copied secrets is refused before anything is created', async () => {
    const spec = {
      name: 'acid-stb', pgVersion: 15 as const, archive: true,
      standby: { fromArchive: { s3: a.cfg.s3, walPrefix: `s3://dr-east/spilo/acid-src/${srcUid}/wal/15` } },
    };
    await expect(b.createCluster(spec)).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(b.createCluster(spec)).rejects.toThrow(/acid-stb\/postgres, acid-stb\/standby/);
    expect(b.getCluster('acid-stb')).toBeNull();
    expect(b.listClusters()).toEqual([]);
  });

  test('standby cluster from the archive in a second region', async () => {
    await copySecrets(a, 'acid-src', b, 'acid-stb');
    const t0 = Date.now();
    const { changed, cluster } = await b.createCluster({
      name: 'acid-stb', pgVersion: 15, archive: true,
      standby: { fromArchive: { s3: a.cfg.s3, walPrefix: `s3://dr-east/spilo/acid-src/${srcUid}/wal/15` } },
    }, { onProgress: (p) => log(`acid-stb ${p.phase}: ${p.detail}`) });
    log(`createCluster acid-stb (archive standby): ${Date.now() - t0} ms`);
    expect(changed).toBe(true);
    expect(cluster.bootstrapBackup).toBe(backupName);
    expect(cluster.uid).not.toBe(srcUid);
    expect(cluster.archivePrefix).toBe(`s3://dr-west/spilo/acid-stb/${cluster.uid}/wal/15`);
    const leader = await b.leaderMember('acid-stb');
    expect(leader?.role).toBe('standby_leader');
    const node = await (await fetch(`${leader?.restUrl}/patroni`)).json() as { role: string };
    expect(node.role).toBe('standby_leader');

    await sql(a, 'acid-src', "insert into marker(note) values ('after-backup')");
    await sql(a, 'acid-src', 'select pg_switch_wal()');
    const ms = await waitForRow(b, 'acid-stb', 'after-backup');
    log(`row after backup + pg_switch_wal visible on archive standby after ${ms} ms`);
    // The replica of the standby cluster streams from its standby leader.
    const view = await b.waitClusterReady('acid-stb');
    expect(view.members.map((m) => m.role).sort()).toEqual(['replica', 'standby_leader']);
    const replica = cluster.members.find((m) => m.name !== leader?.name);
    const c = new Client(await b.pgConfig('acid-stb', { member: replica?.name }));
    await c.connect();
    try {
      const t1 = Date.now();
      for (;;) {
        const rows = (await c.query("select count(*)::int as n from marker where note = 'after-backup'")).rows;
        if (rows[0].n === 1) break;
        if (Date.now() - t1 > 60_000) throw new Error('row not on the standby replica');
        await sleep(500);
      }
    } finally {
      await c.end();
    }
  });

  test('standby cluster streaming from the source leader', async () => {
    const src = await a.leaderMember('acid-src');
    // A wrong standby password is caught by a login against the source before anything is created.
    await copySecrets(a, 'acid-src', b, 'acid-bad');
    await b.writeSecret('acid-bad', 'standby', { username: 'standby', password: 'not-the-source-password' });
    await expect(b.createCluster({
      name: 'acid-bad', pgVersion: 15, archive: false,
      standby: { fromHost: { host: '127.0.0.1', port: src?.pgPort as number } },
    })).rejects.toThrow(/refuses user standby/);
    expect(b.getCluster('acid-bad')).toBeNull();

    await copySecrets(a, 'acid-src', b, 'acid-str');
    const t0 = Date.now();
    const { cluster } = await b.createCluster({
      name: 'acid-str', pgVersion: 15, archive: false,
      standby: { fromHost: { host: '127.0.0.1', port: src?.pgPort as number } },
    });
    log(`createCluster acid-str (streaming standby): ${Date.now() - t0} ms`);
    expect(cluster.archivePrefix).toBeNull();
    expect((await b.leaderMember('acid-str'))?.role).toBe('standby_leader');
    await sql(a, 'acid-src', "insert into marker(note) values ('streamed')");
    const ms = await waitForRow(b, 'acid-str', 'streamed', 30_000);
    log(`row visible on streaming standby after ${ms} ms`);
  });

  test('createCluster twice is a no-op', async () => {
    const again = await a.createCluster({ name: 'acid-src', pgVersion: 15, archive: true, users: ['app'] });
    expect(again.changed).toBe(false);
    const stb = await b.createCluster({
      name: 'acid-stb', pgVersion: 15, archive: true,
      standby: { fromArchive: { s3: a.cfg.s3, walPrefix: `s3://dr-east/spilo/acid-src/${srcUid}/wal/15` } },
    });
    expect(stb.changed).toBe(false);
    expect(b.listClusters().map((c) => c.name)).toEqual(['acid-stb', 'acid-str']);
    expect(b.listSecretUsers('acid-stb')).toEqual(['app', 'postgres', 'standby']);
  });

  test('stop and start keep roles and data', async () => {
    expect((await b.stopCluster('acid-str')).changed).toBe(true);
    expect((await b.stopCluster('acid-str')).changed).toBe(false);
    const info = b.getCluster('acid-str');
    const pm = spawn('pgrep', ['-f', info?.members[0].dataDir as string]);
    const out = await new Promise<string>((r) => { let s = ''; pm.stdout.on('data', (d) => (s += d)); pm.on('close', () => r(s)); });
    expect(out.trim()).toBe('');
    expect((await b.startCluster('acid-str')).changed).toBe(true);
    await b.waitClusterReady('acid-str');
    expect((await b.leaderMember('acid-str'))?.role).toBe('standby_leader');
    await waitForRow(b, 'acid-str', 'streamed', 30_000);
  });

  test('deleteCluster removes data and DCS keys, keeps secrets', async () => {
    const dir = join(b.cfg.dataDir, 'clusters', 'acid-str');
    expect(await etcdCountPrefix(b.cfg.etcd.clientPort, '/service/acid-str/')).toBeGreaterThan(0);
    expect((await b.deleteCluster('acid-str')).changed).toBe(true);
    expect((await b.deleteCluster('acid-str')).changed).toBe(false);
    expect(b.getCluster('acid-str')).toBeNull();
    expect(existsSync(dir)).toBe(false);
    expect(await etcdCountPrefix(b.cfg.etcd.clientPort, '/service/acid-str/')).toBe(0);
    expect(b.listSecretUsers('acid-str')).toEqual(['app', 'postgres', 'standby']);
  });
});
