// The former primary's own WAL for pg_rewind, from its own archive. pg_rewind reads the TARGET's WAL from the last
// checkpoint before the fork to its end; a former primary that kept running (or a small wal_keep_size) has recycled
// the start of it, and then pg_rewind fails and only a reseed is left. Patroni runs pg_rewind with
// `--restore-target-wal` when `postgres -C restore_command` answers, so during a demotion every member's
// postgresql.base.conf (Patroni's include, which the recovery settings Patroni writes into postgresql.conf override)
// names a wrapper that fetches from the cluster's OWN prefix. That prefix holds the former primary's divergent WAL,
// which recovery must never replay: the wrapper serves pg_rewind and nobody else, and is removed after the demotion.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Owner, shq, writeFileAtomic } from './fs-util';

const MARK = '# standby-runbooks: pg_rewind --restore-target-wal';

export const rewindRestorePath = (clusterDir: string) => join(clusterDir, 'walg', 'rewind-restore.sh');

/**
 * `<script> %f %p`: wal-fetch from the cluster's own prefix (archive.env), for pg_rewind only. Any other caller
 * (the startup process of a recovering member above all) is told "not there" (exit 1) without a look at S3. Each
 * outcome is one stderr line starting with `rewind-restore:`; pg_rewind's stderr lands in Patroni's log, where
 * the driver reads which segments came from the archive.
 */
export function rewindRestoreScript(walg: string, ownEnvFile: string): string {
  return [
    '#!/bin/sh',
    '# restore_command of pg_rewind --restore-target-wal only (see rewind-wal.ts).',
    'p=$PPID; n=0; caller=',
    'while [ $n -lt 4 ] && [ -n "$p" ] && [ "$p" -gt 1 ]; do',
    '  [ "$(cat /proc/$p/comm 2>/dev/null)" = pg_rewind ] && { caller=pg_rewind; break; }',
    '  p=$(sed \'s/^.*) //\' /proc/$p/stat 2>/dev/null | cut -d" " -f2); n=$((n + 1))',
    'done',
    'if [ "$caller" != pg_rewind ]; then',
    '  echo "rewind-restore: $1 not served: the caller is not pg_rewind" >&2',
    '  exit 1',
    'fi',
    `set -a; . ${shq(ownEnvFile)}; set +a`,
    'n=1; pause=1',
    'while :; do',
    `  WALG_DOWNLOAD_CONCURRENCY=1 WALG_S3_MAX_RETRIES=2 timeout -k 5 \${WALG_RESTORE_TIMEOUT:-20} ${walg} wal-fetch "$1" "$2" 2>/dev/null`,
    '  rc=$?',
    '  if [ $rc -eq 0 ]; then echo "rewind-restore: $1 fetched from $WALG_S3_PREFIX" >&2; exit 0; fi',
    '  if [ $rc -eq 74 ]; then echo "rewind-restore: $1 is not in $WALG_S3_PREFIX" >&2; exit 1; fi',
    '  [ $n -ge 4 ] && break',
    '  sleep $pause; n=$((n + 1)); pause=$((pause * 2))',
    'done',
    'echo "rewind-restore: $1 unreadable from $WALG_S3_PREFIX (wal-fetch exit $rc after $n attempts)" >&2',
    'exit 1',
    '',
  ].join('\n');
}

const baseConf = (dataDir: string) => join(dataDir, 'postgresql.base.conf');

function withoutMark(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === MARK) {
      i++; // the restore_command line after it
      continue;
    }
    out.push(lines[i]);
  }
  return out.join('\n');
}

/** Names the wrapper in each data directory's postgresql.base.conf; a directory without one is left alone. */
export function armRewindRestore(dataDirs: string[], script: string, owner: Owner): string[] {
  const armed: string[] = [];
  for (const d of dataDirs) {
    const f = baseConf(d);
    if (!existsSync(f)) continue;
    const text = withoutMark(readFileSync(f, 'utf8'));
    const line = `restore_command = '${`${shq(script)} "%f" "%p"`.replace(/'/g, "''")}'`;
    writeFileAtomic(f, `${text.replace(/\n*$/, '\n')}${MARK}\n${line}\n`, 0o600, owner);
    armed.push(d);
  }
  return armed;
}

/** Takes the wrapper out again (pg_rewind already replaced the file on a member it rewound). */
export function disarmRewindRestore(dataDirs: string[], owner: Owner): void {
  for (const d of dataDirs) {
    const f = baseConf(d);
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    if (text.split('\n').includes(MARK)) writeFileAtomic(f, withoutMark(text), 0o600, owner);
  }
}

/** Which segments pg_rewind fetched from the own archive, and which it asked for and did not get, from the log. */
export function rewindArchiveFetches(lines: string[]): { fetched: string[]; missing: string[]; prefix: string | null } {
  const fetched = new Set<string>();
  const missing = new Set<string>();
  let prefix: string | null = null;
  for (const l of lines) {
    const m = /rewind-restore: ([0-9A-F]{24}(?:\.partial)?) (fetched from|is not in|unreadable from) (\S+)/.exec(l);
    if (!m) continue;
    prefix = m[3];
    (m[2] === 'fetched from' ? fetched : missing).add(m[1]);
  }
  return { fetched: [...fetched].sort(), missing: [...missing].filter((s) => !fetched.has(s)).sort(), prefix };
}
