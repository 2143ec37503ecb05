// drctl force-backup eu/acid-demo [--not-before-lsn 0/5000000]
import { RUNBOOK_NAMES, type ForceBackupInput, type ForceBackupResult } from '../../../../workflows/contracts/runbooks';
import { clusterRef, compact, lsn, positiveSeconds } from '../options';
import type { RunbookCommandSpec } from './spec';

export const forceBackup: RunbookCommandSpec<ForceBackupInput, ForceBackupResult> = {
  command: 'force-backup',
  runbook: RUNBOOK_NAMES.forceBackup,
  workflowType: 'forceBackup',
  description: 'take a full base backup of a primary now and prove it landed (its stop sentinel in S3)',
  define: (cmd) => cmd
    .argument('<cluster>', 'the primary to back up, <site>/<cluster>', clusterRef('cluster'))
    .option('--not-before-lsn <lsn>', 'the backup must finish at or after this LSN (default: the leader\'s LSN at start); the same LSN again reuses a backup', lsn)
    .option('--backup-timeout <seconds>', 'how long backup-push, and then its WAL reaching the archive, may take (runbook default 3600)', positiveSeconds)
    .option('--archive-broken-after <seconds>', 'archiving that fails this long with nothing archived since fails the run (runbook default 300)', positiveSeconds),
  input: ([cluster], o) => ({
    cluster,
    input: compact({
      cluster, notBeforeLsn: o.notBeforeLsn,
      limits: compact({ backupTimeoutSeconds: o.backupTimeout, archiveBrokenAfterSeconds: o.archiveBrokenAfter }),
    }),
  }),
  summarize: (r) => [
    `${r.reused ? 'Reused' : 'Took'} ${r.backupName} of ${r.cluster}: start ${r.startLsn}, finish ${r.finishLsn} (required ${r.requiredLsn}), timeline ${r.timeline}` +
      `${r.compressedSize !== undefined ? `, ${r.compressedSize} bytes compressed` : ''}.`,
    `proof: ${r.sentinelKey}`,
    ...(r.archivedWal ? [`its WAL through the finish LSN is archived: ${r.archivedWal}`] : []),
  ],
};
