/** `pgsctl route list`: the route table the routers follow. */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { formatResult } from '../emit.js';
import { renderTable } from '../output.js';
import { examples, type Options, type Session } from '../session.js';
import { routeColumns } from '../tables.js';
import { routerView, routeView } from '../views.js';
import { watchLoop } from '../watch.js';

async function list(ctx: CommandContext, _args: string[], options: Options): Promise<void> {
  const render = async (): Promise<string> => {
    const res = await ctx.client.listRoutes({}, ctx.call());
    const value = { revision: Number(res.revision), routes: res.routes.map(routeView), routers: res.routers.map(routerView) };
    return formatResult(
      ctx,
      value,
      () =>
        `Route table revision ${value.revision}; routers connected: ${value.routers.map((r) => r.routerId).join(', ') || 'none'}\n\n` +
        renderTable(routeColumns, value.routes, { wide: ctx.output === 'wide', empty: 'No routes yet.' }),
    );
  };
  if (options.watch === true) await watchLoop(ctx, render);
  else ctx.print(await render());
}

/** Adds `route list`. */
export function registerRoute(program: Command, session: Session): void {
  const route = program.command('route').alias('routes').description("the route table: where each tenant's primary is, as the routers see it");
  examples(
    route
      .command('list')
      .alias('ls')
      .description('list routes and connected routers')
      .option('-w, --watch', 'keep watching and redraw on change')
      .action(session.action(list)),
    ['pgsctl route list', 'pgsctl route list -o wide', 'pgsctl route list -o json'],
  );
}
