// `<run>` on the command line: a workflow ID (`promote/us/acid-demo`) or a runbook and a cluster
// (`promote us/acid-demo`); drctl's command names are accepted for their runbooks (`failback` -> failback-reseed).
import { parseClusterRef } from '../../../workflows/contracts/clusters';
import { RUNBOOK_NAMES, runbookWorkflowId } from '../../../workflows/contracts/runbooks';
import { RUNBOOK_COMMANDS } from './runbooks';
import { CliError } from './output';

/** Runbook name for a name or a drctl command alias, or undefined. */
export function runbookName(name: string): string | undefined {
  if ((Object.values(RUNBOOK_NAMES) as string[]).includes(name)) return name;
  return RUNBOOK_COMMANDS.find((c) => c.command === name || c.runbook === name)?.runbook;
}

export function knownRunbooks(): string[] {
  return [...new Set([...Object.values(RUNBOOK_NAMES), ...RUNBOOK_COMMANDS.map((c) => c.runbook)])];
}

export function parseRunRef(parts: string[]): string {
  const usage = 'give the run as "<runbook>/<site>/<cluster>" (e.g. promote/us/acid-demo) or "<runbook> <site>/<cluster>"';
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
  try {
    parseClusterRef(cluster, 'cluster');
  } catch (err) {
    throw new CliError('usage', `run "${parts.join(' ')}": ${(err as Error).message}`);
  }
  return runbookWorkflowId(name, cluster);
}
