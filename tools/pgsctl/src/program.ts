/**
 * The pgsctl command tree: global options, every command, help text with exit codes. Each
 * top-level command's module is imported only when the command line names it (commands import
 * gRPC and the generated descriptors, which cost hundreds of milliseconds to load); help,
 * completion and anything unknown load them all, so help and suggestions stay complete.
 */
import { Command, Option } from 'commander';
import { registerMisc } from './commands/misc.js';
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
  pgsctl apply -f tenants/ --dry-run
`;

type Register = (program: Command, session: Session) => void;

/** A top-level command (with its aliases) and how to load what registers it. */
interface Group {
  names: readonly string[];
  load: () => Promise<Register>;
}

/** In the order help lists them. */
const GROUPS: readonly Group[] = [
  { names: ['tenant', 'tenants'], load: async () => (await import('./commands/tenant.js')).registerTenant },
  { names: ['backup', 'backups'], load: async () => (await import('./commands/backup.js')).registerBackup },
  { names: ['user', 'users'], load: async () => (await import('./commands/user.js')).registerUser },
  { names: ['db', 'database'], load: async () => (await import('./commands/db.js')).registerDb },
  { names: ['host', 'hosts'], load: async () => (await import('./commands/host.js')).registerHost },
  { names: ['route', 'routes'], load: async () => (await import('./commands/route.js')).registerRoute },
  { names: ['events'], load: async () => (await import('./commands/events.js')).registerEvents },
  { names: ['status'], load: async () => (await import('./commands/status.js')).registerStatus },
  { names: ['connect'], load: async () => (await import('./commands/connect.js')).registerConnect },
  { names: ['token'], load: async () => (await import('./commands/token.js')).registerToken },
  { names: ['admin'], load: async () => (await import('./commands/token.js')).registerAdmin },
  { names: ['apply', 'diff', 'delete', 'manifest'], load: async () => (await import('./commands/manifest.js')).registerManifest },
];

/** Commands of misc.ts, registered always: they load nothing heavy. */
const LIGHT = new Set(['version', 'versions', 'config']);

/** Global options that take a value in the next word (`--coordinator=x` needs no skipping). */
const VALUE_OPTIONS = new Set(['-c', '--coordinator', '--token', '--token-file', '--ca', '-o', '--output', '--request-timeout']);

/** The first word of `argv` that is not a global option or its value: the top-level command. */
export function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] ?? '';
    if (word === '--') return argv[i + 1];
    if (!word.startsWith('-')) return word;
    if (VALUE_OPTIONS.has(word)) i++;
  }
  return undefined;
}

/** The groups to register for `argv`: only the one it names, or all when it names none of them. */
function groupsFor(argv: readonly string[] | undefined): readonly Group[] {
  if (argv === undefined) return GROUPS;
  const word = commandWord(argv);
  if (word !== undefined && LIGHT.has(word)) return [];
  const named = GROUPS.filter((g) => word !== undefined && g.names.includes(word));
  return named.length > 0 ? named : GROUPS;
}

/**
 * Builds the program; `session` receives the I/O and the context of the command that runs.
 * With `argv`, only the command it names is loaded; without, the whole tree.
 */
export async function buildProgram(session: Session, argv?: readonly string[]): Promise<Command> {
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
    .option('-c, --coordinator <host:port>', "the coordinator's gRPC address")
    .option('--token <token>', 'operator token (prefer PGS_TOKEN or --token-file: flags show in ps)')
    .option('--token-file <file>', 'file holding the operator token (PGS_TOKEN_FILE)')
    .option('--ca <file>', "CA file to check the coordinator's certificate with (PGS_CA; the local fleet's is found by itself)")
    .option('--insecure', 'plaintext gRPC to an --insecure coordinator (test machines only)')
    .addOption(new Option('-o, --output <format>', 'output format').choices([...OUTPUT_FORMATS]).default('table'))
    .addOption(new Option('--request-timeout <duration>', 'deadline of each call to the coordinator').argParser(durationArg).default(durationArg('10s'), '10s'))
    .addHelpText('after', ROOT_HELP);
  const registers = await Promise.all(groupsFor(argv).map((g) => g.load()));
  for (const register of registers) register(program, session);
  registerMisc(program, session);
  return program;
}
