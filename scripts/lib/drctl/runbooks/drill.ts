// drctl drill run eu/acid-demo --dr-site us [--disruptive] [--verify-table public.t ...] [--keep]
// (drctl drill schedule|list|pause|unpause|trigger|delete are Temporal Schedules of this input: drill-schedules.ts)
import { parseClusterRef } from '../../../../workflows/contracts/clusters';
import { renderDrillReport } from '../../../../workflows/contracts/drill-report';
import type { DrillInput, DrillReport } from '../../../../workflows/contracts/drills';
import { RUNBOOK_NAMES, runbookWorkflowId } from '../../../../workflows/contracts/runbooks';
import type { Command } from 'commander';
import { clusterRef, compact, positiveSeconds, siteName, tableName } from '../options';
import { CliError, formatMs } from '../output';
import type { RunbookCommandSpec } from './spec';

/** --dr-site at another site than the cluster: the drill's own rule, checked before anything starts. */
export function checkDrSite(cluster: string, drSite: string): void {
  if (parseClusterRef(cluster, 'cluster').site === drSite) {
    throw new CliError('usage', `--dr-site "${drSite}" is the site of ${cluster} itself: name the site that would take over`);
  }
}

/** The options a drill run and a drill schedule share: what is drilled and how it is checked. */
export function drillOptions(cmd: Command): Command {
  return cmd
    .argument('<cluster>', 'the protected cluster (a primary), <site>/<cluster>, e.g. eu/acid-demo', clusterRef('cluster'))
    .requiredOption('--dr-site <site>', 'the DR site that would take over, e.g. us', siteName('--dr-site'))
    .option('--verify-table <schema.table>', 'compare the row count of this table on the source and the DR copy (repeatable)', tableName)
    .option('--throwaway-name <name>', 'the throwaway cluster\'s name at the DR site (default <cluster>-drill)')
    .option('--replay-timeout <seconds>', 'how long the throwaway may take to replay to the drill\'s marker (default 1800)', positiveSeconds);
}

export function drillInput(cluster: string, o: Record<string, any>, extra: Partial<DrillInput> = {}): DrillInput {
  checkDrSite(cluster, o.drSite);
  return compact({
    cluster, drSite: o.drSite, verifyTables: o.verifyTable, throwawayName: o.throwawayName,
    limits: { replayTimeoutSeconds: o.replayTimeout }, ...extra,
  });
}

export function summarizeDrill(r: DrillReport): string[] {
  const checks = r.tables.length ? `, tables ${r.tables.filter((t) => t.matches).length}/${r.tables.length} match` : '';
  return [
    `drill of ${r.cluster} at ${r.drSite} (${r.mode}, on ${r.drCluster}): ${r.outcome.toUpperCase()}${r.failure ? `: ${r.failure}` : ''}`,
    `RTO ${formatMs(r.rtoMs)}; RPO ${r.rpo.bytes ?? '?'} bytes, ${r.rpo.seconds ?? '?'} s (basis ${r.rpo.basis}); marker ${r.markerFound ? 'found' : 'NOT found'}${checks}` +
      `${r.backup ? `; backup ${r.backup.name}` : ''}`,
    ...(r.stored ? [`report: ${r.stored.markdown}`] : []),
  ];
}

export const drill: RunbookCommandSpec<DrillInput, DrillReport> = {
  command: 'run',
  parent: 'drill',
  runbook: RUNBOOK_NAMES.drill,
  workflowType: 'drill',
  // Only a disruptive drill asks, in its child runbooks.
  hasApprovalGate: (input) => input.mode === 'disruptive',
  // A disruptive drill promotes the real standby: its starter must be someone who may approve that promotion.
  identifiesRequester: (input) => input.mode === 'disruptive',
  description: 'run a drill now: a throwaway standby at the DR site from the archive, promoted, verified, backed up, torn down, reported',
  define: (cmd) => drillOptions(cmd)
    .option('--disruptive', 'the real planned promote, failback and switchback, with their approvals')
    .option('--standby <site/cluster>', 'disruptive: the real standby at the DR site (default <dr-site>/<same name>)', clusterRef('--standby'))
    .option('--keep', 'keep the throwaway cluster for inspection instead of tearing it down')
    .option('--approval-timeout <seconds>', 'disruptive: how long a human has at each gate (default 3600)', positiveSeconds),
  input: ([cluster], o) => {
    if (!o.disruptive && (o.standby || o.approvalTimeout)) throw new CliError('usage', '--standby and --approval-timeout are for --disruptive drills');
    if (o.disruptive && o.keep) throw new CliError('usage', '--keep is for the throwaway of a non-disruptive drill');
    return {
      cluster,
      input: drillInput(cluster, o, {
        mode: o.disruptive ? 'disruptive' : undefined, standby: o.standby,
        keepThrowaway: o.keep === true ? true : undefined, approvalTimeoutSeconds: o.approvalTimeout,
      }),
    };
  },
  // A disruptive drill's gates are in its child runbooks: the promote of the standby, the failback's rejoin, then
  // the switchback's promote.
  relatedRuns: (input) => {
    if (input.mode !== 'disruptive') return [];
    const standby = input.standby ?? `${input.drSite}/${parseClusterRef(input.cluster).cluster}`;
    return [
      runbookWorkflowId(RUNBOOK_NAMES.promote, standby), runbookWorkflowId(RUNBOOK_NAMES.failbackReseed, input.cluster),
      runbookWorkflowId(RUNBOOK_NAMES.promote, input.cluster),
    ];
  },
  summarize: summarizeDrill,
  report: (r) => ({ markdown: renderDrillReport(r), json: r }),
};
