// The steps of a drill that read the protected cluster and build, promote, check and remove its throwaway copy.
// The real source is only read (plus one marker row); the real standby is never touched.
import { executeChild, patched, workflowInfo } from '@temporalio/workflow';
import { siteActivities, siteLongActivities } from '../activity-proxies';
import { PreconditionFailedError } from '../contracts/errors';
import { lsnAtOrAfter, lsnDiff } from '../contracts/lsn';
import { RUNBOOK_NAMES, runbookWorkflowId, type ForceBackupResult } from '../contracts/runbooks';
import type { DrillReport, DrillTableCheck } from '../contracts/drills';
import { refuse } from './failures';
import type { DrillPlan } from './drill-plan';
import type { RunbookRecord } from './runbook-record';
import type { forceBackup } from '../force-backup';

export interface DrillMarker { id: string; lsn: string; counts: Record<string, number> }

/** What the drill found so far: the report is written from it whether the drill passes or fails. */
export interface DrillFindings {
  rpo: DrillReport['rpo'];
  markerFound: boolean;
  tables: DrillTableCheck[];
  rtoMs: number | null;
  backup: DrillReport['backup'];
  approvals: DrillReport['approvals'];
}

/** What a failover from the archive alone would lose now: the source's LSN against the end of its archive. */
export async function measureArchiveRpo(record: RunbookRecord, plan: DrillPlan): Promise<DrillReport['rpo']> {
  const src = await siteActivities(plan.source.site).postgresCurrentPosition({ ref: plan.source.ref });
  // Read from the DR site: the archive must be readable where the failover would happen.
  const archived = await siteActivities(plan.drSite).s3LastArchivedWal({ archiveSite: plan.source.site, walPrefix: plan.source.facts.archive.walPrefix });
  if (!archived) {
    record.step('measure-rpo', 'done', `${plan.source.ref}'s archive holds no WAL: an archive-only failover would lose everything since its base backup.`);
    return { bytes: null, seconds: null, basis: 'none' };
  }
  const bytes = Math.max(0, lsnDiff(src.lsn, archived.endLsn));
  // An upper bound: the commits since the last archived segment landed are what the archive lacks.
  const seconds = bytes === 0 ? 0 : archived.archivedAt ? Math.max(0, Math.round((Date.parse(src.at) - Date.parse(archived.archivedAt)) / 1000)) : null;
  record.step('measure-rpo', 'done',
    `${plan.source.ref} is at ${src.lsn}; its archive ends at ${archived.endLsn} (segment ${archived.segment}): an archive-only failover now would lose ${bytes} bytes, ${seconds ?? '?'} s.`,
    { sourceLsn: src.lsn, archiveEndLsn: archived.endLsn, segment: archived.segment, bytes, seconds });
  return { bytes, seconds, basis: 'archive' };
}

/** The marker row and the row counts at it, in one transaction on the source; the segment is switched into the archive. */
export async function markSource(record: RunbookRecord, plan: DrillPlan): Promise<DrillMarker> {
  const id = `${workflowInfo().workflowId}@${workflowInfo().runId}`;
  const m = await siteActivities(plan.source.site).postgresMarkAndCount({
    ref: plan.source.ref, markerId: id, runbook: RUNBOOK_NAMES.drill, tables: plan.tables, switchWal: true,
  });
  const counted = Object.entries(m.counts).map(([t, n]) => `${t} ${n} rows`).join(', ');
  record.step('mark-source', m.inserted ? 'done' : 'already', `Wrote marker ${id} on ${plan.source.ref} at ${m.lsn}${counted ? `; at the marker: ${counted}` : ''}.`,
    { lsn: m.lsn, counts: m.counts });
  return { id, lsn: m.lsn, counts: m.counts };
}

/** A standby of the source at the DR site, from its archive only, marked as this drill's throwaway. */
export async function provisionThrowaway(record: RunbookRecord, plan: DrillPlan): Promise<void> {
  const at = siteActivities(plan.drSite);
  if (plan.copy.facts) await teardownThrowaway(record, plan, 'leftover');
  const backup = await at.s3FindLatestBackup({ archive: plan.source.facts.archive, clusterRef: plan.source.ref });
  const creds = await at.secretsCopyClusterSecrets({ from: plan.source.ref, to: plan.copy.ref });
  await siteLongActivities(plan.drSite, 900).siteCreateStandbyCluster({
    target: plan.copy.ref, source: plan.source.ref, drill: plan.guard,
    fromArchive: { archive: plan.source.facts.archive, backupName: backup.name },
    // One member is enough to prove a restore and a promotion; the DR site carries it beside its real standbys.
    like: { pgVersion: plan.source.facts.pgVersion, instances: 1 },
  });
  record.step('provision-throwaway', 'done',
    `Created throwaway ${plan.copy.ref} from ${plan.source.ref}'s base backup ${backup.name} and WAL archive only (credentials of ${[...creds.copied, ...creds.unchanged].join(', ')} copied).`,
    { backup: backup.name, finishLsn: backup.finishLsn });
}

export async function waitForMarker(record: RunbookRecord, plan: DrillPlan, marker: DrillMarker): Promise<void> {
  record.waiting(`${plan.copy.ref} to replay ${plan.source.ref}'s archive up to the marker at ${marker.lsn}`);
  const r = await siteLongActivities(plan.drSite, plan.replayTimeoutSeconds).postgresWaitForReplay({
    ref: plan.copy.ref, markerId: marker.id, targetLsn: marker.lsn, timeoutSeconds: plan.replayTimeoutSeconds, pollIntervalSeconds: 2,
  });
  record.waiting(undefined);
  record.step('wait-for-marker', 'done', `${plan.copy.ref} replayed to ${r.replayedLsn}: the marker (${marker.lsn}) is there.`, { replayedLsn: r.replayedLsn });
}

/** Promotes the throwaway; RTO is from this decision to the first write it accepted. */
export async function promoteThrowaway(record: RunbookRecord, plan: DrillPlan, marker: DrillMarker) {
  const facts = await siteActivities(plan.drSite).siteDescribeCluster({ ref: plan.copy.ref });
  const own = facts?.archive.walPrefix ?? '';
  // The promoted copy archives and backs up: never into the source's prefix, whatever went wrong before.
  if (!facts || facts.drill !== plan.guard || !own || own === plan.source.facts.archive.walPrefix || own.startsWith(`${plan.source.facts.archive.walPrefix}/`)) {
    refuse(new PreconditionFailedError(`${plan.copy.ref} is not ${plan.guard}'s throwaway with an archive of its own (${own || 'none'}): not promoting it`));
  }
  // Drills started before the lineage check replay without its reads (patch marker).
  if (patched('drill-lineage-check')) await checkThrowawayLineage(record, plan, marker);
  const decidedAt = Date.now();
  const r = await siteLongActivities(plan.drSite, 300).siteRemoveStandbyConfig({ ref: plan.copy.ref });
  const w = await siteLongActivities(plan.drSite, 120).postgresVerifyWritable({ ref: plan.copy.ref, markerId: `${marker.id}/writable`, runbook: RUNBOOK_NAMES.drill });
  const rtoMs = Math.max(0, Date.parse(w.writtenAt) - decidedAt);
  record.step('promote-throwaway', r.changed ? 'done' : 'already',
    `Promoted ${plan.copy.ref}${r.promotePath ? ` (${r.promotePath})` : ''}: first write accepted at ${w.lsn} on timeline ${w.timeline}, ${rtoMs} ms after the decision; it archives to ${own}.`,
    { rtoMs, lsn: w.lsn, timeline: w.timeline, walPrefix: own });
  return { rtoMs, lsn: w.lsn, walPrefix: own };
}

/** The copy is the source's: same system identifier, timeline not behind, replayed at or past the marker. */
async function checkThrowawayLineage(record: RunbookRecord, plan: DrillPlan, marker: DrillMarker): Promise<void> {
  const [copy, src] = await Promise.all([
    siteActivities(plan.drSite).postgresCurrentPosition({ ref: plan.copy.ref }),
    siteActivities(plan.source.site).postgresCurrentPosition({ ref: plan.source.ref }),
  ]);
  const problem = copy.systemIdentifier !== src.systemIdentifier
    ? `${plan.copy.ref} is database system ${copy.systemIdentifier}, but its source ${plan.source.ref} is system ${src.systemIdentifier}`
    : copy.timeline < src.timeline
      ? `${plan.copy.ref} is on timeline ${copy.timeline}, behind ${plan.source.ref}'s timeline ${src.timeline}`
      : !copy.inRecovery || !lsnAtOrAfter(copy.lsn, marker.lsn)
        ? `${plan.copy.ref} replayed to ${copy.lsn}${copy.inRecovery ? '' : ' and is not in recovery'}, not at or past the marker at ${marker.lsn}`
        : null;
  if (problem) {
    refuse(new PreconditionFailedError(`lineage mismatch: ${problem}: not promoting the throwaway`, {
      copySystemIdentifier: copy.systemIdentifier, sourceSystemIdentifier: src.systemIdentifier, copyTimeline: copy.timeline, sourceTimeline: src.timeline,
    }));
  }
  record.step('check-lineage', 'done',
    `${plan.copy.ref} descends from ${plan.source.ref}: system ${copy.systemIdentifier}, timeline ${copy.timeline} (source ${src.timeline}), replayed to ${copy.lsn}.`,
    { systemIdentifier: copy.systemIdentifier, timeline: copy.timeline, sourceTimeline: src.timeline, replayedLsn: copy.lsn });
}

/** The marker and the row counts on the DR copy against the source's at the marker; a difference fails the drill. */
export async function verifyCopy(record: RunbookRecord, plan: DrillPlan, marker: DrillMarker, findings: DrillFindings): Promise<void> {
  const r = await siteActivities(plan.drSite).postgresCountRows({ ref: plan.copy.ref, markerId: marker.id, tables: plan.tables });
  findings.markerFound = r.markerFound;
  findings.tables = plan.tables.map((t) => ({ table: t, sourceRows: marker.counts[t] ?? null, drillRows: r.counts[t] ?? null, matches: r.counts[t] === marker.counts[t] }));
  const bad = findings.tables.filter((t) => !t.matches).map((t) => `${t.table} ${t.drillRows ?? 'missing'} vs ${t.sourceRows} on the source`);
  const summary = `marker ${r.markerFound ? 'found' : 'NOT found'} on ${plan.copy.ref}${findings.tables.length
    ? `; row counts ${bad.length ? `differ: ${bad.join(', ')}` : `match: ${findings.tables.map((t) => `${t.table} ${t.drillRows}`).join(', ')}`}` : ''}`;
  if (!r.markerFound || bad.length) {
    refuse(new PreconditionFailedError(`The DR copy does not hold the source's data at the marker: ${summary}`, { markerFound: r.markerFound, tables: findings.tables }));
  }
  record.step('verify-data', 'done', `Checked the data: ${summary}.`, { markerFound: r.markerFound, tables: findings.tables });
}

/**
 * A base backup of the promoted copy under the copy's own prefix, proven by its sentinel and (runs started since
 * the patch) by restoring it in a scratch: a drill shows the backup after a failover would also restore.
 */
export async function proveBackup(record: RunbookRecord, plan: DrillPlan, notBeforeLsn: string, walPrefix: string): Promise<ForceBackupResult> {
  record.waiting(`a proven base backup of ${plan.copy.ref} (child force-backup)`);
  const verifyByRestore = patched('drill-backup-restore-proof');
  const b = await executeChild<typeof forceBackup>('forceBackup', {
    workflowId: runbookWorkflowId(RUNBOOK_NAMES.forceBackup, plan.copy.ref), taskQueue: workflowInfo().taskQueue,
    args: [{ cluster: plan.copy.ref, notBeforeLsn, ...(verifyByRestore ? { verifyByRestore } : {}) }],
  });
  record.waiting(undefined);
  const r = b.restoreProof;
  const restored = r
    ? `, and by restore: replayed to ${r.restoredToLsn}, marker ${r.markerFound ? 'found' : 'NOT found'}, amcheck passed on ${r.indexesChecked} btree indexes`
    : '';
  record.step('prove-backup', 'done', `Proved base backup ${b.backupName} of ${plan.copy.ref} (finish LSN ${b.finishLsn}) under ${walPrefix} by its sentinel${restored}.`,
    { backup: b.backupName, sentinelKey: b.sentinelKey, finishLsn: b.finishLsn, ...(r ? { restoreProof: r } : {}) });
  return b;
}

export async function teardownThrowaway(record: RunbookRecord, plan: DrillPlan, what: 'leftover' | 'throwaway'): Promise<void> {
  const r = await siteLongActivities(plan.drSite, 600).siteDeleteDrillThrowaway({ ref: plan.copy.ref, drill: plan.guard });
  record.step(what === 'leftover' ? 'remove-leftover' : 'teardown', r.changed ? 'done' : 'already',
    `${r.changed ? 'Deleted' : 'Nothing to delete:'} ${what === 'leftover' ? 'the leftover of an earlier drill, ' : 'throwaway '}${plan.copy.ref}` +
    `${r.secretsDeleted.length ? ` with the credentials of ${r.secretsDeleted.join(', ')}` : ''}${r.kept ? `; ${r.kept}` : ''}.`,
    { ...r });
}
