/** `pgsctl status`: a fleet summary, problems first (like `kubectl cnpg status`). */
import type { Command } from 'commander';
import { formatCpu, formatSize } from '@pgs/tenancy';
import type { CommandContext } from '../context.js';
import { formatResult } from '../emit.js';
import { formatProblems, indent, renderFields } from '../output.js';
import { examples, type Options, type Session } from '../session.js';
import { fleetStatusView, type FleetStatusView } from '../views.js';
import { watchLoop } from '../watch.js';

// Worst first, so the eye lands on trouble.
const HOST_ORDER = ['DOWN', 'UNREACHABLE', 'READY'];
const TENANT_ORDER = [
  'ERROR',
  'UNAVAILABLE',
  'FAILING_OVER',
  'RESTORING',
  'MOVING',
  'DELETING',
  'STOPPING',
  'NEW',
  'IN_PROGRESS',
  'SUSPENDED',
  'STOPPED',
  'ACTIVE',
];

function counts(byKey: Record<string, number>, order: readonly string[]): string {
  const keys = Object.keys(byKey).sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b));
  const parts = keys.filter((k) => (byKey[k] ?? 0) > 0).map((k) => `${byKey[k]} ${k}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

function total(byKey: Record<string, number>): number {
  return Object.values(byKey).reduce((a, b) => a + b, 0);
}

function share(used: number, capacity: number, format: (n: number) => string): string {
  return `${format(used)} of ${format(capacity)}${capacity > 0 ? ` (${Math.round((used / capacity) * 100)}%)` : ''}`;
}

/** Renders the fleet summary for people. */
export function renderStatus(s: FleetStatusView, coordinator: string): string {
  const problems = s.problems.length === 0 ? 'Problems: none\n' : `Problems (${s.problems.length}):\n${indent(formatProblems(s.problems))}`;
  return (
    `Fleet at coordinator ${coordinator}\n\n${problems}\n` +
    renderFields([
      ['Hosts', `${total(s.hostsByState)}: ${counts(s.hostsByState, HOST_ORDER)} (agents connected: ${s.agentsConnected})`],
      ['Tenants', `${total(s.tenantsByStatus)}: ${counts(s.tenantsByStatus, TENANT_ORDER)}`],
      ['Routers', `${s.routersConnected} connected (route table revision ${s.routeRevision})`],
      ['CPU', share(s.allocated.cpuMillis, s.capacity.cpuMillis, formatCpu)],
      ['Memory', share(s.allocated.memoryMib, s.capacity.memoryMib, formatSize)],
      ['Disk', share(s.allocated.diskMib, s.capacity.diskMib, formatSize)],
      ['Instances', s.allocated.instances],
    ])
  );
}

async function status(ctx: CommandContext, _args: string[], options: Options): Promise<void> {
  const render = async (): Promise<string> => {
    const view = fleetStatusView(await ctx.client.getFleetStatus({}, ctx.call()));
    return formatResult(ctx, view, () => renderStatus(view, ctx.coordinator.address));
  };
  if (options.watch === true) await watchLoop(ctx, render);
  else ctx.print(await render());
}

/** Adds `status`. */
export function registerStatus(program: Command, session: Session): void {
  examples(
    program
      .command('status')
      .description('fleet summary: problems first, hosts by state, tenants by status, routers, capacity')
      .option('-w, --watch', 'keep watching and redraw on change')
      .action(session.action(status)),
    ['pgsctl status', 'pgsctl status --watch', 'pgsctl status -o json | jq .problems'],
  );
}
