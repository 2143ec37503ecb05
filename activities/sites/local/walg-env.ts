// WAL-G environments and wrapper scripts, mirroring Spilo: /run/etc/wal-e.d/env (the cluster's own archive,
// used by archive_command and backup-push) and the STANDBY_* env dir (the source's archive, used by
// restore_command and the standby leader's backup-fetch). Env files hold S3 keys: 0600, owned by postgres.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { S3ArchiveConfig } from '../sites-file';
import { BadInputError } from '../../../workflows/contracts/errors';
import { resolveS3Credentials } from './s3-server';
import { type Owner, shq, writeFileAtomic } from './fs-util';
import { CHILD_PATH, walgBin } from './tools';
import { lookupUser } from './processes';

export function walPrefixFor(s3: S3ArchiveConfig, cluster: string, uid: string, pgVersion: number): string {
  const scope = s3.scopePrefix ? `${s3.scopePrefix.replace(/^\/+|\/+$/g, '')}/` : '';
  return `s3://${s3.bucket}/${scope}${cluster}/${uid}/wal/${pgVersion}`;
}

export function parseS3Url(url: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+?)\/*$/.exec(url);
  if (!m) throw new BadInputError(`not an s3://bucket/prefix URL: ${url}`);
  return { bucket: m[1], key: m[2] };
}

/**
 * The environment WAL-G needs to reach `prefix` with the site's S3 settings, in Spilo's names (its
 * /run/etc/wal-e.d/env), with lz4 (WAL-G's default compression) named explicitly. Holds secrets: never log it.
 * WALG_S3_MAX_RETRIES is 10, not WAL-G's 15: it retries a refused, reset or timed-out connection with pauses that
 * double from 30-60 ms up to 300 s, so 15 retries keep one request failing for about 13 minutes, and a backup-push
 * or wal-push against a dead S3 reports nothing that long. 10 retries still ride out a blip and give up in 30-60 s
 * (43 s measured). A stalled S3 (connected, never answering) makes WAL-G wait without end: it has no request
 * timeout, so the wrappers' `timeout` (and the runbooks' own limits for backup-push) bound it.
 */
export async function walgEnv(s3: S3ArchiveConfig, prefix: string): Promise<Record<string, string>> {
  const creds = await resolveS3Credentials(s3);
  const env: Record<string, string> = {
    WALG_S3_PREFIX: prefix,
    WALG_COMPRESSION_METHOD: 'lz4',
    WALG_S3_MAX_RETRIES: '10',
    AWS_REGION: s3.region,
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
  };
  if (creds.sessionToken) env.AWS_SESSION_TOKEN = creds.sessionToken;
  if (s3.endpoint) env.AWS_ENDPOINT = s3.endpoint;
  if (s3.forcePathStyle) env.AWS_S3_FORCE_PATH_STYLE = 'true';
  return env;
}

function envFileText(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${shq(v)}`).join('\n') + '\n';
}

export interface WalgScripts {
  /** `<walg-archive.sh> <wal-g args>`: wal-g with the cluster's own archive env. */
  archive: string;
  /** restore_command wrapper: `<restore.sh> %f %p`. */
  restore: string;
  /** create_replica_method command for the standby leader. */
  backupFetch: string;
}

export function walgScriptPaths(clusterDir: string): WalgScripts {
  const d = join(clusterDir, 'walg');
  return { archive: join(d, 'walg-archive.sh'), restore: join(d, 'restore.sh'), backupFetch: join(d, 'backup-fetch.sh') };
}

/** Writes env files and wrappers; returns true if anything changed on disk. */
export function writeWalgFiles(
  clusterDir: string,
  owner: Owner,
  own: Record<string, string> | null,
  /** The source archive; backupName null for a cluster demoted onto a new source (it keeps its own data). */
  source: { env: Record<string, string>; backupName: string | null } | null,
): boolean {
  const d = join(clusterDir, 'walg');
  const p = walgScriptPaths(clusterDir);
  if (!own && !source) return false;
  const walg = shq(walgBin());
  let changed = false;
  const w = (file: string, text: string, mode: number) => {
    changed = writeFileAtomic(file, text, mode, owner) || changed;
  };
  if (own) {
    w(join(d, 'archive.env'), envFileText(own), 0o600);
    w(p.archive, [
      '#!/bin/sh',
      '# WAL-G against this cluster\'s OWN prefix (archive_command, backup-push). Bounded: a hung S3 must not',
      '# hang the archiver forever.',
      `set -a; . ${shq(join(d, 'archive.env'))}; set +a`,
      `exec timeout -k 10 \${WALG_TIMEOUT:-600} ${walg} "$@"`,
      '',
    ].join('\n'), 0o700);
  }
  if (source) {
    w(join(d, 'standby.env'), envFileText(source.env), 0o600);
    w(p.restore, restoreScript(walg, join(d, 'standby.env')), 0o700);
    if (source.backupName === null) {
      // A backup-fetch pinned to a backup of an earlier source would restore the wrong cluster: none at all.
      if (existsSync(p.backupFetch)) {
        rmSync(p.backupFetch);
        changed = true;
      }
    } else {
      const backupName = source.backupName;
      w(p.backupFetch, [
        '#!/bin/sh',
        '# create_replica_method of the standby leader: a base backup of the SOURCE archive, pinned by name when',
        '# the cluster was created (LATEST is chosen by modification time and can pick a stray timeline).',
        'datadir=',
        'for a in "$@"; do case "$a" in --datadir=*) datadir="${a#--datadir=}";; esac; done',
        '[ -n "$datadir" ] || { echo "backup-fetch: no --datadir given" >&2; exit 1; }',
        `set -a; . ${shq(join(d, 'standby.env'))}; set +a`,
        `${walg} backup-fetch "$datadir" ${shq(backupName)} || exit $?`,
        'chmod 0700 "$datadir"',
        '# The source\'s cached DCS config came with the backup; it must not leak into this cluster.',
        'rm -f "$datadir/patroni.dynamic.json"',
        'exit 0',
        '',
      ].join('\n'), 0o700);
    }
  }
  return changed;
}

/**
 * restore_command of a standby cluster: WAL from the SOURCE prefix. Only wal-fetch's exit 74 (WAL-G's EX_IOERR, which
 * it uses for "not in the archive" and nothing else) becomes 1, which Postgres reads as "not there": in standby mode
 * "stream or retry later", once a promotion is requested "end of WAL, finish recovery". Any other failure (S3 down or
 * stalled, network, credentials) is NOT end of archive: retried here with backoff (bounded, every attempt logged as
 * such), and when the attempts run out:
 *   - no promotion pending: exit 1, so Postgres retries in wal_retrieve_retry_interval and may stream meanwhile;
 *     it cannot end recovery on it, since only a promotion does (>125 would make the startup process exit FATAL
 *     and crash-loop a healthy streaming standby over an S3 outage);
 *   - a promotion pending (the `promote` signal file in the data directory, the script's cwd): exit 126, which
 *     aborts recovery (PostgreSQL 15 treats exit codes >125 as fatal) rather than promote short of the archive:
 *     the server stops in recovery. Patroni (3.0.2, measured) then restarts it WITHOUT this restore_command when
 *     the promotion removed `standby_cluster`, and promotes it on the WAL it has: a promotion by hand during an S3
 *     outage still ends short (docs/OPERATIONS.md). The runbooks do not rely on this: promote waits until the
 *     standby replayed the archive's newest segment.
 * For wal-fetch only, two WAL-G settings differ from its defaults:
 *   - prefetch off (WALG_DOWNLOAD_CONCURRENCY=1): it leaves a `wal-prefetch` child behind that reads S3 outside these
 *     bounds after the script has returned, and writes into pg_wal/.wal-g of a data directory a reseed may be moving
 *     aside; every archive read of a standby goes through the checks above instead;
 *   - WALG_S3_MAX_RETRIES=2 (default 15, with doubling pauses): the attempts here are the retries, each one logged;
 *     with WAL-G's own an unreachable S3 would use up every attempt's timeout and one call would take 90 s.
 * WAL-G has no S3 request timeout of its own: `timeout` bounds a stalled S3, per attempt.
 */
export function restoreScript(walg: string, envFile: string): string {
  return [
    '#!/bin/sh',
    '# restore_command of a standby cluster (see restoreScript in walg-env.ts for the exit codes and why).',
    `set -a; . ${shq(envFile)}; set +a`,
    'attempts=${WALG_RESTORE_ATTEMPTS:-4}',
    'n=1; pause=1',
    'while :; do',
    `  WALG_DOWNLOAD_CONCURRENCY=1 WALG_S3_MAX_RETRIES=2 timeout -k 5 \${WALG_RESTORE_TIMEOUT:-20} ${walg} wal-fetch "$1" "$2"`,
    '  rc=$?',
    '  [ $rc -eq 0 ] && exit 0',
    '  [ $rc -eq 74 ] && exit 1',
    '  echo "restore_command: wal-g wal-fetch $1 failed with exit $rc, attempt $n of $attempts (S3 or network problem, NOT end of archive)" >&2',
    '  [ $n -ge $attempts ] && break',
    '  sleep $pause; n=$((n + 1)); pause=$((pause * 2))',
    'done',
    'if [ -f promote ]; then',
    '  echo "restore_command: $1 unreadable after $attempts attempts while a promotion is pending: aborting recovery (exit 126) instead of ending it short of the archive" >&2',
    '  exit 126',
    'fi',
    'echo "restore_command: $1 unreadable after $attempts attempts: reported as not available yet (exit 1); the standby stays in recovery" >&2',
    'exit 1',
    '',
  ].join('\n');
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  runAs?: string;
  cwd?: string;
  timeoutMs?: number;
  /** Each output line (WAL-G prints progress on stderr); never receives the environment. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /**
   * Stops the command when aborted (e.g. activity cancellation): SIGTERM to its whole process group, SIGKILL
   * after a grace period. With a signal the command runs in a process group of its own.
   */
  signal?: AbortSignal;
}

// Why the group and not just the child: the wrappers exec `timeout`, which forwards SIGTERM to WAL-G only once
// its fork() has returned; a SIGTERM just before that makes `timeout` exit alone, and WAL-G would run on.
const STOP_GRACE_MS = 15_000;

const KEEP = 256 * 1024;

/** Runs a command to completion, keeping the last 256 KiB of each stream. */
export function runCommand(cmd: string, args: string[], env: Record<string, string>, opts: RunOptions = {}): Promise<RunResult> {
  const user = opts.runAs ? lookupUser(opts.runAs) : undefined;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      env: { PATH: CHILD_PATH, LANG: 'C.UTF-8', HOME: user?.home ?? '/root', ...env },
      cwd: opts.cwd ?? '/',
      uid: user?.uid,
      gid: user?.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: !!opts.signal,
    });
    const out = { stdout: '', stderr: '' };
    const partial = { stdout: '', stderr: '' };
    const feed = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const s = chunk.toString('utf8');
      out[stream] = (out[stream] + s).slice(-KEEP);
      if (!opts.onLine) return;
      const lines = (partial[stream] + s).split('\n');
      partial[stream] = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) opts.onLine(l, stream);
    };
    child.stdout.on('data', feed('stdout'));
    child.stderr.on('data', feed('stderr'));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // The group is already gone.
      }
    };
    const stop = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), STOP_GRACE_MS);
    };
    if (opts.signal?.aborted) stop();
    else opts.signal?.addEventListener('abort', stop, { once: true });
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', stop);
    };
    child.on('error', (err) => {
      cleanup();
      reject(err);
    });
    child.on('close', (code, signal) => {
      cleanup();
      resolvePromise({ exitCode: code ?? (signal ? 128 : 1), ...out });
    });
  });
}

export interface WalgBackup {
  name: string;
  timeline: number;
  startLsn: bigint;
  finishLsn: bigint;
  time: string;
  finishTime: string | null;
  /** Marked with `backup-mark`: WAL-G's delete keeps it and its WAL. */
  permanent: boolean;
}

/**
 * Complete backups (with a sentinel) as WAL-G sees them with exactly this env.
 * Throws on any WAL-G failure; an empty archive is an empty list.
 */
export async function listBackups(env: Record<string, string>): Promise<WalgBackup[]> {
  const r = await runCommand(walgBin(), ['backup-list', '--detail', '--json'], env, { timeoutMs: 60_000 });
  if (r.exitCode !== 0) {
    if (/No backups found/i.test(r.stderr + r.stdout)) return [];
    throw new Error(`wal-g backup-list failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  const text = r.stdout.trim();
  if (!text || text === 'null') return [];
  const rows = JSON.parse(text) as Array<Record<string, unknown>>;
  return rows.map((b) => ({
    name: String(b.backup_name),
    timeline: parseInt(String(b.wal_file_name ?? '').slice(0, 8), 16) || 0,
    startLsn: BigInt(Number(b.start_lsn ?? 0)),
    finishLsn: BigInt(Number(b.finish_lsn ?? 0)),
    time: String(b.time ?? ''),
    finishTime: typeof b.finish_time === 'string' ? b.finish_time : null,
    permanent: b.is_permanent === true,
  }));
}

/** The newest backup by timeline, then LSN: not by modification time (see the LATEST pitfall). */
export function newestBackup(backups: WalgBackup[]): WalgBackup | null {
  let best: WalgBackup | null = null;
  for (const b of backups) {
    if (!best || b.timeline > best.timeline || (b.timeline === best.timeline && b.finishLsn > best.finishLsn)) best = b;
  }
  return best;
}
