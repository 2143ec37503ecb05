// One retention pass over a cluster's own archive prefix (workflows/contracts/retention.ts holds the rules), shared
// by the retention runbook and failback-reseed's optional last step. The journal names every backup kept and
// deleted, and why keep was raised when it was.
import { siteLongActivities } from '../activity-proxies';
import { parseClusterRef } from '../contracts/clusters';
import type { RetentionResult } from '../contracts/retention';
import type { RunbookRecord } from './runbook-record';

// wal-g delete lists the whole prefix twice (dry run, then for real) and deletes object by object.
const RETENTION_MAX_SECONDS = 1800;

export async function retainBackups(record: RunbookRecord, cluster: string, keep: number, dryRun: boolean): Promise<RetentionResult> {
  const r = await siteLongActivities(parseClusterRef(cluster).site, RETENTION_MAX_SECONDS).walgRetainBackups({ cluster, keep, dryRun });
  const kept = r.kept.map((b) => `${b.name} (timeline ${b.timeline}${b.permanent ? ', permanent' : ''})`).join(', ') || 'none';
  const raised = r.raisedBecause ? ` keep raised from ${r.keepAsked} to ${r.keepApplied}: ${r.raisedBecause}.` : '';
  const facts = {
    walPrefix: r.walPrefix, keepAsked: r.keepAsked, keepApplied: r.keepApplied, dryRun: r.dryRun,
    kept: r.kept.map((b) => b.name), deleted: r.deleted.map((b) => b.name), walObjects: r.walg?.walObjects ?? 0,
  };
  if (!r.deleted.length) {
    record.step('retention', 'already', `${cluster} has ${r.kept.length} full backup(s) in ${r.walPrefix}, none beyond the newest ${r.keepApplied}: nothing to delete. Kept: ${kept}.${raised}`, facts);
  } else if (r.dryRun) {
    record.step('retention', 'skipped', `Dry run: wal-g delete before ${r.deleteBefore} would delete ${r.deleted.map((b) => b.name).join(', ')} ` +
      `and ${r.walg?.walObjects ?? 0} WAL object(s) before it from ${r.walPrefix}; nothing was deleted. Would keep: ${kept}.${raised}`, facts);
  } else {
    record.step('retention', 'done', `Deleted ${r.deleted.map((b) => b.name).join(', ')} and ${r.walg?.walObjects ?? 0} WAL object(s) before ${r.deleteBefore} ` +
      `from ${r.walPrefix}. Kept: ${kept}.${raised}`, facts);
  }
  return r;
}
