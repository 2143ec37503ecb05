// Reading what Patroni did from its log: it runs pg_rewind and crash recovery on its own, and its log is the only
// record of whether it did (GET /patroni forgets once the node runs again).
import { readFileSync } from 'node:fs';

// Patroni's log format here: '%(asctime)s %(levelname)s: %(message)s', e.g. "2026-11-27 10:30:01,123 INFO: ...".
const STAMP = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d),(\d{3}) /;

/**
 * Lines of a Patroni log written at or after `since`. Continuation lines (pg_rewind's stdout/stderr, which Patroni
 * logs as one multi-line message) carry no timestamp and belong to the line before them.
 */
export function patroniLogSince(file: string, since: Date): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  let keep = false;
  for (const line of text.split('\n')) {
    const m = STAMP.exec(line);
    // The log is written in the machine's local time zone by Python's logging (asctime).
    if (m) keep = new Date(`${m[1]}T${m[2]}.${m[3]}`).getTime() >= since.getTime() - 1_000;
    if (keep && line.trim()) out.push(line);
  }
  return out;
}

export interface RewindReport {
  /** pg_rewind ran and exited 0 on at least one member. */
  rewound: boolean;
  /** Members where it did. */
  members: string[];
  /** Members where pg_rewind ran and failed (Patroni does not retry it: the member stays down until reseeded). */
  failed: string[];
  /** Members where pg_rewind was started and has not ended yet. */
  running: string[];
  /** Lines about crash recovery, pg_rewind and timelines, prefixed with the member: for the journal. */
  lines: string[];
}

const RELEVANT = /pg_rewind|crash recovery|Local timeline|primary_timeline|reinitializ|diverged|rewind/i;

export function rewindsSince(logs: Array<{ member: string; file: string }>, since: Date): RewindReport {
  return rewindReport(logs.map(({ member, file }) => ({ member, lines: patroniLogSince(file, since) })));
}

/** The rewind report of Patroni log lines per member, however they were read (a file here, pods/log on Kubernetes). */
export function rewindReport(logs: Array<{ member: string; lines: string[] }>): RewindReport {
  const members: string[] = [];
  const failed: string[] = [];
  const running: string[] = [];
  const lines: string[] = [];
  for (const { member, lines: all } of logs) {
    const mine = all.filter((l) => RELEVANT.test(l));
    // While a rewind runs, its last word is "running pg_rewind from ..." (also "... in progress" each cycle); it ends
    // with "pg_rewind exit code=N" and its output, or a reason it could not run ("Can not use ... for rewind").
    if (mine.length && /running pg_rewind from/.test(mine[mine.length - 1])) running.push(member);
    if (mine.some((l) => /pg_rewind exit code=0\b/.test(l))) members.push(member);
    // Patroni's own words (typo included) for the terminal state; "because primary ... become unreachable" is retried.
    else if (mine.some((l) => /Failed to rewind from (healty|healthy) primary/.test(l))) failed.push(member);
    lines.push(...mine.map((l) => `${member}: ${l}`));
  }
  return { rewound: members.length > 0, members, failed, running, lines };
}
