/** Runs pgsctl once: parse, run the command, report any error with its exit code. */
import { CommanderError } from 'commander';
import type { CliIo } from './context.js';
import { CliError, ExitCode, QuietExit } from './errors.js';
import { buildProgram } from './program.js';
import { Session } from './session.js';

function report(io: CliIo, err: CliError): void {
  io.stderr.write(`error: ${err.message}\n`);
  if (err.hint) io.stderr.write(`hint: ${err.hint}\n`);
}

/** Runs pgsctl with `argv` (without node and script); resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const session = new Session(io);
  try {
    const program = await buildProgram(session, argv);
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.OK;
  } catch (err) {
    if (err instanceof QuietExit) return err.exitCode;
    if (err instanceof CommanderError) {
      // Commander has already printed its message (and the help hint); help and version exit 0.
      return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    // Loaded only on failure: the mapping needs gRPC's status codes, which `version` never loads.
    const { toCliError } = await import('./error-mapping.js');
    const cliError = toCliError(err, session.coordinatorAddress || 'the configured address');
    report(io, cliError);
    return cliError.exitCode;
  } finally {
    session.close();
  }
}
