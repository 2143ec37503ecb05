// The drill's archive checks (WAL-G wal-verify, workflows/phases/archive-check.ts), run while the throwaway still
// exists: the SOURCE's archive from its newest backup to now, which is what a real failover would restore from, read
// from the DR site; and the throwaway's own new prefix from the backup the drill proved. A drill exists to find such
// a gap before a real failover does: a failed check pages (checkArchive) and also fails the drill, after its report.
import { ApplicationFailure } from '@temporalio/workflow';
import { siteActivities } from '../activity-proxies';
import type { ArchiveCheck } from '../contracts/archive-check';
import { RUNBOOK_NAMES, type FailbackResult, type PromoteResult } from '../contracts/runbooks';
import { checkArchive } from './archive-check';
import type { DrillPlan } from './drill-plan';
import type { RunbookRecord } from './runbook-record';

const failed = (c: ArchiveCheck | null | undefined) => c === null || c?.status === 'FAILURE';

function failDrill(prefixes: string[]): never {
  throw ApplicationFailure.nonRetryable(
    `WAL-G's archive check failed for ${prefixes.join(' and ')}: a restore from there would stop short (see the check-archive step)`,
    'ArchiveCheckFailedError',
  );
}

/** Non-disruptive drill: both prefixes the drill relied on, from the DR site. */
export async function checkDrillArchives(record: RunbookRecord, plan: DrillPlan, throwaway: { walPrefix: string; backupName: string }): Promise<void> {
  const { archive } = plan.source.facts;
  const pos = await siteActivities(plan.source.site).postgresCurrentPosition({ ref: plan.source.ref });
  const newest = await siteActivities(plan.drSite).s3FindLatestBackup({ archive, timeline: pos.timeline, clusterRef: plan.source.ref });
  const source = await checkArchive(record, RUNBOOK_NAMES.drill, {
    site: plan.drSite, archiveSite: plan.source.site, walPrefix: archive.walPrefix, backupName: newest.name, clusterRef: plan.source.ref, position: pos,
  }, `The archive a failover of ${plan.source.ref} restores from, from ${newest.name}, read at ${plan.drSite}`);
  const copy = await checkArchive(record, RUNBOOK_NAMES.drill, {
    site: plan.drSite, archiveSite: plan.drSite, walPrefix: throwaway.walPrefix, backupName: throwaway.backupName, clusterRef: plan.copy.ref,
  }, `The throwaway ${plan.copy.ref}'s own archive, from its backup ${throwaway.backupName}`);
  const bad = [failed(source) ? archive.walPrefix : null, failed(copy) ? throwaway.walPrefix : null].filter((p): p is string => p !== null);
  if (bad.length) failDrill(bad);
}

/** Disruptive drill: the child runbooks ran the checks (and paged); a failed one fails the drill too. */
export function failOnChildArchiveChecks(promoted: PromoteResult, failback: FailbackResult): void {
  const checks = [promoted.archiveCheck, failback.archiveCheck, failback.switchBack?.archiveCheck];
  const bad = checks.filter((c) => c?.status === 'FAILURE').map((c) => c!.walPrefix);
  if (bad.length) failDrill(bad);
}
