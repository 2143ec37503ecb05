// drctl: one CLI for the DR runbooks. Start and follow runbooks, decide their approval gates, inspect runs.
// Exit codes: 0 ok, 1 the runbook failed or was refused (or the decision was refused), 2 usage, 3 cannot connect.
import { Command, CommanderError } from 'commander';
import { BadInputError } from '../../../workflows/contracts/errors';
import { DecisionRefusedError, RunbookAlreadyRunningError } from '../runbook-client';
import { defineDecisionCommands } from './approvals';
import { connect, isConnectionFailure, type Temporal } from './connect';
import type { Action } from './context';
import { defineInspectCommands } from './inspect';
import { defineLoginCommand } from './login';
import { CliError, EXIT, Output, writeJson } from './output';
import { RUNBOOK_COMMANDS } from './runbooks';
import { defineSandboxCommand } from './sandbox';
import { defineDrillScheduleCommands } from './drill-schedules';
import { defineRunbookCommand } from './start-command';
import { defineStandbyLagCommands } from './standby-lag';

function asCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof BadInputError) return new CliError('usage', err.message);
  if (err instanceof RunbookAlreadyRunningError) return new CliError('already-running', err.message, { workflowId: err.workflowId });
  if (err instanceof DecisionRefusedError) return new CliError('refused', err.message);
  if (isConnectionFailure(err)) return new CliError('connect', `lost the Temporal connection: ${(err as Error).message}`);
  return new CliError('failed', (err as Error)?.message ?? String(err));
}

/** Runs an action: one answer (JSON document or human text), an exit code, the connection closed. */
function register(cmd: Command, action: Action): void {
  cmd.option('--json', 'one JSON document on stdout (also on failure), no progress');
  cmd.action(async (...params: unknown[]) => {
    const self = params[params.length - 1] as Command;
    const opts = self.opts();
    // `drill schedule`, not `schedule`: the JSON document's command names the subcommand in full.
    const name = self.parent?.parent ? `${self.parent.name()} ${self.name()}` : self.name();
    const out = new Output(opts.json === true, name);
    let temporal: Temporal | undefined;
    let code: number;
    try {
      code = out.answer(await action({
        out, opts, args: self.processedArgs,
        temporal: async () => (temporal ??= await connect()),
      }));
    } catch (err) {
      code = out.fail(asCliError(err));
    } finally {
      await temporal?.close().catch(() => undefined);
    }
    process.exit(code);
  });
}

const GROUPS: Record<string, string> = {
  drill: 'rehearse a failover of one cluster: run a drill now, or schedule drills (Temporal Schedules)',
};

function program(): Command {
  const p = new Command('drctl')
    .description('Postgres DR runbooks on Temporal: start and follow them, decide their approvals, inspect runs.\n' +
      'Connection: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE; ' +
      'queue prefix: DR_TASK_QUEUE_PREFIX.\nExit codes: 0 ok, 1 runbook failed or refused, 2 usage, 3 cannot connect.')
    .showHelpAfterError('(drctl <command> --help for its options)')
    .enablePositionalOptions()
    .exitOverride();
  const groups: Record<string, Command> = {};
  const group = (name: string) => (groups[name] ??= p.command(name).description(GROUPS[name] ?? name));
  for (const spec of RUNBOOK_COMMANDS) defineRunbookCommand(spec.parent ? group(spec.parent) : p, spec, register);
  defineDrillScheduleCommands(group('drill'), register);
  defineStandbyLagCommands(p, register);
  defineDecisionCommands(p, register);
  defineInspectCommands(p, register);
  defineLoginCommand(p, register);
  defineSandboxCommand(p);
  // Subcommands inherit exitOverride only when set before they are added; set it on each for usage errors.
  const override = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  p.commands.forEach(override);
  return p;
}

async function main(argv: string[]): Promise<void> {
  const p = program();
  try {
    await p.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') {
      process.exit(0);
    }
    // commander has printed its message on stderr; in --json mode stdout still gets its one document.
    if (argv.includes('--json')) {
      const words = argv.filter((a) => !a.startsWith('-')).slice(0, 2);
      const group = p.commands.find((c) => c.name() === words[0]);
      const command = group?.commands.some((c) => c.name() === words[1]) ? words.join(' ') : words[0] ?? null;
      writeJson({ ok: false, command, error: { kind: 'usage', message: err.message.replace(/^error: /, '') } });
    }
    process.exit(EXIT.usage);
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`drctl: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(EXIT.failed);
});
