// drctl promote us/acid-demo --mode planned|unplanned [--source eu/acid-demo] [--no-backup] ...
import { Option } from 'commander';
import { RUNBOOK_NAMES, type PromoteInput, type PromoteResult } from '../../../../workflows/contracts/runbooks';
import { clusterRef, compact, nonNegativeNumber, positiveSeconds } from '../options';
import type { RunbookCommandSpec } from './spec';

export function summarizePromote(r: PromoteResult): string[] {
  if (r.alreadyPromoted) return [`${r.cluster} already was a primary: nothing changed.`];
  return [
    `${r.cluster} is the primary (${r.mode}; was a standby of ${r.source ?? '?'}): timeline ${r.timelineBefore ?? '?'} -> ${r.timelineAfter}, fence ${r.fence}.`,
    `approved by ${r.approval?.approver ?? '?'} (ticket ${r.approval?.ticket ?? '?'}); writable ${r.rtoMs ?? '?'} ms after approval` +
      `${r.writeDowntimeMs !== null ? `; writes stopped ${r.writeDowntimeMs} ms` : ''}; loss ${r.measuredRpoBytes ?? r.estimate?.bytes ?? '?'} bytes${r.measuredRpoBytes === null ? ' (estimated)' : ''}`,
    ...(r.backup ? [`first backup ${r.backup.backupName} (finish ${r.backup.finishLsn})`] : []),
    ...(r.fenceGuard ? [`the old primary is NOT confirmed fenced: ${r.fenceGuard} fences it when its site answers again`] : []),
  ];
}

export const promote: RunbookCommandSpec<PromoteInput, PromoteResult> = {
  command: 'promote',
  runbook: RUNBOOK_NAMES.promote,
  workflowType: 'promote',
  hasApprovalGate: true,
  identifiesRequester: true,
  description: 'make a standby the primary: assess the loss, fence, wait for approval, promote, verify, first backup',
  define: (cmd) => cmd
    .argument('<cluster>', 'the standby to promote, <site>/<cluster>', clusterRef('cluster'))
    .addOption(new Option('--mode <mode>', 'planned: the source is reachable, switch over with no loss; unplanned: the source is down or suspect').choices(['planned', 'unplanned']).makeOptionMandatory())
    .option('--source <site/cluster>', 'the cluster it replays from (default: what provision-standby recorded)', clusterRef('--source'))
    .option('--no-backup', 'do not take the first backup of the new timeline')
    .option('--max-loss-bytes <n>', 'largest acceptable loss in bytes of WAL (default 0)', nonNegativeNumber)
    .option('--max-loss-seconds <n>', 'largest acceptable loss in seconds of commits (default 0)', nonNegativeNumber)
    .option('--approval-timeout <seconds>', 'how long a human has to decide (runbook default 3600)', positiveSeconds)
    .option('--region-timeout <seconds>', 'how long a site may take to answer before it counts as unreachable (default 30)', positiveSeconds)
    .option('--catch-up-timeout <seconds>', 'planned: how long to wait for the standby to replay the last WAL (default 300)', positiveSeconds),
  input: ([cluster], o) => ({
    cluster,
    input: compact({
      cluster, mode: o.mode, source: o.source,
      dataLossPolicy: { maxBytes: o.maxLossBytes, maxSeconds: o.maxLossSeconds },
      approvalTimeoutSeconds: o.approvalTimeout,
      takeBackup: o.backup === false ? false : undefined,
      limits: { regionTimeoutSeconds: o.regionTimeout, catchUpTimeoutSeconds: o.catchUpTimeout },
    }),
  }),
  summarize: summarizePromote,
};
