// Runs a full base backup of a cluster's primary leader (WAL-G backup-push), heartbeating the tool's progress.
// Success here means only "the tool exited 0": the runbook proves the backup by its sentinel in S3 afterwards.
// A retry takes a fresh backup; that is safe, backups only add to the archive.
// While the tool runs, the leader's archiver can be watched (pg_stat_archiver): a backup whose WAL cannot reach the
// archive is worthless, and a tool that waits for that WAL would otherwise wait out the whole timeout.
import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import type { BaseBackupRun } from '../sites/site-driver';
import { ArchiverWatcher } from '../postgres/archiver';
import type { ArchiveWatch } from '../../workflows/contracts/archiving';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import {
  NotReadyError, PreconditionFailedError, RunbookError, SiteUnreachableError, WaitTimedOutError,
} from '../../workflows/contracts/errors';

export interface RunBaseBackupInput {
  /** `<site>/<cluster>`: the backup runs on its current leader, which must be a primary. */
  cluster: string;
  /** Stop the tool after this long (default: only Temporal's timeouts and cancellation stop it). */
  timeoutSeconds?: number;
  /** Watch the leader's archiver every `pollSeconds`; stop the tool with ArchivingBrokenError once it is broken. */
  archiving?: { brokenAfterSeconds: number; pollSeconds: number };
}

export interface BackupProgress {
  cluster: string;
  elapsedSeconds: number;
  /** The tool's latest progress line (scrubbed of secrets by the driver). */
  detail: string;
  /** The archiver at the latest look, in one sentence, when it is watched. */
  archiving?: string;
  /** The archiver's streak, so a retried attempt resumes it instead of starting the clock again. */
  watch?: ArchiveWatch | null;
}

// What a refusal of a node in recovery looks like: a site's own check ("in recovery"; WAL-G itself backs up a replica
// without complaint, so the local region and Spilo's backup script look at the role first), and Postgres's.
const REFUSED_IN_RECOVERY = /\bin recovery\b|\bfrom a standby\b|\(a standby\)|recovery is in progress|\breplica\b/i;

// Temporal keeps an activity's last failure (what describe and the UI show while it is retried) only up to 4 KiB,
// message, stack and facts together (limit.mutableStateActivityFailureSize.error); a larger one becomes "Failure
// exceeds size limit.". WAL-G's lines run to 250 characters (each S3 retry is logged), so the failure carries less
// of the output than the run does.
const FAILURE_TAIL_CHARS = 1_500;
const FAILURE_LINE_CHARS = 400;

const lastLine = (tail: string) => (tail.split('\n').filter(Boolean).pop() ?? '(no output)').slice(0, FAILURE_LINE_CHARS);

/** Exit code != 0 as a typed error: final when the node is not a primary, retryable for tool or S3 trouble. */
export function backupFailure(ref: string, run: BaseBackupRun): RunbookError {
  const facts = { cluster: ref, exitCode: run.exitCode, outputTail: run.outputTail.slice(-FAILURE_TAIL_CHARS) };
  if (REFUSED_IN_RECOVERY.test(run.outputTail)) {
    return new PreconditionFailedError(
      `the backup tool refused to back up ${ref}: its leader is in recovery (a standby or replica). ` +
        'force-backup needs a primary: promote the cluster first',
      facts,
    );
  }
  return new SiteUnreachableError(`backup-push of ${ref} failed with exit code ${run.exitCode}: ${lastLine(run.outputTail)}`, facts);
}

export function createRunBaseBackup(deps: ActivityDeps) {
  return async function walgRunBaseBackup(input: RunBaseBackupInput): Promise<BaseBackupRun> {
    const ctx = Context.current();
    const { site, cluster } = parseClusterRef(input.cluster);
    const driver = deps.driverFor(site);
    const startedAt = Date.now();
    const resumed = (ctx.info.heartbeatDetails as BackupProgress | undefined)?.watch ?? null;
    const watcher = input.archiving
      ? new ArchiverWatcher(driver, input.cluster, cluster, input.archiving.brokenAfterSeconds, resumed)
      : null;
    const beat = (detail: string) => {
      const progress: BackupProgress = {
        cluster: input.cluster, elapsedSeconds: Math.round((Date.now() - startedAt) / 1000), detail,
        ...(watcher ? { archiving: watcher.last?.verdict.message ?? 'not looked at yet', watch: watcher.carried() } : {}),
      };
      ctx.heartbeat(progress);
    };
    beat('starting backup-push');
    // Which member leads now: a failure after a switchover is retried on the new primary, not blamed on the tool.
    const before = await driver.describeCluster(cluster).catch(() => null);
    const deadline = input.timeoutSeconds ? AbortSignal.timeout(input.timeoutSeconds * 1000) : undefined;
    const archivingBroken = new AbortController();
    const stop = AbortSignal.any([ctx.cancellationSignal, archivingBroken.signal, ...(deadline ? [deadline] : [])]);
    watcher?.start(input.archiving!.pollSeconds, () => archivingBroken.abort());
    let run: BaseBackupRun;
    try {
      run = await driver.runBaseBackup(cluster, beat, stop);
    } catch (err) {
      if (watcher?.broken) throw watcher.broken;
      if (err instanceof RunbookError) throw err;
      throw new SiteUnreachableError(`could not run the backup tool for ${input.cluster}: ${(err as Error).message}`, { cluster: input.cluster });
    } finally {
      await watcher?.stop();
    }
    // The tool was stopped on purpose: report why, not its exit code.
    if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
    if (watcher?.broken) throw watcher.broken;
    if (deadline?.aborted) {
      throw new WaitTimedOutError(
        `backup-push of ${input.cluster} did not finish within ${input.timeoutSeconds}s and was stopped: raise limits.backupTimeoutSeconds`,
        { cluster: input.cluster, timeoutSeconds: input.timeoutSeconds },
      );
    }
    if (run.exitCode !== 0) {
      const after = before?.leaderRole === 'primary' ? await driver.describeCluster(cluster).catch(() => null) : null;
      if (after && (after.leaderRole !== 'primary' || after.leaderMember !== before!.leaderMember)) {
        throw new NotReadyError(
          `the leader of ${input.cluster} changed while backup-push ran on ${before!.leaderMember} (now ${after.leaderMember ?? 'none'}, ` +
            `${after.leaderRole}: a switchover or failover); the backup is taken again on the current primary`,
          { cluster: input.cluster, exitCode: run.exitCode, was: before!.leaderMember, now: after.leaderMember ?? null },
        );
      }
      throw backupFailure(input.cluster, run);
    }
    beat(`backup-push exited 0${run.reportedName ? `, reported ${run.reportedName}` : ''}`);
    return run;
  };
}
