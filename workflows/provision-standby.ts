// provision-standby: build a standby of <source> at <target> that replays the source's WAL from its S3 archive
// and/or streams from its leader, with the source's credentials, and prove it replays with a marker row.
import { patched } from '@temporalio/workflow';
import { siteActivities, siteLongActivities } from './activity-proxies';
import { PreconditionFailedError } from './contracts/errors';
import { lsnDiff } from './contracts/lsn';
import { RUNBOOK_NAMES, type ProvisionStandbyInput, type ProvisionStandbyResult } from './contracts/runbooks';
import { checkArchive } from './phases/archive-check';
import { failureFacts, refuse } from './phases/failures';
import { preflightStandby, usesArchive, usesStreaming, validateRequest, type Plan, type Preflight } from './phases/provision-checks';
import { RunbookRecord } from './phases/runbook-record';
import { keepStandbySlot, manageStandbySlots, releaseStandbySlot } from './phases/standby-slots';

export async function provisionStandby(input: ProvisionStandbyInput): Promise<ProvisionStandbyResult> {
  const record = new RunbookRecord(RUNBOOK_NAMES.provisionStandby, String(input?.target ?? 'unknown'));
  try {
    const plan = await record.phase('validate', () => validateRequest(record, input));
    const pre = await record.phase('preflight', () => preflightStandby(record, plan));
    if (!pre.alreadyProvisioned) {
      await record.phase('copy-credentials', () => copyCredentials(record, plan));
      await record.phase('create-standby', () => createStandby(record, plan, pre));
    }
    const replay = await record.phase('wait-for-replay', () => waitForReplay(record, plan, pre));
    await record.phase('verify', () => verifyMarker(record, plan, pre));
    // What the standby replays from must stay restorable: the backup it was built from and the source's WAL since.
    const archiveCheck = usesArchive(plan.method) && pre.baseBackup && patched('archive-check')
      ? await record.phase('check-archive', () => checkArchive(record, RUNBOOK_NAMES.provisionStandby, {
        site: plan.target.site, archiveSite: plan.source.site, walPrefix: plan.source.facts.archive.walPrefix, backupName: pre.baseBackup!, clusterRef: plan.source.ref,
      }, `The source archive of ${plan.target.ref}, from ${pre.baseBackup}`))
      : null;
    const result = await record.phase('report', () => reportResult(record, plan, pre, replay.replayedLsn));
    record.finish(pre.alreadyProvisioned ? 'already' : 'succeeded');
    return { ...result, ...(archiveCheck ? { archiveCheck } : {}), phaseDurationsMs: record.durations() };
  } catch (err) {
    // provision-standby's changes (marker, secrets, cluster) are all idempotent and safe to repeat: a final
    // error is reported as a refusal when the runbook's own checks said no.
    record.failed(err, { changedAnything: false });
    throw err;
  }
}

async function copyCredentials(record: RunbookRecord, plan: Plan): Promise<void> {
  const r = await siteActivities(plan.target.site).secretsCopyClusterSecrets({ from: plan.source.ref, to: plan.target.ref });
  record.step('copy-credentials', r.copied.length > 0 ? 'done' : 'already',
    r.copied.length > 0
      ? `Copied credentials of users ${r.copied.join(', ')} from ${plan.source.ref} to ${plan.target.ref}${r.unchanged.length ? ` (${r.unchanged.join(', ')} already matched)` : ''}.`
      : `Credentials of ${r.unchanged.join(', ')} at ${plan.target.ref} already matched ${plan.source.ref}.`,
    { copied: r.copied, unchanged: r.unchanged });
}

async function createStandby(record: RunbookRecord, plan: Plan, pre: Preflight): Promise<void> {
  // The slot exists before the standby's first connection, so the source keeps every segment it has not received.
  const slotName = usesStreaming(plan.method) && manageStandbySlots() ? await keepStandbySlot(record, plan.source, plan.target.ref) : undefined;
  let r: { changed: boolean };
  try {
    r = await siteLongActivities(plan.target.site, 600).siteCreateStandbyCluster({
      target: plan.target.ref,
      source: plan.source.ref,
      fromArchive: usesArchive(plan.method) && pre.baseBackup
        ? { archive: plan.source.facts.archive, backupName: pre.baseBackup }
        : undefined,
      fromHost: usesStreaming(plan.method) ? plan.source.facts.streamingEndpoint : undefined,
      like: { pgVersion: plan.source.facts.pgVersion, instances: plan.source.facts.members.length },
      ...(pre.sourceLineage ? { sourceLineage: pre.sourceLineage } : {}),
      ...(Object.keys(plan.source.facts.labels ?? {}).length > 0 ? { labels: plan.source.facts.labels } : {}),
      ...(slotName ? { slotName } : {}),
    });
  } catch (err) {
    // A slot for a standby that was never built would hold the source's WAL forever: it goes with the failure.
    if (slotName) await releaseStandbySlot(record, plan.source, plan.target.ref, `${plan.target.ref} could not be created`).catch(() => undefined);
    throw err;
  }
  const from = [
    usesArchive(plan.method) ? `base backup ${pre.baseBackup} and WAL from ${plan.source.facts.archive.walPrefix}` : '',
    usesStreaming(plan.method) ? `streaming from ${plan.source.facts.streamingEndpoint.host}:${plan.source.facts.streamingEndpoint.port}${slotName ? ` through slot ${slotName}` : ''}` : '',
  ].filter(Boolean).join(' plus ');
  record.step('create-standby', r.changed ? 'done' : 'already',
    r.changed ? `Created standby cluster ${plan.target.ref} from ${from}.` : `Standby cluster ${plan.target.ref} already existed as asked.`);
}

async function waitForReplay(record: RunbookRecord, plan: Plan, pre: Preflight) {
  record.waiting(`${plan.target.ref} to replay up to ${pre.markerLsn}`);
  const r = await siteLongActivities(plan.target.site, plan.replayTimeoutSeconds).postgresWaitForReplay({
    ref: plan.target.ref,
    markerId: pre.markerId,
    targetLsn: pre.markerLsn,
    timeoutSeconds: plan.replayTimeoutSeconds,
    pollIntervalSeconds: plan.pollIntervalSeconds,
  });
  record.waiting(undefined);
  record.step('wait-for-replay', 'done', `Standby ${plan.target.ref} replayed to ${r.replayedLsn} (marker at ${pre.markerLsn}).`,
    { replayedLsn: r.replayedLsn, timeline: r.timeline });
  return r;
}

async function verifyMarker(record: RunbookRecord, plan: Plan, pre: Preflight): Promise<void> {
  const r = await siteActivities(plan.target.site).postgresReadMarker({ ref: plan.target.ref, markerId: pre.markerId });
  if (!r.found || !r.inRecovery) {
    refuse(new PreconditionFailedError(
      !r.found
        ? `marker ${pre.markerId} is not readable on ${plan.target.ref} although replay passed it: the standby does not follow ${plan.source.ref}`
        : `${plan.target.ref} is not in recovery: it is not a standby`,
    ));
  }
  record.step('verify-marker', 'done', `Read marker ${pre.markerId} on standby ${plan.target.ref} (written at ${r.writtenAt}).`);
}

async function reportResult(record: RunbookRecord, plan: Plan, pre: Preflight, replayedLsn: string) {
  let lagBytesAtEnd: number | null = null;
  try {
    const [src, tgt] = await Promise.all([
      siteActivities(plan.source.site).postgresCurrentPosition({ ref: plan.source.ref }),
      siteActivities(plan.target.site).postgresCurrentPosition({ ref: plan.target.ref }),
    ]);
    lagBytesAtEnd = Math.max(0, lsnDiff(src.lsn, tgt.lsn));
    record.step('measure-lag', 'done', `Standby ${plan.target.ref} is ${lagBytesAtEnd} bytes behind ${plan.source.ref} (${tgt.lsn} vs ${src.lsn}).`,
      { sourceLsn: src.lsn, standbyLsn: tgt.lsn, lagBytes: lagBytesAtEnd });
  } catch (err) {
    record.step('measure-lag', 'skipped', `Could not measure the final lag: ${failureFacts(err).message}`);
  }
  return {
    source: plan.source.ref,
    target: plan.target.ref,
    method: plan.method,
    alreadyProvisioned: pre.alreadyProvisioned,
    baseBackup: pre.baseBackup,
    markerId: pre.markerId,
    markerLsn: pre.markerLsn,
    replayedLsn,
    lagBytesAtEnd,
    ...(pre.sourceLineage ? { sourceLineage: pre.sourceLineage } : {}),
  };
}
