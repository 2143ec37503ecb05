// drctl provision-standby --source eu/acid-demo --target us/acid-demo [--method both]
import { Option } from 'commander';
import { RUNBOOK_NAMES, type ProvisionStandbyInput, type ProvisionStandbyResult } from '../../../../workflows/contracts/runbooks';
import { clusterRef, compact, distinctClusters, positiveSeconds } from '../options';
import type { RunbookCommandSpec } from './spec';

export const provisionStandby: RunbookCommandSpec<ProvisionStandbyInput, ProvisionStandbyResult> = {
  command: 'provision-standby',
  runbook: RUNBOOK_NAMES.provisionStandby,
  workflowType: 'provisionStandby',
  description: 'build a standby of --source at another site (--target) and prove it replays',
  define: (cmd) => cmd
    .requiredOption('--source <site/cluster>', 'the cluster to protect, e.g. eu/acid-demo', clusterRef('--source'))
    .requiredOption('--target <site/cluster>', 'the standby to build, at another site, e.g. us/acid-demo', clusterRef('--target'))
    .addOption(new Option('--method <method>', 'archive (S3 base backup + WAL), stream (from the source leader), or both').choices(['archive', 'stream', 'both']).default('both'))
    .option('--replay-timeout <seconds>', 'how long the standby may take to replay to the marker (runbook default 1800)', positiveSeconds)
    .option('--poll-interval <seconds>', 'how often the replay wait checks (runbook default 5)', positiveSeconds),
  input: (_args, o) => {
    distinctClusters({ flag: '--source', ref: o.source }, { flag: '--target', ref: o.target }, true);
    return {
      cluster: o.target,
      input: compact({
        source: o.source, target: o.target, method: o.method,
        limits: { replayTimeoutSeconds: o.replayTimeout, pollIntervalSeconds: o.pollInterval },
      }),
    };
  },
  summarize: (r) => [
    r.alreadyProvisioned
      ? `${r.target} already was a standby of ${r.source}: nothing changed.`
      : `${r.target} is a standby of ${r.source} (${r.method}${r.baseBackup ? `, from ${r.baseBackup}` : ''}).`,
    `marker ${r.markerId} at ${r.markerLsn}, replayed ${r.replayedLsn}; lag at the end ${r.lagBytesAtEnd ?? '?'} bytes`,
  ],
};
