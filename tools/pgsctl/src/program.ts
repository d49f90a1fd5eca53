/** The pgsctl command tree: global options, every command, help text with exit codes. */
import { Command, Option } from 'commander';
import { registerBackup } from './commands/backup.js';
import { registerConnect } from './commands/connect.js';
import { registerDb } from './commands/db.js';
import { registerEvents } from './commands/events.js';
import { registerHost } from './commands/host.js';
import { registerMisc } from './commands/misc.js';
import { registerRoute } from './commands/route.js';
import { registerStatus } from './commands/status.js';
import { registerAdmin, registerToken } from './commands/token.js';
import { registerTenant } from './commands/tenant.js';
import { registerUser } from './commands/user.js';
import { ExitCode } from './errors.js';
import { OUTPUT_FORMATS } from './output.js';
import { durationArg } from './parse.js';
import type { Session } from './session.js';

const ROOT_HELP = `
Coordinator address, first found: --coordinator, PGS_COORDINATOR, ~/.config/pgs/config.json
({"coordinator": "host:port"}), .pgs/local/fleet.json of a local fleet (npm start) in this
directory or above, 127.0.0.1:7400.

Exit codes:
  ${ExitCode.OK}  ok
  ${ExitCode.UNEXPECTED}  unexpected error
  ${ExitCode.USAGE}  usage: bad flag or argument, or a value the rules refuse
  ${ExitCode.NOT_FOUND}  not found
  ${ExitCode.CONFLICT}  conflict: already exists, stale revision, or not allowed in the current state
  ${ExitCode.UNAVAILABLE}  unavailable: the coordinator cannot be reached
  ${ExitCode.TIMEOUT}  --wait timed out
  ${ExitCode.DENIED}  denied: no valid operator token, or its role may not do this
  ${ExitCode.FAILED}  the backup or restore --wait followed failed

Examples:
  pgsctl status
  pgsctl tenant create acme --access enabled --wait
  pgsctl connect acme
  pgsctl backup list acme
  pgsctl tenant restore acme --to-time 2026-12-06T10:15:00Z --as acme-check --wait
  pgsctl host list
  pgsctl events --watch
`;

/** Builds the program; `session` receives the I/O and the context of the command that runs. */
export function buildProgram(session: Session): Command {
  const { io } = session;
  const program = new Command('pgsctl')
    .description('operate a pgs fleet: tenants (one PostgreSQL server each), backups, hosts, routes, events')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true)
    .helpCommand(true)
    .option('-c, --coordinator <host:port>', 'the coordinator\'s gRPC address')
    .option('--token <token>', 'operator token (prefer PGS_TOKEN or --token-file: flags show in ps)')
    .option('--token-file <file>', 'file holding the operator token (PGS_TOKEN_FILE)')
    .option('--ca <file>', 'CA file to check the coordinator\'s certificate with (PGS_CA; the local fleet\'s is found by itself)')
    .option('--insecure', 'plaintext gRPC to an --insecure coordinator (test machines only)')
    .addOption(new Option('-o, --output <format>', 'output format').choices([...OUTPUT_FORMATS]).default('table'))
    .addOption(new Option('--request-timeout <duration>', 'deadline of each call to the coordinator').argParser(durationArg).default(durationArg('10s'), '10s'))
    .addHelpText('after', ROOT_HELP);
  registerTenant(program, session);
  registerBackup(program, session);
  registerUser(program, session);
  registerDb(program, session);
  registerHost(program, session);
  registerRoute(program, session);
  registerEvents(program, session);
  registerStatus(program, session);
  registerConnect(program, session);
  registerToken(program, session);
  registerAdmin(program, session);
  registerMisc(program, session);
  return program;
}
