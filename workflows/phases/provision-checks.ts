// The checks of provision-standby that run before anything changes: the request, the source, the archive,
// the target. Every refusal says what to fix.
import { workflowInfo } from '@temporalio/workflow';
import { control, siteActivities } from '../activity-proxies';
import { parseClusterRef, sameCluster, type ClusterRef } from '../contracts/clusters';
import { BadInputError, ClusterNotFoundError, PreconditionFailedError } from '../contracts/errors';
import { rejectUnknownFields } from '../contracts/input-fields';
import { RUNBOOK_NAMES, type ProvisionStandbyInput, type ReplicationMethod } from '../contracts/runbooks';
import { check, refuse } from './failures';
import type { RunbookRecord } from './runbook-record';
import type { ClusterFacts, SourceLineage } from '../../activities/sites/site-driver';

export interface Plan {
  source: ClusterRef & { ref: string; facts: ClusterFacts };
  target: ClusterRef & { ref: string; facts: ClusterFacts | null };
  method: ReplicationMethod;
  replayTimeoutSeconds: number;
  pollIntervalSeconds: number;
}

export interface Preflight {
  alreadyProvisioned: boolean;
  baseBackup?: string;
  markerId: string;
  markerLsn: string;
  /** The live source's system identifier and timeline, recorded on the standby (absent in runs before it was read). */
  sourceLineage?: SourceLineage;
}

const METHODS: ReplicationMethod[] = ['archive', 'stream', 'both'];
export const usesArchive = (m: ReplicationMethod) => m !== 'stream';
export const usesStreaming = (m: ReplicationMethod) => m !== 'archive';

export async function validateRequest(record: RunbookRecord, input: ProvisionStandbyInput): Promise<Plan> {
  const { source, target, method, limits } = check(() => {
    if (!input || typeof input !== 'object') {
      throw new BadInputError('input must be a JSON object: {"source": "eu/acid-demo", "target": "us/acid-demo", "method": "archive"}');
    }
    rejectUnknownFields<ProvisionStandbyInput>(input, { source: true, target: true, method: true, limits: true });
    const source = parseClusterRef(input.source, 'source');
    const target = parseClusterRef(input.target, 'target');
    if (sameCluster(source, target)) throw new BadInputError(`source and target are both "${input.source}": name a different target`);
    if (source.site === target.site) {
      throw new BadInputError(`source and target are both at site "${source.site}": a standby belongs in another region`);
    }
    if (!METHODS.includes(input.method)) {
      throw new BadInputError(`method "${String(input.method)}" is not one of ${METHODS.join(', ')}`);
    }
    for (const [k, v] of Object.entries(input.limits ?? {})) {
      if (typeof v !== 'number' || !(v > 0)) throw new BadInputError(`limits.${k} must be a positive number of seconds`);
    }
    return { source, target, method: input.method, limits: input.limits ?? {} };
  });
  await control.siteResolveClusterRefs({ refs: { source: input.source, target: input.target } });
  const [sourceFacts, targetFacts] = await Promise.all([
    siteActivities(source.site).siteDescribeCluster({ ref: input.source }),
    siteActivities(target.site).siteDescribeCluster({ ref: input.target }),
  ]);
  if (!sourceFacts) refuse(new ClusterNotFoundError(`source ${input.source} does not exist at site ${source.site}`));
  if (targetFacts && targetFacts.pgVersion !== sourceFacts.pgVersion) {
    refuse(new PreconditionFailedError(
      `target ${input.target} runs Postgres ${targetFacts.pgVersion} but source ${input.source} runs ${sourceFacts.pgVersion}: a physical standby needs the same major version`,
    ));
  }
  record.step('validate-request', 'done',
    `Checked ${input.source} -> ${input.target} (${method}): both sites known, source runs Postgres ${sourceFacts.pgVersion}, target ${targetFacts ? 'exists' : 'does not exist yet'}.`,
    { sourceUid: sourceFacts.uid, pgVersion: sourceFacts.pgVersion });
  return {
    source: { ...source, ref: input.source, facts: sourceFacts },
    target: { ...target, ref: input.target, facts: targetFacts },
    method,
    replayTimeoutSeconds: limits.replayTimeoutSeconds ?? 1800,
    pollIntervalSeconds: limits.pollIntervalSeconds ?? 5,
  };
}

function isStandbyOf(target: ClusterFacts, source: ClusterFacts): boolean {
  const s = target.standbySource;
  if (!s) return false;
  if (s.walPrefix && s.walPrefix === source.archive.walPrefix) return true;
  return !!s.host && s.host === source.streamingEndpoint.host && s.port === source.streamingEndpoint.port;
}

export async function preflightStandby(record: RunbookRecord, plan: Plan): Promise<Preflight> {
  const { source, target } = plan;
  if (source.facts.leaderRole !== 'primary') {
    refuse(new PreconditionFailedError(
      source.facts.leaderRole === 'standby_leader'
        ? `source ${source.ref} is itself a standby cluster: provision from its primary cluster instead`
        : `source ${source.ref} has no healthy primary (leader role: ${source.facts.leaderRole}): fix the source first`,
    ));
  }
  record.step('check-source', 'done', `Source ${source.ref} has a healthy primary (${source.facts.leaderMember}).`);

  let baseBackup: string | undefined;
  let backupSystemIdentifier: string | undefined;
  if (usesArchive(plan.method)) {
    const backup = await siteActivities(target.site).s3FindLatestBackup({
      archive: source.facts.archive,
      clusterRef: source.ref,
    });
    baseBackup = backup.name;
    backupSystemIdentifier = backup.systemIdentifier;
    record.step('check-base-backup', 'done',
      `Found complete base backup ${backup.name} of ${source.ref} (finish LSN ${backup.finishLsn}, ${backup.completeBackups} complete in ${source.facts.archive.walPrefix}).`,
      { backup: backup.name, finishLsn: backup.finishLsn });
  }

  let alreadyProvisioned = false;
  if (target.facts) {
    if (!isStandbyOf(target.facts, source.facts)) {
      refuse(new PreconditionFailedError(
        `target ${target.ref} already exists and is ${target.facts.standbySource ? 'a standby of another source' : `a ${target.facts.leaderRole} cluster`}: choose another target name, or remove it first`,
        { leaderRole: target.facts.leaderRole },
      ));
    }
    alreadyProvisioned = true;
    record.step('check-target', 'already', `Target ${target.ref} already is a standby of ${source.ref}: nothing to create.`);
  } else {
    const dry = await siteActivities(target.site).secretsCopyClusterSecrets({ from: source.ref, to: target.ref, dryRun: true });
    record.step('check-target', 'done',
      `Target ${target.ref} does not exist; ${dry.copied.length + dry.unchanged.length} credentials of ${source.ref} are ready to copy.`);
  }

  const markerId = `${workflowInfo().workflowId}@${workflowInfo().runId}`;
  const marker = await siteActivities(source.site).postgresWriteMarker({
    ref: source.ref, markerId, runbook: RUNBOOK_NAMES.provisionStandby, switchWal: usesArchive(plan.method),
  });
  // Histories from before the marker carried the lineage replay with a result without it.
  const sourceLineage = marker.systemIdentifier ? { systemIdentifier: marker.systemIdentifier, timeline: marker.timeline } : undefined;
  record.step('write-marker', 'done', `Wrote marker ${markerId} on ${source.ref} at LSN ${marker.lsn}` +
    `${sourceLineage ? ` (system identifier ${sourceLineage.systemIdentifier}, timeline ${sourceLineage.timeline})` : ''}.`,
    { lsn: marker.lsn, ...(sourceLineage ? { sourceSystemIdentifier: sourceLineage.systemIdentifier, sourceTimeline: sourceLineage.timeline } : {}) });
  // The backup's sentinel names the cluster it was taken from: a backup of another cluster in this prefix would
  // build a standby that never replays this source's WAL.
  if (sourceLineage && backupSystemIdentifier && backupSystemIdentifier !== sourceLineage.systemIdentifier) {
    refuse(new PreconditionFailedError(
      `base backup ${baseBackup} in ${source.facts.archive.walPrefix} was taken from system ${backupSystemIdentifier}, but ${source.ref} is system ` +
      `${sourceLineage.systemIdentifier}: the archive holds another cluster's backup; take a new one with force-backup ${source.ref}`,
      { backupSystemIdentifier, sourceSystemIdentifier: sourceLineage.systemIdentifier },
    ));
  }
  return { alreadyProvisioned, baseBackup, markerId, markerLsn: marker.lsn, ...(sourceLineage ? { sourceLineage } : {}) };
}
