/**
 * What every command gets: the streams it writes to, the resolved coordinator and a client made
 * on first use, the output format, and the clock. Built once per run from the global options.
 * gRPC is loaded by prepare() (which every command action awaits), not by this module, so
 * commands that never call the coordinator start fast.
 */
import type { CoordinatorService } from '@pgs/proto';
import type { CallOptions, Client } from '@pgs/rpc';
import type { Command } from 'commander';
import { loadYamlWriter, parseOutputFormat, type OutputFormat } from './output.js';
import { resolveCoordinator, type Resolved, type SettingsEnv } from './settings.js';

/** The coordinator's operator API as pgsctl uses it. */
export type CoordinatorClient = Client<typeof CoordinatorService>;

/** Streams and environment of one pgsctl run (injected so the CLI can run inside a test too). */
export interface CliIo extends SettingsEnv {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  now: () => number;
}

/** The global options every command accepts. */
export interface GlobalOptions {
  coordinator?: string;
  output: string;
  requestTimeout: number;
  token?: string;
  tokenFile?: string;
  ca?: string;
  insecure?: boolean;
}

/** Per-command access to the coordinator, output and streams. */
export class CommandContext {
  readonly io: CliIo;
  readonly output: OutputFormat;
  readonly coordinator: Resolved;
  private readonly requestTimeoutMs: number;
  private readonly options: GlobalOptions;
  private clientInstance: CoordinatorClient | undefined;
  private connect: typeof import('./coordinator-client.js').connectCoordinator | undefined;

  constructor(io: CliIo, options: GlobalOptions) {
    this.io = io;
    this.output = parseOutputFormat(options.output);
    this.coordinator = resolveCoordinator(options.coordinator, io);
    this.requestTimeoutMs = options.requestTimeout;
    this.options = options;
  }

  /** Loads the gRPC client code (and the YAML writer for -o yaml); awaited before every command action, so `client` and output stay synchronous. */
  async prepare(): Promise<void> {
    this.connect ??= (await import('./coordinator-client.js')).connectCoordinator;
    if (this.output === 'yaml') await loadYamlWriter();
  }

  /** The CoordinatorService client, connected on first use (after prepare()). */
  get client(): CoordinatorClient {
    if (!this.clientInstance) {
      if (this.connect === undefined) throw new Error('pgsctl bug: the coordinator client was used before prepare()');
      this.clientInstance = this.connect(this.coordinator.address, this.options, this.io);
    }
    return this.clientInstance;
  }

  /** Call options with the per-request deadline (--request-timeout). */
  call(extra: CallOptions = {}): CallOptions {
    return { timeoutMs: this.requestTimeoutMs, ...extra };
  }

  /** True when output is for a script (json/yaml). */
  get structured(): boolean {
    return this.output === 'json' || this.output === 'yaml';
  }

  /** Writes to stdout. */
  print(text: string): void {
    this.io.stdout.write(text);
  }

  /** Writes a note to stderr (so stdout stays parseable under -o json). */
  note(text: string): void {
    this.io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Closes the client, if one was made. */
  close(): void {
    this.clientInstance?.close();
  }
}

/** The context of the command being run: built from the root's global options. */
export function contextOf(command: Command, io: CliIo): CommandContext {
  return new CommandContext(io, command.optsWithGlobals<GlobalOptions>());
}
