// The primary's WAL archiver, read from pg_stat_archiver: one look (postgresArchiverStatus), a watcher that runs
// beside a long step (the backup), and a wait until a given WAL file is in the archive (postgresWaitForArchived).
// What counts as "broken" is judgeArchiving's (workflows/contracts/archiving.ts). All of it only reads.
import { Context } from '@temporalio/activity';
import type { Client as PgClient } from 'pg';
import type { ActivityDeps } from '../deps';
import { siteConfig } from '../deps';
import type { ArchiveLocation, SiteDriver } from '../sites/site-driver';
import { archivedWalObject } from '../s3/archived-segment';
import { backoffPauses } from '../poll-backoff';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import {
  judgeArchiving, walFileName, type ArchiverStatus, type ArchiveWatch, type ArchivingVerdict,
} from '../../workflows/contracts/archiving';
import { ArchivingBrokenError, NotReadyError, RunbookError, WaitTimedOutError } from '../../workflows/contracts/errors';
import { parseLsn } from '../../workflows/contracts/lsn';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** pg_stat_archiver and the WAL position of the server `client` is connected to. */
export async function readArchiverStatus(client: PgClient, member: string): Promise<ArchiverStatus> {
  const r = await client.query<{
    archive_mode: string; archived_count: string; last_archived_wal: string | null; last_archived_time: Date | null;
    failed_count: string; last_failed_wal: string | null; last_failed_time: Date | null;
    current_wal: string | null; current_lsn: string | null; at: Date;
  }>(
    `SELECT current_setting('archive_mode') AS archive_mode,
            a.archived_count, a.last_archived_wal, a.last_archived_time, a.failed_count, a.last_failed_wal, a.last_failed_time,
            CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS current_wal,
            (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS current_lsn,
            now() AS at
       FROM pg_stat_archiver a`,
  );
  const row = r.rows[0];
  return {
    member,
    archiveMode: row.archive_mode,
    archivedCount: Number(row.archived_count),
    lastArchivedWal: row.last_archived_wal,
    lastArchivedAt: iso(row.last_archived_time),
    failedCount: Number(row.failed_count),
    lastFailedWal: row.last_failed_wal,
    lastFailedAt: iso(row.last_failed_time),
    currentWal: row.current_wal,
    currentLsn: row.current_lsn ?? '0/0',
    at: row.at.toISOString(),
  };
}

/**
 * The archiver of a cluster's leader. A leader in recovery archives nothing of its own: during a switchover the
 * member answering may still be the old primary on its way to a replica, so that is "not now", not a verdict.
 */
export async function leaderArchiverStatus(driver: SiteDriver, ref: string, cluster: string): Promise<ArchiverStatus> {
  const status = await driver.withLeaderSql(cluster, (c) => readArchiverStatus(c, `the leader of ${ref}`));
  if (status.currentWal === null) {
    throw new NotReadyError(`${ref}'s leader is in recovery just now (a switchover?): its archiver does not archive the cluster's WAL`, { cluster: ref });
  }
  return status;
}

export interface ArchivingLook {
  status: ArchiverStatus;
  watch: ArchiveWatch;
  verdict: ArchivingVerdict;
}

/** One look at a cluster's archiver, judged on its own (a failing streak starts at the newest failure seen). */
export function createArchiverStatus(deps: ActivityDeps) {
  return async function postgresArchiverStatus(input: { ref: string; brokenAfterSeconds: number }): Promise<ArchivingLook> {
    const { site, cluster } = parseClusterRef(input.ref);
    const status = await leaderArchiverStatus(deps.driverFor(site), input.ref, cluster);
    return { status, ...judgeArchiving(null, status, input.brokenAfterSeconds) };
  };
}

export function archivingBroken(ref: string, look: ArchivingLook): ArchivingBrokenError {
  const s = look.status;
  return new ArchivingBrokenError(look.verdict.message, {
    cluster: ref, wal: look.verdict.wal, since: look.verdict.since, failedCount: s.failedCount, lastFailedWal: s.lastFailedWal,
    lastFailedAt: s.lastFailedAt, lastArchivedWal: s.lastArchivedWal, lastArchivedAt: s.lastArchivedAt, currentWal: s.currentWal,
    segmentsWaiting: look.verdict.segmentsWaiting, lagBytes: look.verdict.lagBytes,
  });
}

/**
 * Looks at the archiver every `pollSeconds` while `work` runs, carrying the streak from look to look (starting from
 * `resume`, e.g. a previous attempt's heartbeat). On a broken verdict it aborts `abort` and remembers why. A look that
 * cannot be read (the leader restarting) is no verdict: the watch goes on.
 */
export class ArchiverWatcher {
  private watch: ArchiveWatch | null;
  private timer: NodeJS.Timeout | undefined;
  private looking: Promise<unknown> = Promise.resolve();
  last: ArchivingLook | null = null;
  broken: ArchivingBrokenError | null = null;

  constructor(
    private readonly driver: SiteDriver, private readonly ref: string, private readonly cluster: string,
    private readonly brokenAfterSeconds: number, resume: ArchiveWatch | null,
  ) {
    this.watch = resume;
  }

  async look(): Promise<ArchivingLook | null> {
    try {
      const status = await leaderArchiverStatus(this.driver, this.ref, this.cluster);
      const judged = judgeArchiving(this.watch, status, this.brokenAfterSeconds);
      this.watch = judged.watch;
      this.last = { status, ...judged };
      if (judged.verdict.state === 'broken') this.broken ??= archivingBroken(this.ref, this.last);
      return this.last;
    } catch (err) {
      if (err instanceof RunbookError && !err.retryable) throw err;
      return null;
    }
  }

  start(pollSeconds: number, onBroken: () => void): void {
    let busy = false;
    this.timer = setInterval(() => {
      // A look slower than the interval (a leader that is slow to answer) is not queued up behind itself.
      if (busy) return;
      busy = true;
      this.looking = this.look().catch(() => null).then(() => {
        busy = false;
        if (this.broken) onBroken();
      });
    }, pollSeconds * 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.looking;
  }

  carried(): ArchiveWatch | null {
    return this.watch;
  }
}

export interface WaitForArchivedInput {
  ref: string;
  /** The backup's finish LSN: the WAL file holding the byte before it must be in the archive. */
  lsn: string;
  timeline: number;
  archive: ArchiveLocation;
  /** The archive is read with the S3 settings of this site (the cluster's own). */
  archiveSite: string;
  timeoutSeconds: number;
  brokenAfterSeconds: number;
  pollIntervalSeconds: number;
}

export interface ArchivedProof {
  /** The WAL file that had to be archived, and the S3 key it was found under. */
  wal: string;
  key: string;
  archivedAt: string | null;
  /** The archiver's state at the last look, when one was needed. */
  lastVerdict: ArchivingVerdict | null;
}

/**
 * Waits until the WAL file holding `lsn` (on `timeline`) is in the cluster's archive in S3 — without it the backup
 * that ends there cannot be restored — and fails with ArchivingBrokenError as soon as the archiver is judged broken,
 * instead of waiting out the timeout. Reads only.
 */
export function createWaitForArchived(deps: ActivityDeps) {
  return async function postgresWaitForArchived(input: WaitForArchivedInput): Promise<ArchivedProof> {
    const ctx = Context.current();
    const { site, cluster } = parseClusterRef(input.ref);
    const s3 = siteConfig(deps, input.archiveSite).s3;
    const wal = walFileName(input.timeline, parseLsn(input.lsn) - 1n);
    const resumed = (ctx.info.heartbeatDetails as { watch?: ArchiveWatch } | undefined)?.watch ?? null;
    const watcher = new ArchiverWatcher(deps.driverFor(site), input.ref, cluster, input.brokenAfterSeconds, resumed);
    const deadline = Date.now() + input.timeoutSeconds * 1000;
    // The backup's last WAL file is usually archived within a second of backup-push's end: S3 is looked at again
    // soon, then up to every pollIntervalSeconds; the archiver is judged every pollIntervalSeconds.
    const pause = backoffPauses(input.pollIntervalSeconds * 1000);
    let look: ArchivingLook | null = null;
    let lookedAt = 0;
    for (;;) {
      const found = await archivedWalObject(s3, input.archive.walPrefix, wal);
      if (found) return { wal, key: found.key, archivedAt: found.archivedAt, lastVerdict: watcher.last?.verdict ?? null };
      if (lookedAt === 0 || Date.now() - lookedAt >= input.pollIntervalSeconds * 1000) {
        look = await watcher.look();
        lookedAt = Date.now();
        if (watcher.broken) throw watcher.broken;
      }
      ctx.heartbeat({ wal, watch: watcher.carried(), verdict: look?.verdict.message ?? 'archiver not readable just now' });
      if (Date.now() >= deadline) {
        throw new WaitTimedOutError(
          `${wal} of ${input.ref} was not archived within ${input.timeoutSeconds}s (${look?.verdict.message ?? 'the archiver could not be read'}): ` +
            'the backup that ends in it cannot be restored until it is',
          { cluster: input.ref, wal },
        );
      }
      await ctx.sleep(pause());
    }
  };
}
