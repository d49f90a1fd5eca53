/**
 * One pgsctl run: holds the CommandContext (made from the global options of the command that
 * runs) and turns command handlers into commander actions.
 */
import type { Command } from 'commander';
import { contextOf, type CliIo, type CommandContext } from './context.js';

/** Options of a command as commander hands them over. */
export type Options = Record<string, unknown>;

/** A command handler: the context, the positional arguments, the command's options. */
export type Handler = (ctx: CommandContext, args: string[], options: Options, command: Command) => Promise<void>;

/** State of one run, shared by every command. */
export class Session {
  readonly io: CliIo;
  private ctx: CommandContext | undefined;

  constructor(io: CliIo) {
    this.io = io;
  }

  /** The context, made on first use from the running command's global options. */
  context(command: Command): CommandContext {
    this.ctx ??= contextOf(command, this.io);
    return this.ctx;
  }

  /** The coordinator address tried, for error messages ('' before any command resolved it). */
  get coordinatorAddress(): string {
    return this.ctx?.coordinator.address ?? '';
  }

  /** A commander action calling `handler`. */
  action(handler: Handler): (...args: unknown[]) => Promise<void> {
    return async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const options = args[args.length - 2] as Options;
      const positional = args.slice(0, -2).flatMap((a) => (Array.isArray(a) ? a.map(String) : a === undefined ? [] : [String(a)]));
      const ctx = this.context(command);
      await ctx.prepare();
      await handler(ctx, positional, options, command);
    };
  }

  /** Releases the gRPC channel. */
  close(): void {
    this.ctx?.close();
  }
}

/** Adds an "Examples:" section to a command's --help. */
export function examples(command: Command, lines: readonly string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
}
