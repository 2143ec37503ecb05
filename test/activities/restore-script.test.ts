// The standby's restore_command (restoreScript, written by writeWalgFiles) with the real WAL-G against the test sandbox's S3: what Postgres
// gets back for a segment that is there, one that is not (wal-fetch exit 74 -> 1), and an S3 that cannot be reached
// (never "not there" from the archive; 126 once a promotion is pending).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastArchivedWal } from '../../activities/s3/backup-catalogue';
import type { ArchiveLocation } from '../../activities/sites/site-driver';
import { walgEnv, walgScriptPaths, writeWalgFiles } from '../../activities/sites/local/walg-env';
import { driverOf } from '../helpers/clusters';

const CLUSTER = 'eu/acid-demo';

describe('restore_command wrapper on WAL-G (real S3 of the test sandbox)', () => {
  let archive: ArchiveLocation;
  let dir: string;
  let segment: string;

  /** Writes the source env and restore.sh as a standby cluster gets them, then runs `restore.sh <name> pg_wal/...`. */
  function runRestore(env: Record<string, string>, name: string, extra: Record<string, string> = {}) {
    writeWalgFiles(dir, { uid: process.getuid!(), gid: process.getgid!() }, null, { env, backupName: null });
    const dest = join(dir, 'pg_wal', 'RECOVERYXLOG');
    rmSync(dest, { force: true });
    const r = spawnSync(walgScriptPaths(dir).restore, [name, 'pg_wal/RECOVERYXLOG'], {
      cwd: dir, env: { PATH: process.env.PATH, HOME: dir, ...extra }, encoding: 'utf8', timeout: 120_000,
    });
    return { status: r.status, stderr: r.stderr, dest };
  }

  beforeAll(async () => {
    const { driver, cluster } = driverOf(CLUSTER);
    archive = (await driver.describeCluster(cluster))!.archive;
    const newest = await lastArchivedWal(archive.s3, archive.walPrefix);
    expect(newest).not.toBeNull(); // the global setup archived WAL and took a base backup of the demo source
    segment = newest!.segment;
    dir = mkdtempSync(join(tmpdir(), 'restore-script-'));
    mkdirSync(join(dir, 'pg_wal'));
    mkdirSync(join(dir, 'walg'));
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('restores an archived segment (exit 0) and leaves no wal-prefetch behind', async () => {
    const r = runRestore(await walgEnv(archive.s3, archive.walPrefix), segment);
    expect(r.status).toBe(0);
    expect(readFileSync(r.dest).length).toBe(16 * 1024 * 1024);
    // WAL-G starts its wal-prefetch child before wal-fetch returns, sharing the script's stderr: spawnSync returns
    // only once that child has exited too, and it leaves its folder pg_wal/.wal-g/prefetch behind.
    expect(existsSync(join(dir, 'pg_wal', '.wal-g'))).toBe(false);
  });

  it('answers 1, without retrying, for a segment the archive does not hold (wal-fetch exit 74)', async () => {
    const absent = `${segment.slice(0, 8)}00000000000000FF`;
    const r = runRestore(await walgEnv(archive.s3, archive.walPrefix), absent);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`Archive '${absent}' does not exist`);
    expect(r.stderr).not.toContain('NOT end of archive');
    expect(existsSync(r.dest)).toBe(false);
  });

  it('never reports an unreachable S3 as "not in the archive": 1 after its attempts, 126 with a promotion pending', async () => {
    // A port nothing listens on: WAL-G's requests are refused, not answered.
    const env = { ...(await walgEnv(archive.s3, archive.walPrefix)), AWS_ENDPOINT: 'http://127.0.0.1:9' };
    const r = runRestore(env, segment, { WALG_RESTORE_ATTEMPTS: '2', WALG_RESTORE_TIMEOUT: '20' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`wal-fetch ${segment} failed with exit 1, attempt 1 of 2 (S3 or network problem, NOT end of archive)`);
    expect(r.stderr).toContain('reported as not available yet (exit 1); the standby stays in recovery');

    writeFileSync(join(dir, 'promote'), '');
    try {
      const p = runRestore(env, segment, { WALG_RESTORE_ATTEMPTS: '1', WALG_RESTORE_TIMEOUT: '20' });
      expect(p.status).toBe(126);
      expect(p.stderr).toContain('while a promotion is pending: aborting recovery (exit 126)');
    } finally {
      rmSync(join(dir, 'promote'), { force: true });
    }
  });
});
