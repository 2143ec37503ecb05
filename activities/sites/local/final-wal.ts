// A planned switchover to a standby that only reads the archive: after the fence, the segment holding the old
// primary's shutdown checkpoint is still a partial file in its pg_wal (Postgres archives a segment only once it is
// full), so the standby could never replay the checkpoint. It is pushed here with the cluster's own archive_command
// tool, under its ordinary segment name, as CloudNativePG does on demotion. Look before acting: the archive's copy
// is fetched and read with pg_waldump; when it already holds the checkpoint nothing is pushed.
//
// Why the ordinary name and an overwrite are safe: WAL-G overwrites a segment with different content unless
// WALG_PREVENT_WAL_OVERWRITE is on. If the fence is lifted after the push, the old primary writes on into the same
// segment and its archive_command later pushes the full one over this partial copy: same bytes up to the
// checkpoint, more after it. With the setting on, that later push would fail forever (archiving broken), so the
// push is refused before anything is written.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PreconditionFailedError } from '../../../workflows/contracts/errors';
import { walFileName } from '../../../workflows/contracts/archiving';
import { formatLsn, parseLsn, WAL_SEGMENT_BYTES } from '../../../workflows/contracts/lsn';
import type { FinalWalResult } from '../site-driver';
import { clusterDir } from './cluster-files';
import { formerLeader, clusterView, memberStates, needCluster, runAsOf, type RegionHandle } from './cluster-state';
import { chownTree, mkdirOwned } from './fs-util';
import { postmasterPid, readControlData } from './pg-control';
import { lookupUser } from './processes';
import { pgBinDir } from './tools';
import { runCommand, walgScriptPaths } from './walg-env';

/** WAL-G's exit code for "not in the archive" (EX_IOERR), as restore.sh reads it. */
const NOT_ARCHIVED = 74;
const PAGE = 8192n;

interface CheckpointRecord {
  desc: string;
  endLsn: string;
}

/** The one record at `lsn` in the segments under `dir`, or null when pg_waldump finds none there. */
async function recordAt(dir: string, timeline: number, lsn: string, runAs: string): Promise<CheckpointRecord | null> {
  const r = await runCommand(join(pgBinDir(), 'pg_waldump'), ['-p', dir, '-t', String(timeline), '-s', lsn, '-n', '1'], { LC_ALL: 'C' },
    { runAs, timeoutMs: 30_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('rmgr:')) ?? '';
  const m = /len \(rec\/tot\):\s*\d+\/\s*(\d+),.*lsn: ([0-9A-F]+\/[0-9A-F]+).*desc: (\S+)/.exec(line);
  if (r.exitCode !== 0 || !m || parseLsn(m[2]) !== parseLsn(lsn)) return null;
  // Records are 8-byte aligned; one that crosses a page boundary (a shutdown checkpoint is ~114 bytes: at most
  // one) also spans that page's header, 40 bytes at a segment start, else 24.
  const start = parseLsn(lsn);
  let end = start + ((BigInt(Number(m[1])) + 7n) & ~7n);
  const nextPage = (start / PAGE + 1n) * PAGE;
  if (end > nextPage) end += nextPage % WAL_SEGMENT_BYTES === 0n ? 40n : 24n;
  return { desc: m[3], endLsn: formatLsn(end) };
}

function overwritePrevented(envFile: string): boolean {
  let text = '';
  try {
    text = readFileSync(envFile, 'utf8');
  } catch {
    return false;
  }
  // Only this one line is looked at: the file holds S3 keys.
  const line = text.split('\n').find((l) => l.startsWith('WALG_PREVENT_WAL_OVERWRITE='));
  return !!line && /^WALG_PREVENT_WAL_OVERWRITE='?(true|1|yes|on)'?$/i.test(line.trim());
}

export async function archiveFinalWal(region: RegionHandle, name: string, finalLsn: string): Promise<FinalWalResult> {
  parseLsn(finalLsn);
  const info = needCluster(region, name);
  const runAs = runAsOf(region);
  const ref = `${region.name}/${name}`;
  const refuse = (msg: string, facts: Record<string, unknown> = {}) =>
    new PreconditionFailedError(`${ref}: ${msg}`, { cluster: name, finalLsn, ...facts });
  if (!info.archivePrefix) throw refuse('it does not archive to S3: there is no archive to put its final WAL in');
  const running = memberStates(region, info).filter((s) => s.postgresRunning).map((s) => s.member.name);
  if (running.length) throw refuse(`Postgres runs on ${running.join(', ')}: its last WAL is only final once it is fenced`, { running });
  const leader = await formerLeader(info, await clusterView(info), runAs);
  const cd = await readControlData(leader.dataDir, runAs);
  // Only a clean shutdown as a primary ends its WAL at a shutdown checkpoint that another cluster can replay to.
  if (cd?.state !== 'shut down' || cd.checkpointLsn !== finalLsn || !cd.timeline || postmasterPid(leader.dataDir) !== null) {
    throw refuse(`${leader.name} is "${cd?.state ?? 'unreadable'}" at checkpoint ${cd?.checkpointLsn ?? '?'}, not cleanly shut down at ${finalLsn}`,
      { state: cd?.state ?? null, checkpointLsn: cd?.checkpointLsn ?? null });
  }
  const timeline = cd.timeline;
  const scripts = walgScriptPaths(clusterDir(region.cfg.dataDir, name));
  if (overwritePrevented(join(clusterDir(region.cfg.dataDir, name), 'walg', 'archive.env'))) {
    throw refuse('WALG_PREVENT_WAL_OVERWRITE is on: the full segment could never replace the partial one pushed now if the fence is lifted; turn it off for this cluster');
  }
  const local = await recordAt(join(leader.dataDir, 'pg_wal'), timeline, finalLsn, runAs);
  if (local?.desc !== 'CHECKPOINT_SHUTDOWN') {
    throw refuse(`pg_wal of ${leader.name} has ${local ? local.desc : 'no record'} at ${finalLsn}, not its shutdown checkpoint`);
  }
  // The segment holding the checkpoint, and the next one only when the record runs into it.
  const segments = [...new Set([walFileName(timeline, parseLsn(finalLsn)), walFileName(timeline, parseLsn(local.endLsn) - 1n)])];

  const inArchive = async (): Promise<boolean> => {
    const user = lookupUser(runAs);
    const dir = mkdtempSync(join(tmpdir(), 'dr-final-wal-'));
    try {
      mkdirOwned(dir, 0o700, { uid: user.uid, gid: user.gid });
      for (const seg of segments) {
        // No prefetch: its child would read S3 and write into this folder after it is gone.
        const f = await runCommand(scripts.archive, ['wal-fetch', seg, join(dir, seg)], { WALG_DOWNLOAD_CONCURRENCY: '1' }, { runAs, timeoutMs: 120_000 });
        if (f.exitCode === NOT_ARCHIVED) return false;
        if (f.exitCode !== 0) throw refuse(`wal-g wal-fetch ${seg} failed (exit ${f.exitCode}): ${f.stderr.slice(-300)}`);
      }
      chownTree(dir, { uid: user.uid, gid: user.gid });
      return (await recordAt(dir, timeline, finalLsn, runAs))?.desc === 'CHECKPOINT_SHUTDOWN';
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  if (await inArchive()) {
    return { changed: false, segments, timeline, checkpointEndLsn: local.endLsn, walPrefix: info.archivePrefix };
  }
  for (const seg of segments) {
    const p = await runCommand(scripts.archive, ['wal-push', join(leader.dataDir, 'pg_wal', seg)], {}, { runAs, timeoutMs: 300_000 });
    if (p.exitCode !== 0) throw refuse(`wal-g wal-push of ${seg} failed (exit ${p.exitCode}): ${p.stderr.slice(-300)}`, { segment: seg });
  }
  // Proof is what a restore reads back, not the push's exit code.
  if (!(await inArchive())) throw refuse(`after pushing ${segments.join(', ')}, the archive's copy still does not hold the checkpoint at ${finalLsn}`);
  return { changed: true, segments, timeline, checkpointEndLsn: local.endLsn, walPrefix: info.archivePrefix };
}
