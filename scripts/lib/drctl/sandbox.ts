// drctl sandbox ...: the same as scripts/sandbox (its arguments, output and exit code).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Command } from 'commander';

export function defineSandboxCommand(program: Command): void {
  program.command('sandbox')
    .description('the local two-region sandbox: passes everything to scripts/sandbox (up, status [--json], dr-cycle, down, reset)')
    .argument('[args...]', 'scripts/sandbox arguments')
    .helpOption(false)
    .allowUnknownOption()
    .passThroughOptions()
    .action((args: string[]) => {
      const r = spawnSync(join(__dirname, '..', '..', 'sandbox'), args, { stdio: 'inherit' });
      process.exit(r.status ?? (r.signal ? 128 : 1));
    });
}
