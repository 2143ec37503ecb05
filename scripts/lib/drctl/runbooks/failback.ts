// drctl failback --primary us/acid-demo --former-primary eu/acid-demo [--strategy auto] [--switch-back] [--retain-backups N]
import { Option } from 'commander';
import { RUNBOOK_NAMES, runbookWorkflowId, type FailbackInput, type FailbackResult } from '../../../../workflows/contracts/runbooks';
import { clusterRef, compact, distinctClusters, integerAtLeast, positiveSeconds } from '../options';
import { summarizePromote } from './promote';
import type { RunbookCommandSpec } from './spec';

export const failback: RunbookCommandSpec<FailbackInput, FailbackResult> = {
  command: 'failback',
  runbook: RUNBOOK_NAMES.failbackReseed,
  workflowType: 'failbackReseed',
  hasApprovalGate: true,
  identifiesRequester: true,
  description: 'bring the former primary back as a standby of the promoted cluster (rewind or reseed), optionally switch back',
  define: (cmd) => cmd
    .requiredOption('--primary <site/cluster>', 'the promoted cluster, now the primary', clusterRef('--primary'))
    .requiredOption('--former-primary <site/cluster>', 'the old site\'s cluster to bring back as its standby', clusterRef('--former-primary'))
    .addOption(new Option('--strategy <strategy>', 'auto: rewind when possible, reseed otherwise; rewind or reseed: only that').choices(['auto', 'rewind', 'reseed']).default('auto'))
    .option('--switch-back', 'afterwards switch back to the original topology (a planned promote with its own approval)')
    .option('--retain-backups <n>', 'after a successful rejoin, keep only the newest N full backups of the primary\'s archive (drctl retention)', integerAtLeast(1))
    .option('--approval-timeout <seconds>', 'how long a human has to approve the rejoin (runbook default 3600)', positiveSeconds)
    .option('--replay-timeout <seconds>', 'how long the rejoined cluster may take to catch up (runbook default 1800)', positiveSeconds),
  input: (_args, o) => {
    distinctClusters({ flag: '--primary', ref: o.primary }, { flag: '--former-primary', ref: o.formerPrimary });
    return {
      cluster: o.formerPrimary,
      input: compact({
        primary: o.primary, formerPrimary: o.formerPrimary, strategy: o.strategy,
        switchBack: o.switchBack === true ? true : undefined, retainBackups: o.retainBackups,
        approvalTimeoutSeconds: o.approvalTimeout, limits: { replayTimeoutSeconds: o.replayTimeout },
      }),
    };
  },
  // The switch-back is a child promote of the former primary with a gate of its own.
  relatedRuns: (input) => (input.switchBack ? [runbookWorkflowId(RUNBOOK_NAMES.promote, input.formerPrimary)] : []),
  summarize: (r) => [
    r.alreadyRejoined
      ? `${r.formerPrimary} already followed ${r.primary}: nothing destructive was done.`
      : `${r.formerPrimary} follows ${r.primary} by ${r.strategy}${r.rewound ? ' (pg_rewind ran)' : ''}: ${r.choiceReason}.`,
    `caught up at ${r.rejoinedAtLsn ?? '?'}; divergent WAL ${r.divergentBytes ?? 0} bytes${r.quarantine ? `, kept at ${r.quarantine.manifest}` : ''}`,
    ...(r.retention ? [`retention: kept ${r.retention.kept.length} backup(s) of ${r.retention.cluster}, deleted ${r.retention.deleted.length}`] : []),
    ...(r.switchBack ? ['switched back:', ...summarizePromote(r.switchBack).map((l) => `  ${l}`)] : []),
  ],
};
