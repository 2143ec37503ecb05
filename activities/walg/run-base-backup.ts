// Runs a full base backup of a cluster's primary leader (WAL-G backup-push), heartbeating the tool's progress.
// Success here means only "the tool exited 0": the runbook proves the backup by its sentinel in S3 afterwards.
// A retry takes a fresh backup; that is safe, backups only add to the archive.
import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import type { BaseBackupRun } from '../sites/site-driver';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import {
  PreconditionFailedError, RunbookError, SiteUnreachableError, WaitTimedOutError,
} from '../../workflows/contracts/errors';

export interface RunBaseBackupInput {
  /** `<site>/<cluster>`: the backup runs on its current leader, which must be a primary. */
  cluster: string;
  /** Stop the tool after this long (default: only Temporal's timeouts and cancellation stop it). */
  timeoutSeconds?: number;
}

export interface BackupProgress {
  cluster: string;
  elapsedSeconds: number;
  /** The tool's latest progress line (scrubbed of secrets by the driver). */
  detail: string;
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
    const startedAt = Date.now();
    const beat = (detail: string) => {
      const progress: BackupProgress = { cluster: input.cluster, elapsedSeconds: Math.round((Date.now() - startedAt) / 1000), detail };
      ctx.heartbeat(progress);
    };
    beat('starting backup-push');
    const deadline = input.timeoutSeconds ? AbortSignal.timeout(input.timeoutSeconds * 1000) : undefined;
    const stop = deadline ? AbortSignal.any([ctx.cancellationSignal, deadline]) : ctx.cancellationSignal;
    let run: BaseBackupRun;
    try {
      run = await deps.driverFor(site).runBaseBackup(cluster, beat, stop);
    } catch (err) {
      if (err instanceof RunbookError) throw err;
      throw new SiteUnreachableError(`could not run the backup tool for ${input.cluster}: ${(err as Error).message}`, { cluster: input.cluster });
    }
    // The tool was stopped on purpose: report why, not its exit code.
    if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
    if (deadline?.aborted) {
      throw new WaitTimedOutError(
        `backup-push of ${input.cluster} did not finish within ${input.timeoutSeconds}s and was stopped: raise limits.backupTimeoutSeconds`,
        { cluster: input.cluster, timeoutSeconds: input.timeoutSeconds },
      );
    }
    if (run.exitCode !== 0) throw backupFailure(input.cluster, run);
    beat(`backup-push exited 0${run.reportedName ? `, reported ${run.reportedName}` : ''}`);
    return run;
  };
}
