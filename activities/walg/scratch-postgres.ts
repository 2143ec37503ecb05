// A throwaway Postgres for proving a backup by restore: a scratch directory of its own, a config of its own (the
// restored data directory's config came from the cluster and may archive, preload libraries or listen widely),
// a free loopback port and a socket in the scratch, trust only on that socket. It never archives: archive_mode is
// off in the only config file it reads, and postgresql.auto.conf from the backup is emptied.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as PgClient } from 'pg';
import { mkdirOwned, shq, writeFileAtomic, type Owner } from '../sites/local/fs-util';
import { lookupUser } from '../sites/local/processes';
import { restoreScript } from '../sites/local/walg-env';
import { CHILD_PATH, pgBinDir } from '../sites/local/tools';

export interface Scratch {
  root: string;
  dataDir: string;
  socketDir: string;
  logFile: string;
  /** The OS user the scratch belongs to and Postgres runs as; undefined when the worker is not root. */
  runAs?: string;
  owner?: Owner;
}

/** Name prefix of scratch directories: the per-run temp dir is `<tmp>/dr-restore-proof-<random>`. */
export const SCRATCH_PREFIX = 'dr-restore-proof-';

/** A fresh, empty scratch (0700, owned by the postgres OS user when the worker runs as root). */
export function makeScratch(osUser: string): Scratch {
  const root = mkdtempSync(join(tmpdir(), SCRATCH_PREFIX));
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? lookupUser(osUser) : undefined;
  mkdirOwned(root, 0o700, owner);
  const s: Scratch = {
    root, dataDir: join(root, 'data'), socketDir: join(root, 'sock'), logFile: join(root, 'postgres.log'),
    runAs: asRoot ? osUser : undefined, owner: owner ? { uid: owner.uid, gid: owner.gid } : undefined,
  };
  mkdirOwned(s.socketDir, 0o700, s.owner);
  return s;
}

export function removeScratch(s: Scratch): void {
  rmSync(s.root, { recursive: true, force: true });
}

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Writes the scratch's restore_command (wal-fetch from the cluster's archive, the env file 0600 in the scratch)
 * and its own config; prepares the restored data directory for a targeted recovery.
 */
export function prepareRecovery(s: Scratch, walg: string, walgEnv: Record<string, string>, targetLsn: string, port: number): string {
  const envFile = join(s.root, 'walg.env');
  writeFileAtomic(envFile, Object.entries(walgEnv).map(([k, v]) => `${k}=${shq(v)}`).join('\n') + '\n', 0o600, s.owner);
  const restore = join(s.root, 'restore.sh');
  writeFileAtomic(restore, restoreScript(shq(walg), envFile), 0o700, s.owner);
  writeFileAtomic(join(s.root, 'pg_hba.conf'), 'local all all trust\n', 0o600, s.owner);
  const conf = join(s.root, 'proof.conf');
  writeFileAtomic(conf, [
    `hba_file = '${join(s.root, 'pg_hba.conf')}'`,
    `ident_file = '${join(s.root, 'pg_hba.conf')}'`,
    "listen_addresses = '127.0.0.1'",
    `port = ${port}`,
    `unix_socket_directories = '${s.socketDir}'`,
    // Never archive anything from the scratch: it is a copy of the cluster, its WAL must not reach any archive.
    'archive_mode = off',
    "archive_command = ''",
    'wal_level = replica',
    'max_wal_senders = 0',
    // Not a hot standby: no parameter must match the primary's, queries start only after the promotion.
    'hot_standby = off',
    'max_connections = 20',
    'shared_buffers = 16MB',
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = on',
    "shared_preload_libraries = ''",
    `restore_command = '${restore} %f %p'`,
    `recovery_target_lsn = '${targetLsn}'`,
    'recovery_target_inclusive = true',
    "recovery_target_action = 'promote'",
    "recovery_target_timeline = 'latest'",
    'logging_collector = off',
    '',
  ].join('\n'), 0o600, s.owner);
  // The backup's own leftovers: Patroni's cached DCS config, ALTER SYSTEM settings, a standby signal.
  for (const f of ['patroni.dynamic.json', 'standby.signal', 'postmaster.pid', 'postmaster.opts']) rmSync(join(s.dataDir, f), { force: true });
  if (existsSync(join(s.dataDir, 'postgresql.auto.conf'))) writeFileAtomic(join(s.dataDir, 'postgresql.auto.conf'), '', 0o600, s.owner);
  writeFileAtomic(join(s.dataDir, 'recovery.signal'), '', 0o600, s.owner);
  return conf;
}

export interface RunningScratch {
  child: ChildProcess;
  exited: Promise<number | null>;
}

export function startScratchPostgres(s: Scratch, conf: string): RunningScratch {
  const user = s.runAs ? lookupUser(s.runAs) : undefined;
  const log = openSync(s.logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(join(pgBinDir(), 'postgres'), ['-D', s.dataDir, '-c', `config_file=${conf}`], {
      env: { PATH: CHILD_PATH, LANG: 'C.UTF-8', HOME: user?.home ?? s.root },
      cwd: s.dataDir, uid: user?.uid, gid: user?.gid, stdio: ['ignore', log, log], detached: true,
    });
  } finally {
    closeSync(log);
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  return { child, exited };
}

/** Fast shutdown, then immediate after a grace period; resolves once the postmaster is gone. */
export async function stopScratchPostgres(r: RunningScratch): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  r.child.kill('SIGINT');
  const timer = setTimeout(() => r.child.kill('SIGQUIT'), 20_000);
  await r.exited;
  clearTimeout(timer);
}

/** The last lines of the scratch's server log (restore_command messages name segments only, never secrets). */
export function logTail(s: Scratch, lines = 6): string {
  try {
    return readFileSync(s.logFile, 'utf8').split('\n').filter(Boolean).slice(-lines).join(' | ');
  } catch {
    return '(no server log)';
  }
}

export async function scratchClient(s: Scratch, port: number, database = 'postgres'): Promise<PgClient> {
  const client = new PgClient({ host: s.socketDir, port, user: 'postgres', database, connectionTimeoutMillis: 5000 });
  await client.connect();
  return client;
}

