// `<run>` on the command line: a workflow ID (`promote/us/acid-demo`) or a runbook and a cluster
// (`promote us/acid-demo`); drctl's command names are accepted for their runbooks (`failback` -> failback-reseed).
// Two runbooks are keyed differently: region-failover by the lost site (`region-failover/eu`), and a drill started
// by its schedule carries the scheduled time that Temporal appends (`drill/eu/acid-demo-2026-11-30T03:00:00Z`).
import { parseClusterRef } from '../../../workflows/contracts/clusters';
import { regionFailoverWorkflowId } from '../../../workflows/contracts/region-failover';
import { RUNBOOK_NAMES, runbookWorkflowId } from '../../../workflows/contracts/runbooks';
import { RUNBOOK_COMMANDS } from './runbooks';
import { CliError } from './output';

/** Runbook name for a name or a drctl command alias, or undefined. */
export function runbookName(name: string): string | undefined {
  if ((Object.values(RUNBOOK_NAMES) as string[]).includes(name)) return name;
  return RUNBOOK_COMMANDS.find((c) => (c.parent ?? c.command) === name || c.runbook === name)?.runbook;
}

export function knownRunbooks(): string[] {
  return [...new Set([...Object.values(RUNBOOK_NAMES), ...RUNBOOK_COMMANDS.map((c) => c.runbook)])];
}

// The site rule of parseClusterRef (workflows/contracts/clusters.ts), for refs that name a site alone.
const SITE_NAME = /^[a-z][a-z0-9-]{0,30}$/;

export function checkSite(site: string, field: string): string {
  if (!SITE_NAME.test(site)) throw new CliError('usage', `${field} "${site}" must be a site name: lower-case letters, digits and '-'`);
  return site;
}

// What Temporal appends to a scheduled workflow's ID: the scheduled time, RFC 3339 in UTC to the second.
const SCHEDULED_SUFFIX = /^(.*)-(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$/;

export function parseRunRef(parts: string[]): string {
  const usage = 'give the run as "<runbook>/<site>/<cluster>" (e.g. promote/us/acid-demo) or "<runbook> <site>/<cluster>"' +
    ' (region-failover/<lost site> for a region failover)';
  let runbook: string;
  let cluster: string;
  if (parts.length === 2) {
    [runbook, cluster] = parts;
  } else if (parts.length === 1) {
    const slash = parts[0].indexOf('/');
    if (slash <= 0) throw new CliError('usage', `run "${parts[0]}": ${usage}`);
    runbook = parts[0].slice(0, slash);
    cluster = parts[0].slice(slash + 1);
  } else {
    throw new CliError('usage', `run "${parts.join(' ')}": ${usage}`);
  }
  const name = runbookName(runbook);
  if (!name) throw new CliError('usage', `run "${parts.join(' ')}": runbook "${runbook}" is not one of ${knownRunbooks().join(', ')}`);
  if (name === RUNBOOK_NAMES.regionFailover) {
    // Its DrCluster is `<lostSite>/*`; both spellings name the one evacuation of that site.
    return regionFailoverWorkflowId(checkSite(cluster.replace(/\/\*$/, ''), `run "${parts.join(' ')}": lost site`));
  }
  const scheduled = name === RUNBOOK_NAMES.drill ? SCHEDULED_SUFFIX.exec(cluster) : null;
  try {
    parseClusterRef(scheduled ? scheduled[1] : cluster, 'cluster');
  } catch (err) {
    throw new CliError('usage', `run "${parts.join(' ')}": ${(err as Error).message}`);
  }
  return scheduled ? `${runbookWorkflowId(name, scheduled[1])}-${scheduled[2]}` : runbookWorkflowId(name, cluster);
}
