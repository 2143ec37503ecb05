// retention: keep the newest N full backups of one cluster's own archive prefix and delete the older ones with the
// WAL only they needed (WAL-G `delete before`, after WAL-G's dry run agreed with the plan). The newest backup of the
// cluster's current timeline is never deleted. With dryRun it only reports. Nothing else of the cluster is touched.
import { control } from './activity-proxies';
import { RUNBOOK_NAMES } from './contracts/runbooks';
import { parseRetentionInput, type RetentionInput, type RetentionResult } from './contracts/retention';
import { check } from './phases/failures';
import { retainBackups } from './phases/retention';
import { RunbookRecord } from './phases/runbook-record';

export async function retention(input: RetentionInput): Promise<RetentionResult> {
  const record = new RunbookRecord(RUNBOOK_NAMES.retention, String(input?.cluster ?? 'unknown'));
  let changing = false;
  try {
    const plan = await record.phase('validate', async () => {
      const p = check(() => parseRetentionInput(input));
      await control.siteResolveClusterRefs({ refs: { cluster: p.cluster } });
      record.step('validate', 'done', `Keeping the newest ${p.keep} full backup(s) of ${p.cluster}${p.dryRun ? ' (dry run: nothing is deleted)' : ''}.`, { ...p });
      return p;
    });
    changing = !plan.dryRun;
    const r = await record.phase('retention', () => retainBackups(record, plan.cluster, plan.keep, plan.dryRun));
    record.finish(r.changed ? 'succeeded' : 'already');
    return r;
  } catch (err) {
    record.failed(err, { changedAnything: changing });
    throw err;
  }
}
