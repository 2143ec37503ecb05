// drctl retention eu/acid-demo --keep 3 [--dry-run]
import { RUNBOOK_NAMES } from '../../../../workflows/contracts/runbooks';
import type { RetainedBackup, RetentionInput, RetentionResult } from '../../../../workflows/contracts/retention';
import { clusterRef, compact, integerAtLeast } from '../options';
import type { RunbookCommandSpec } from './spec';

const line = (b: RetainedBackup) => `  ${b.name}  timeline ${b.timeline}  ${b.startLsn}..${b.finishLsn}  ${b.finishTime ?? ''}${b.permanent ? '  permanent' : ''}`;

export const retention: RunbookCommandSpec<RetentionInput, RetentionResult> = {
  command: 'retention',
  runbook: RUNBOOK_NAMES.retention,
  workflowType: 'retention',
  description: 'keep the newest N full backups of a cluster\'s own archive and delete older ones with their WAL (wal-g delete); ' +
    'never the newest backup of its current timeline',
  define: (cmd) => cmd
    .argument('<cluster>', 'the cluster whose own archive is pruned, <site>/<cluster>', clusterRef('cluster'))
    .requiredOption('--keep <n>', 'how many of the newest full backups to keep (>= 1)', integerAtLeast(1))
    .option('--dry-run', 'list what would be deleted (WAL-G\'s own dry run); delete nothing'),
  input: ([cluster], o) => ({ cluster, input: compact({ cluster, keep: o.keep, dryRun: o.dryRun === true ? true : undefined }) }),
  summarize: (r) => [
    r.deleted.length === 0
      ? `${r.cluster}: ${r.kept.length} full backup(s) in ${r.walPrefix}, nothing beyond the newest ${r.keepApplied} to delete.`
      : `${r.cluster}: ${r.dryRun ? 'would delete' : 'deleted'} ${r.deleted.length} backup(s) and ${r.walg?.walObjects ?? 0} WAL object(s) before ${r.deleteBefore} in ${r.walPrefix}.`,
    ...(r.raisedBecause ? [`keep raised from ${r.keepAsked} to ${r.keepApplied}: ${r.raisedBecause}`] : []),
    'kept:', ...r.kept.map(line),
    ...(r.deleted.length ? [r.dryRun ? 'would delete:' : 'deleted:', ...r.deleted.map(line)] : []),
  ],
};
