// File helpers for a region whose files are written by root (the worker) and read by the postgres OS user.
import { randomBytes } from 'node:crypto';
import {
  chmodSync, chownSync, closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync,
  renameSync, statSync, writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { OsUser } from './processes';

export interface Owner {
  uid: number;
  gid: number;
}

export function mkdirOwned(path: string, mode: number, owner?: Owner): void {
  mkdirSync(path, { recursive: true, mode });
  chmodSync(path, mode);
  if (owner) chownSync(path, owner.uid, owner.gid);
}

/** Atomic write (temp + fsync + rename); returns false when the file already had exactly this content. */
export function writeFileAtomic(path: string, content: string, mode: number, owner?: Owner): boolean {
  try {
    const st = statSync(path);
    const same = readFileSync(path, 'utf8') === content && (st.mode & 0o777) === mode &&
      (!owner || (st.uid === owner.uid && st.gid === owner.gid));
    if (same) return false;
  } catch {
    // absent: write it
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  if (owner) chownSync(tmp, owner.uid, owner.gid);
  renameSync(tmp, path);
  return true;
}

export function chownTree(path: string, owner: Owner): void {
  const st = lstatSync(path);
  if (st.uid !== owner.uid || st.gid !== owner.gid) chownSync(path, owner.uid, owner.gid);
  if (st.isDirectory()) for (const e of readdirSync(path)) chownTree(join(path, e), owner);
}

function canTraverse(mode: number, uid: number, gid: number, user: OsUser): boolean {
  if (user.uid === 0) return true;
  if (uid === user.uid) return (mode & 0o100) !== 0;
  if (gid === user.gid) return (mode & 0o010) !== 0;
  return (mode & 0o001) !== 0;
}

/**
 * Adds the search (x) bit for "other" on every ancestor of `path` that `user` could not traverse, e.g. a
 * mkdtemp folder (0700) or /root when the repo is cloned there. Only x, never r: names stay unlistable.
 * Returns the folders changed.
 */
export function ensureTraversable(path: string, user: OsUser): string[] {
  const changed: string[] = [];
  let p = resolve(path);
  const chain: string[] = [];
  for (;;) {
    chain.push(p);
    const parent = dirname(p);
    if (parent === p) break;
    p = parent;
  }
  for (const dir of chain.reverse()) {
    let st;
    try {
      st = statSync(dir);
    } catch {
      break;
    }
    if (!st.isDirectory()) continue;
    if (!canTraverse(st.mode, st.uid, st.gid, user)) {
      chmodSync(dir, (st.mode & 0o7777) | 0o001);
      changed.push(dir);
    }
  }
  return changed;
}

/** POSIX shell single-quoting. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
