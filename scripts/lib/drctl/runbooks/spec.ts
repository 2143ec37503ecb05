// What a runbook command is: how it reads its options, what input it starts the runbook with, and how its
// result reads. start-command.ts turns a spec into a drctl command (start, follow, gates, --no-wait, --json).
import type { WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import type { Temporal } from '../connect';
import type { Register } from '../context';

export interface RunbookCommandSpec<I = any, R = any> {
  /** The drctl command, e.g. 'failback'. */
  command: string;
  /** The command group it belongs to (`drctl drill run`: parent 'drill'); absent for a top-level command. */
  parent?: string;
  /** The runbook's name in workflow IDs and search attributes, e.g. 'failback-reseed'. */
  runbook: string;
  /** The workflow type, e.g. 'failbackReseed'. */
  workflowType: string;
  description: string;
  /** Adds the command's arguments and options; parsers reject bad input (usage error, exit 2). */
  define(cmd: Command): Command;
  /** Commands under this one that act on its runs (region-failover decide). */
  subcommands?(cmd: Command, register: Register): void;
  /** The runbook input from the parsed arguments, and the cluster its workflow ID is keyed by (its DrCluster). */
  input(args: string[], opts: Record<string, any>): { cluster: string; input: I };
  /** The workflow ID when it is not `<runbook>/<cluster>` (region-failover/<lostSite>). */
  workflowId?(input: I): string;
  /** Whether a human decides a gate in this run (the --no-wait answer then shows how to approve). */
  hasApprovalGate?: boolean | ((input: I) => boolean);
  /** The runbook verifies who started it (requesterIdToken): drctl passes a token of the logged-in user. */
  identifiesRequester?: boolean | ((input: I) => boolean);
  /** Other runs whose approval gates belong to this one (e.g. the child promote of a switch-back). */
  relatedRuns?(input: I): string[];
  /** One line of progress while following, printed when it changes (null: nothing to say yet). */
  progress?(t: Temporal, handle: WorkflowHandle): Promise<string | null>;
  /** A few human lines about a result. */
  summarize(result: R): string[];
  /** `drctl report` of a finished run, when this runbook has its own report (Markdown, and the JSON it is made of). */
  report?(result: R): { markdown: string; json: unknown };
}
