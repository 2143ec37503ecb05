// Postgres itself, beneath Patroni: is a postmaster running, stop it fast, read pg_controldata, and does a port
// still accept connections. Fencing needs these because a paused (or dead) Patroni neither stops nor reports
// Postgres, and only the control file says whether a shutdown was clean and where its last checkpoint is.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pgBinDir } from './tools';
import { runCommand } from './walg-env';

/** The live postmaster of `dataDir`, or null. A stale postmaster.pid (pid reused, zombie) reads as null. */
export function postmasterPid(dataDir: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    if (state === 'Z' || state === 'X') return null;
    // Patroni starts the postmaster as `postgres -D <dataDir> ...`: a reused pid does not name this data dir.
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmd.some((a) => a.endsWith('postgres')) && cmd.includes(dataDir) ? pid : null;
  } catch {
    return null;
  }
}

export interface ControlData {
  /** `shut down`, `shut down in recovery`, `in production`, `in archive recovery`, `in crash recovery`, ... */
  state: string;
  /** "Latest checkpoint location": for a primary shut down cleanly, the start of its shutdown checkpoint record. */
  checkpointLsn: string | null;
  redoLsn: string | null;
  timeline: number | null;
  /** A 64-bit number: kept as its digits, a JS number would round it. */
  systemIdentifier: string | null;
  /** pg_rewind needs one of these two (or Patroni reinitialises instead). */
  walLogHints: boolean | null;
  dataChecksums: boolean | null;
}

export function parseControlData(text: string): ControlData {
  const field = (name: string): string | null => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}:`));
    return line ? line.slice(name.length + 1).trim() : null;
  };
  const tli = field("Latest checkpoint's TimeLineID");
  const hints = field('wal_log_hints setting');
  const checksums = field('Data page checksum version');
  return {
    state: field('Database cluster state') ?? 'unknown',
    checkpointLsn: field('Latest checkpoint location'),
    redoLsn: field("Latest checkpoint's REDO location"),
    timeline: tli ? Number(tli) : null,
    systemIdentifier: field('Database system identifier'),
    walLogHints: hints === null ? null : hints === 'on',
    // Version 0 means checksums off; any other version means on.
    dataChecksums: checksums === null ? null : checksums !== '0',
  };
}

/** pg_controldata as the cluster's OS user; null when the data dir has no readable control file. */
export async function readControlData(dataDir: string, runAs: string): Promise<ControlData | null> {
  const r = await runCommand(join(pgBinDir(), 'pg_controldata'), ['-D', dataDir], { LC_ALL: 'C' }, { runAs, timeoutMs: 30_000 })
    .catch(() => null);
  if (!r || r.exitCode !== 0) return null;
  return parseControlData(r.stdout);
}

export interface StopResult {
  /** The postmaster was running and is gone now. */
  stopped: boolean;
  /** 'fast' normally; 'immediate' when a fast shutdown did not finish in time (no shutdown checkpoint then). */
  mode: 'fast' | 'immediate' | null;
  output: string;
}

/**
 * `pg_ctl stop -m fast` as the cluster's OS user: a fast shutdown writes a shutdown checkpoint and waits for the
 * walsenders to send it, so a streaming standby receives everything. Escalates to immediate after the timeout,
 * because a fence that leaves a primary running is worse than a crash-recovery on restart.
 */
export async function pgCtlStop(dataDir: string, runAs: string, timeoutSec = 60): Promise<StopResult> {
  if (postmasterPid(dataDir) === null) return { stopped: false, mode: null, output: 'not running' };
  const pgCtl = join(pgBinDir(), 'pg_ctl');
  const run = (mode: 'fast' | 'immediate', t: number) =>
    runCommand(pgCtl, ['stop', '-D', dataDir, '-m', mode, '-w', '-t', String(t)], { LC_ALL: 'C' }, {
      runAs,
      timeoutMs: (t + 15) * 1000,
    });
  const fast = await run('fast', timeoutSec);
  if (postmasterPid(dataDir) === null) return { stopped: true, mode: 'fast', output: (fast.stdout + fast.stderr).trim() };
  const imm = await run('immediate', 30);
  const gone = postmasterPid(dataDir) === null;
  return { stopped: gone, mode: gone ? 'immediate' : null, output: (fast.stderr + imm.stdout + imm.stderr).trim() };
}

/** What a TCP connect to 127.0.0.1:port finds: `refused` is the only proof that nothing listens there. */
export function probePort(port: number, timeoutMs = 2_000): Promise<'refused' | 'accepting' | 'unknown'> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    const done = (r: 'refused' | 'accepting' | 'unknown') => {
      sock.removeAllListeners();
      sock.destroy();
      resolve(r);
    };
    sock.setTimeout(timeoutMs, () => done('unknown'));
    sock.once('connect', () => done('accepting'));
    sock.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'unknown'));
  });
}
