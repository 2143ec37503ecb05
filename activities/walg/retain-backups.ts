// Backup retention of a cluster's OWN archive prefix with WAL-G's `delete before <oldest kept> --confirm`, after
// WAL-G's own dry run agreed with the plan (workflows/contracts/retention.ts holds the rules).
// Why `delete before <name>` and not `delete retain FULL N`: retain counts in WAL-G's order only and cannot keep the
// newest backup of the current timeline when a higher, abandoned timeline sits in the same prefix; naming the
// oldest backup to keep says exactly which backups stay. WAL-G then also deletes the WAL before that backup (by
// timeline and segment, the order it sorts backups in), so every kept backup still restores.
// Idempotent: a second call finds at most `keep` backups and deletes nothing.
import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import { readPosition } from '../postgres/markers';
import { walgBin } from '../sites/local/tools';
import { listBackups, runCommand, walgEnv, type WalgBackup } from '../sites/local/walg-env';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { ClusterNotFoundError, PreconditionFailedError, SiteUnreachableError } from '../../workflows/contracts/errors';
import { formatLsn } from '../../workflows/contracts/lsn';
import {
  parseRetentionInput, planRetention, type RetainedBackup, type RetentionInput, type RetentionResult,
} from '../../workflows/contracts/retention';

const toRetained = (b: WalgBackup): RetainedBackup => ({
  name: b.name, timeline: b.timeline, startLsn: formatLsn(b.startLsn), finishLsn: formatLsn(b.finishLsn),
  finishTime: b.finishTime, permanent: b.permanent,
});

/** What WAL-G's `delete` marked for deletion: backup names (from their objects' paths) and the WAL objects. */
export function readMarkedForDeletion(output: string): { backups: string[]; walObjects: number } {
  const backups = new Set<string>();
  let walObjects = 0;
  for (const m of output.matchAll(/Object marked for deletion: (\S+)/g)) {
    const path = m[1];
    const backup = /^basebackups_005\/(base_[0-9A-F]{24}(?:_D_[0-9A-F]{24})?)/.exec(path)?.[1];
    if (backup) backups.add(backup);
    else if (path.startsWith('wal_005/')) walObjects += 1;
  }
  return { backups: [...backups].sort(), walObjects };
}

const tail = (text: string) => text.trim().split('\n').slice(-3).join(' | ').slice(0, 400);

export function createRetainBackups(deps: ActivityDeps) {
  return async function walgRetainBackups(input: RetentionInput): Promise<RetentionResult> {
    const { cluster: ref, keep, dryRun } = parseRetentionInput(input);
    const { site, cluster } = parseClusterRef(ref);
    const ctx = Context.current();
    const driver = deps.driverFor(site);
    const facts = await driver.describeCluster(cluster);
    if (!facts) throw new ClusterNotFoundError(`${ref} does not exist at site ${site}`, { cluster: ref });
    const { walPrefix, s3 } = facts.archive;
    // The timeline the cluster lives on now decides which backup is never deleted (rule 3).
    const position = await driver.withLeaderSql(cluster, (client) => readPosition(client, { settleTimeline: true }));
    const env = await walgEnv(s3, walPrefix);
    ctx.heartbeat(`listing the backups of ${walPrefix}`);
    const listed = await listBackups(env).catch((err: Error) => {
      throw new SiteUnreachableError(`${ref}: ${err.message}`, { walPrefix });
    });
    const plan = planRetention(listed.map(toRetained), keep, position.timeline);
    const result: RetentionResult = { cluster: ref, walPrefix, dryRun, changed: false, walg: null, ...plan };
    if (!plan.deleteBefore) return result;

    // WAL-G's dry run must delete exactly the plan's backups: were its order ever to differ from the plan's, a
    // backup meant to stay would go. Then nothing is deleted.
    const args = ['delete', 'before', plan.deleteBefore];
    ctx.heartbeat(`wal-g ${args.join(' ')} (dry run)`);
    const dry = await runCommand(walgBin(), args, env, { timeoutMs: 300_000, signal: ctx.cancellationSignal });
    if (dry.exitCode !== 0) throw new SiteUnreachableError(`wal-g delete (dry run) on ${walPrefix} failed (exit ${dry.exitCode}): ${tail(dry.stderr)}`, { walPrefix });
    result.walg = readMarkedForDeletion(dry.stderr + dry.stdout);
    const planned = plan.deleted.map((b) => b.name).sort();
    if (result.walg.backups.join(',') !== planned.join(',')) {
      throw new PreconditionFailedError(
        `wal-g delete before ${plan.deleteBefore} on ${walPrefix} would delete ${result.walg.backups.join(', ') || 'no backup'}, ` +
          `but the retention plan deletes ${planned.join(', ')}: nothing was deleted; look at the backups with wal-g backup-list --detail`,
        { walPrefix, walg: result.walg.backups, planned },
      );
    }
    if (dryRun) return result;

    ctx.heartbeat(`wal-g ${args.join(' ')} --confirm`);
    const run = await runCommand(walgBin(), [...args, '--confirm'], env, { timeoutMs: 600_000, signal: ctx.cancellationSignal });
    if (run.exitCode !== 0) throw new SiteUnreachableError(`wal-g delete on ${walPrefix} failed (exit ${run.exitCode}): ${tail(run.stderr)}`, { walPrefix });
    // Proof, not the exit code: every backup meant to stay is still listed, none meant to go is.
    const after = new Set((await listBackups(env)).map((b) => b.name));
    const lost = plan.kept.filter((b) => !after.has(b.name)).map((b) => b.name);
    const left = plan.deleted.filter((b) => after.has(b.name)).map((b) => b.name);
    if (lost.length) throw new PreconditionFailedError(`after wal-g delete, backups meant to stay are gone from ${walPrefix}: ${lost.join(', ')}`, { walPrefix, lost });
    if (left.length) throw new SiteUnreachableError(`wal-g delete left ${left.join(', ')} in ${walPrefix}; retrying deletes them`, { walPrefix, left });
    return { ...result, changed: true };
  };
}
