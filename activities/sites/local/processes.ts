// Detached process supervision with pid files. The supervised servers (etcd, versitygw, Patroni) must outlive
// the worker that started them, so nothing here holds a handle on them: a pid file plus /proc is the only truth.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface StartProcessSpec {
  /** For messages only. */
  name: string;
  cmd: string;
  args: string[];
  /** The whole environment of the child: nothing is inherited implicitly (keeps secrets of the worker out). */
  env: Record<string, string>;
  cwd: string;
  logFile: string;
  pidFile: string;
  /** OS user to run as (the worker runs as root). */
  runAs?: string;
  /** How long the process must stay up after spawn to count as started (default 300 ms). */
  settleMs?: number;
}

interface PidRecord {
  pid: number;
  /** /proc/<pid>/stat starttime: unique per pid incarnation, so pid reuse cannot fool isAlive. */
  startTime: string;
  /** Arguments that must end /proc/<pid>/cmdline (interpreters may prefix the command itself). */
  args: string[];
  name: string;
}

export interface OsUser {
  uid: number;
  gid: number;
  home: string;
}

export function lookupUser(name: string): OsUser {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  if (!line) throw new Error(`OS user ${name} does not exist`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
}

function readProcStat(pid: number): { state: string; startTime: string } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm (field 2) may contain spaces and parentheses: fields are counted after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], startTime: rest[19] };
}

function readCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s, i, a) => i < a.length - 1 || s !== '');
  } catch {
    return [];
  }
}

function readPidRecord(pidFile: string): PidRecord | null {
  try {
    const rec = JSON.parse(readFileSync(pidFile, 'utf8')) as PidRecord;
    return Number.isInteger(rec.pid) && rec.pid > 0 ? rec : null;
  } catch {
    return null;
  }
}

function recordIsAlive(rec: PidRecord): boolean {
  const st = readProcStat(rec.pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  if (st.startTime !== rec.startTime) return false;
  const cmd = readCmdline(rec.pid);
  // Right after spawn the child may not have exec'ed yet: its cmdline is still node's, and starttime already
  // proves identity. Once exec'ed, the recorded args must end the cmdline.
  if (cmd.length === 0 || cmd[0] === process.execPath) return true;
  if (cmd.length < rec.args.length) return false;
  const tail = cmd.slice(cmd.length - rec.args.length);
  return tail.every((a, i) => a === rec.args[i]);
}

/** The pid of the live process recorded in pidFile, or null. */
export function alivePid(pidFile: string): number | null {
  const rec = readPidRecord(pidFile);
  return rec && recordIsAlive(rec) ? rec.pid : null;
}

export function isAlive(pidFile: string): boolean {
  return alivePid(pidFile) !== null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function startProcess(spec: StartProcessSpec): Promise<{ changed: boolean; pid: number }> {
  const running = alivePid(spec.pidFile);
  if (running !== null) return { changed: false, pid: running };

  mkdirSync(dirname(spec.logFile), { recursive: true });
  mkdirSync(dirname(spec.pidFile), { recursive: true });
  const user = spec.runAs ? lookupUser(spec.runAs) : undefined;
  const fd = openSync(spec.logFile, 'a', 0o640);
  let pid: number | undefined;
  try {
    const child = spawn(spec.cmd, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', fd, fd],
      uid: user?.uid,
      gid: user?.gid,
    });
    pid = child.pid;
    // Errors such as ENOENT arrive asynchronously; without a listener they would crash the worker.
    child.on('error', () => undefined);
    child.unref();
  } finally {
    closeSync(fd);
  }
  if (!pid) throw new Error(`${spec.name}: spawn of ${spec.cmd} failed (see ${spec.logFile})\n${tail(spec.logFile)}`);
  const st = readProcStat(pid);
  if (!st) throw new Error(`${spec.name}: exited immediately (see ${spec.logFile})\n${tail(spec.logFile)}`);
  const rec: PidRecord = { pid, startTime: st.startTime, args: spec.args, name: spec.name };
  const tmp = `${spec.pidFile}.tmp`;
  writeFileSync(tmp, JSON.stringify(rec) + '\n', { mode: 0o644 });
  renameSync(tmp, spec.pidFile);

  await sleep(spec.settleMs ?? 300);
  if (!recordIsAlive(rec)) {
    throw new Error(`${spec.name}: exited right after start (see ${spec.logFile})\n${tail(spec.logFile)}`);
  }
  return { changed: true, pid };
}

function signalProcess(pid: number, signal: NodeJS.Signals, group: boolean): void {
  try {
    process.kill(group ? -pid : pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function waitGone(rec: PidRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!recordIsAlive(rec)) return true;
    await sleep(100);
  }
  return !recordIsAlive(rec);
}

export interface StopOptions {
  signal?: NodeJS.Signals;
  timeoutMs?: number;
}

/** Signal, wait, then SIGKILL the whole process group (the child was started as a group leader). */
export async function stopProcess(
  pidFile: string,
  opts: StopOptions = {},
): Promise<{ changed: boolean; killed: boolean }> {
  const rec = readPidRecord(pidFile);
  if (!rec || !recordIsAlive(rec)) {
    rmSync(pidFile, { force: true });
    return { changed: false, killed: false };
  }
  signalProcess(rec.pid, opts.signal ?? 'SIGTERM', false);
  let killed = false;
  if (!(await waitGone(rec, opts.timeoutMs ?? 30_000))) {
    signalProcess(rec.pid, 'SIGKILL', true);
    killed = true;
    if (!(await waitGone(rec, 5_000))) throw new Error(`${rec.name} (pid ${rec.pid}) survived SIGKILL`);
  }
  rmSync(pidFile, { force: true });
  return { changed: true, killed };
}

/** For processes we did not start ourselves (a postmaster left behind by Patroni): pid only. */
export async function stopPid(pid: number, signal: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
  const st = readProcStat(pid);
  if (!st) return false;
  const rec: PidRecord = { pid, startTime: st.startTime, args: [], name: `pid ${pid}` };
  signalProcess(pid, signal, false);
  if (await waitGone(rec, timeoutMs)) return true;
  signalProcess(pid, 'SIGKILL', false);
  await waitGone(rec, 5_000);
  return true;
}
