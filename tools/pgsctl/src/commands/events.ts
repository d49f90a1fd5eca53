/** `pgsctl events`: the event and audit log, optionally followed live (--watch). */
import type { Command } from 'commander';
import { validateHostId, validateTenantId } from '@pgs/tenancy';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { renderDocument, renderTable } from '../output.js';
import { positiveIntArg } from '../parse.js';
import { examples, type Options, type Session } from '../session.js';
import { eventColumns } from '../tables.js';
import { eventView, type EventView } from '../views.js';

function line(ctx: CommandContext, e: EventView): string {
  if (ctx.output === 'json') return `${JSON.stringify(e)}\n`;
  if (ctx.output === 'yaml') return `---\n${renderDocument('yaml', e)}`;
  const where = [e.tenantId && `tenant=${e.tenantId}`, e.hostId && `host=${e.hostId}`].filter(Boolean).join(' ');
  return `${e.time ?? '-'}  ${e.action}  ${e.outcome}  ${where}  ${e.message}\n`;
}

async function events(ctx: CommandContext, _args: string[], options: Options): Promise<void> {
  const tenantId = options.tenant === undefined ? '' : validateTenantId(options.tenant as string, '--tenant');
  const hostId = options.host === undefined ? '' : validateHostId(options.host as string, '--host');
  const res = await ctx.client.listEvents({ tenantId, hostId, limit: options.limit as number }, ctx.call());
  // The coordinator answers newest first; a log reads oldest first.
  const recent = res.events.map(eventView).sort((a, b) => a.id - b.id);
  if (options.watch !== true) {
    emit(ctx, recent, () => renderTable(eventColumns(ctx.io.now()), recent, { wide: ctx.output === 'wide', empty: 'No events.' }));
    return;
  }
  for (const e of recent) ctx.print(line(ctx, e));
  const afterId = recent.at(-1)?.id ?? 0;
  // No deadline on a watch: it runs until Ctrl-C, which cancels the stream.
  const stream = ctx.client.watchEvents({ tenantId, hostId, afterId: BigInt(afterId) });
  const stop = (): void => stream.cancel();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for await (const msg of stream) if (msg.event !== undefined) ctx.print(line(ctx, eventView(msg.event)));
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** Adds `events`. */
export function registerEvents(program: Command, session: Session): void {
  examples(
    program
      .command('events')
      .description('show recent events (creations, placements, host state changes, ...); --watch follows them live')
      .option('--tenant <id>', 'only events of this tenant')
      .option('--host <id>', 'only events of this host')
      .option('--limit <n>', 'how many recent events (at most 1000)', positiveIntArg, 50)
      .option('-w, --watch', 'after the recent events, print new ones as they happen (one line each; JSON lines with -o json)')
      .action(session.action(events)),
    ['pgsctl events', 'pgsctl events --tenant acme --watch', 'pgsctl events --host h2 -o json'],
  );
}
