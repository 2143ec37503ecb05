// What a runbook command is: how it reads its options, what input it starts the runbook with, and how its
// result reads. start-command.ts turns a spec into a drctl command (start, follow, gates, --no-wait, --json).
import type { Command } from 'commander';

export interface RunbookCommandSpec<I = any, R = any> {
  /** The drctl command, e.g. 'failback'. */
  command: string;
  /** The runbook's name in workflow IDs and search attributes, e.g. 'failback-reseed'. */
  runbook: string;
  /** The workflow type, e.g. 'failbackReseed'. */
  workflowType: string;
  description: string;
  /** Adds the command's arguments and options; parsers reject bad input (usage error, exit 2). */
  define(cmd: Command): Command;
  /** The runbook input from the parsed arguments, and the cluster its workflow ID is keyed by. */
  input(args: string[], opts: Record<string, any>): { cluster: string; input: I };
  /** Other runs whose approval gates belong to this one (e.g. the child promote of a switch-back). */
  relatedRuns?(input: I): string[];
  /** A few human lines about a result. */
  summarize(result: R): string[];
}
