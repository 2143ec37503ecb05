// The checks of force-backup that run before anything changes: the request, the cluster (a primary that
// archives), and whether a complete backup already covers the required LSN. Every refusal says what to fix.
import { control, siteActivities } from '../activity-proxies';
import { parseClusterRef } from '../contracts/clusters';
import { BadInputError, ClusterNotFoundError, PreconditionFailedError } from '../contracts/errors';
import { rejectUnknownFields } from '../contracts/input-fields';
import { lsnAtOrAfter, parseLsn } from '../contracts/lsn';
import type { ForceBackupInput } from '../contracts/runbooks';
import { check, refuse } from './failures';
import type { RunbookRecord } from './runbook-record';
import type { ClusterFacts } from '../../activities/sites/site-driver';
import type { BaseBackup } from '../../activities/s3/backup-catalogue';

export const DEFAULT_BACKUP_TIMEOUT_SECONDS = 3600;
/** A few minutes: the archiver retries a failed file within about a minute, so a short S3 blip recovers well within it. */
export const DEFAULT_ARCHIVE_BROKEN_AFTER_SECONDS = 300;
export const DEFAULT_ARCHIVE_POLL_SECONDS = 10;

export interface BackupPlan {
  ref: string;
  site: string;
  facts: ClusterFacts;
  notBeforeLsn?: string;
  backupTimeoutSeconds: number;
  archiveBrokenAfterSeconds: number;
  archivePollSeconds: number;
  verifyByRestore: boolean;
}

export interface BackupNeed {
  /** What the backup must cover: notBeforeLsn, or the leader's LSN when the runbook started. */
  requiredLsn: string;
  timeline: number;
  leaderLsn: string;
  /** A complete backup that already covers it, when there is one. */
  existing: BaseBackup | null;
}

export async function validateBackupRequest(record: RunbookRecord, input: ForceBackupInput): Promise<BackupPlan> {
  const { site, limits } = check(() => {
    if (!input || typeof input !== 'object') {
      throw new BadInputError('input must be a JSON object: {"cluster": "eu/acid-demo"}');
    }
    rejectUnknownFields<ForceBackupInput>(input, { cluster: true, notBeforeLsn: true, verifyByRestore: true, limits: true });
    if (input.limits !== undefined) {
      rejectUnknownFields<NonNullable<ForceBackupInput['limits']>>(input.limits, {
        backupTimeoutSeconds: true, archiveBrokenAfterSeconds: true, archivePollSeconds: true,
      }, 'limits');
    }
    if (input.verifyByRestore !== undefined && typeof input.verifyByRestore !== 'boolean') {
      throw new BadInputError('verifyByRestore must be true or false');
    }
    const ref = parseClusterRef(input.cluster, 'cluster');
    if (input.notBeforeLsn !== undefined) {
      if (typeof input.notBeforeLsn !== 'string') throw new BadInputError('notBeforeLsn must be an LSN string such as "0/3000060"');
      parseLsn(input.notBeforeLsn);
    }
    for (const [k, v] of Object.entries(input.limits ?? {})) {
      if (typeof v !== 'number' || !(v > 0)) throw new BadInputError(`limits.${k} must be a positive number of seconds`);
    }
    return { site: ref.site, limits: input.limits ?? {} };
  });
  await control.siteResolveClusterRefs({ refs: { cluster: input.cluster } });
  const facts = await siteActivities(site).siteDescribeCluster({ ref: input.cluster });
  if (!facts) refuse(new ClusterNotFoundError(`${input.cluster} does not exist at site ${site}`));
  if (facts.leaderRole !== 'primary') {
    refuse(new PreconditionFailedError(
      facts.leaderRole === 'standby_leader'
        ? `${input.cluster} is a standby cluster (its leader ${facts.leaderMember} is a standby_leader): force-backup needs a primary; promote it first, or back up its source`
        : `${input.cluster} has no healthy primary (leader role: ${facts.leaderRole}): fix the cluster first`,
      { leaderRole: facts.leaderRole },
    ));
  }
  if (!facts.archive.walPrefix) {
    refuse(new PreconditionFailedError(`${input.cluster} does not archive to S3 (no WAL-G prefix): configure its archive first`));
  }
  record.step('validate-request', 'done',
    `Checked ${input.cluster}: site ${site} known, leader ${facts.leaderMember} is a primary (Postgres ${facts.pgVersion}), archive ${facts.archive.walPrefix}.`,
    { leader: facts.leaderMember, walPrefix: facts.archive.walPrefix });
  return {
    ref: input.cluster,
    site,
    facts,
    notBeforeLsn: input.notBeforeLsn,
    backupTimeoutSeconds: limits.backupTimeoutSeconds ?? DEFAULT_BACKUP_TIMEOUT_SECONDS,
    archiveBrokenAfterSeconds: limits.archiveBrokenAfterSeconds ?? DEFAULT_ARCHIVE_BROKEN_AFTER_SECONDS,
    archivePollSeconds: limits.archivePollSeconds ?? DEFAULT_ARCHIVE_POLL_SECONDS,
    verifyByRestore: input.verifyByRestore === true,
  };
}

export async function checkExistingBackup(record: RunbookRecord, plan: BackupPlan): Promise<BackupNeed> {
  const at = siteActivities(plan.site);
  const pos = await at.postgresCurrentPosition({ ref: plan.ref });
  if (pos.inRecovery) {
    refuse(new PreconditionFailedError(`${plan.ref}'s leader is in recovery (a standby): force-backup needs a primary; promote it first`));
  }
  if (plan.notBeforeLsn && !lsnAtOrAfter(pos.lsn, plan.notBeforeLsn)) {
    refuse(new BadInputError(
      `notBeforeLsn ${plan.notBeforeLsn} is ahead of ${plan.ref}'s current LSN ${pos.lsn}: give an LSN the cluster has reached`,
    ));
  }
  const requiredLsn = plan.notBeforeLsn ?? pos.lsn;
  const existing = await at.s3FindBackupAtOrAfter({
    archive: plan.facts.archive, requiredLsn, timeline: pos.timeline, clusterRef: plan.ref,
  });
  const facts = { requiredLsn, timeline: pos.timeline, leaderLsn: pos.lsn };
  if (existing) {
    record.step('check-existing', 'already',
      `Found complete base backup ${existing.name} of ${plan.ref} on timeline ${pos.timeline}, finished at ${existing.finishLsn} (required ${requiredLsn}): reusing it, no new backup taken.`,
      { ...facts, backup: existing.name, finishLsn: existing.finishLsn });
  } else {
    record.step('check-existing', 'done',
      `No complete base backup of ${plan.ref} on timeline ${pos.timeline} finished at or after ${requiredLsn} (leader at ${pos.lsn}): a new one is needed.`,
      facts);
  }
  return { requiredLsn, timeline: pos.timeline, leaderLsn: pos.lsn, existing };
}
