/** `pgsctl completion`, `pgsctl version` (and `version list`) and `pgsctl config view`. */
import type { Command } from 'commander';
import { bashCompletion, zshCompletion } from '../completion.js';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { UsageError } from '../errors.js';
import { renderFields } from '../output.js';
import { resolveRouter, userConfigPath } from '../settings.js';
import { examples, type Options, type Session } from '../session.js';

/** pgsctl's own version (kept in step with package.json). */
export const PGSCTL_VERSION = '0.1.0';

async function config(ctx: CommandContext, _args: string[], options: Options): Promise<void> {
  const router = resolveRouter(options.router as string | undefined, ctx.io);
  const value = {
    coordinator: ctx.coordinator.address,
    coordinatorSource: ctx.coordinator.source,
    router: router.address,
    routerSource: router.source,
    configFile: userConfigPath(ctx.io),
  };
  emit(ctx, value, () =>
    renderFields([
      ['Coordinator', `${value.coordinator} (from ${value.coordinatorSource})`],
      ['Router', `${value.router} (from ${value.routerSource})`],
      ['Config file', value.configFile],
    ]),
  );
}

/** Adds `completion`, `version` and `config view`. */
export function registerMisc(program: Command, session: Session): void {
  examples(
    program
      .command('completion')
      .argument('<shell>', 'bash or zsh')
      .description('print a shell completion script')
      .action((shell: string) => {
        if (shell === 'bash') session.io.stdout.write(bashCompletion(program));
        else if (shell === 'zsh') session.io.stdout.write(zshCompletion(program));
        else throw new UsageError(`no completion for shell ${JSON.stringify(shell)}: use bash or zsh`);
      }),
    ['source <(pgsctl completion bash)', 'pgsctl completion zsh > "${fpath[1]}/_pgsctl"', "echo 'source <(pgsctl completion bash)' >> ~/.bashrc"],
  );
  const version = program
    .command('version')
    .alias('versions')
    .description("print pgsctl's version; `version list`: the PostgreSQL versions the fleet offers")
    .action(() => {
      session.io.stdout.write(`pgsctl ${PGSCTL_VERSION}\n`);
    });
  examples(
    version
      .command('list')
      .alias('ls')
      .description('list the PostgreSQL majors: where each runs, whether it can have replicas and backups, and the default')
      // Loaded on use: `pgsctl version` alone stays free of gRPC.
      .action(session.action(async (ctx, args, options) => (await import('./versions.js')).listVersions(ctx, args, options))),
    ['pgsctl version list', 'pgsctl version list -o json', 'pgsctl tenant create acme --version 18 --no-backups'],
  );
  const cfg = program.command('config').description('where pgsctl finds the coordinator and the routers');
  examples(
    cfg
      .command('view')
      .description('show the coordinator and router addresses pgsctl uses, and where each came from')
      .option('--router <host:port>', 'as for connect')
      .action(session.action(config)),
    ['pgsctl config view', 'echo \'{"coordinator": "10.0.0.5:7400", "router": "db.example.com:5432"}\' > ~/.config/pgs/config.json'],
  );
}
