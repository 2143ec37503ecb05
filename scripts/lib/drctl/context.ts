// What every command action gets: its output, parsed options and arguments, and a lazy Temporal connection.
import type { Temporal } from './connect';
import type { Answer, Output } from './output';

export interface CommandContext {
  out: Output;
  opts: Record<string, any>;
  args: any[];
  /** Connects on first use (exit 3 when it cannot), so bad input fails before any connection. */
  temporal(): Promise<Temporal>;
}

export type Action = (ctx: CommandContext) => Promise<Answer>;
export type Register = (cmd: import('commander').Command, action: Action) => void;
