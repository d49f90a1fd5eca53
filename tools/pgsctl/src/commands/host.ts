/** `pgsctl host ...`: list, get, cordon, uncordon, drain. */
import type { Command } from 'commander';
import { HostState } from '@pgs/proto';
import { Code, RpcError } from '@pgs/rpc';
import { formatCpu, formatSize, validateHostId } from '@pgs/tenancy';
import type { CommandContext } from '../context.js';
import { emit, formatResult } from '../emit.js';
import { UsageError } from '../errors.js';
import { formatAge, formatLabels, renderFields, renderTable } from '../output.js';
import { examples, type Options, type Session } from '../session.js';
import { hostColumns, hostDrainFields, hostStateText, tenantColumns } from '../tables.js';
import { enumNames, enumValue, hostView, tenantView, type HostView } from '../views.js';
import { watchLoop } from '../watch.js';

async function list(ctx: CommandContext, _args: string[], options: Options): Promise<void> {
  const stateText = options.state as string | undefined;
  const state = stateText === undefined ? HostState.UNSPECIFIED : enumValue(HostState, stateText);
  if (state === undefined) throw new UsageError(`invalid --state ${JSON.stringify(stateText)}: use one of ${enumNames(HostState).join(', ')}`);
  const render = async (): Promise<string> => {
    const res = await ctx.client.listHosts({ state }, ctx.call());
    const hosts = res.hosts.map(hostView);
    return formatResult(ctx, hosts, () =>
      renderTable(hostColumns(ctx.io.now()), hosts, { wide: ctx.output === 'wide', empty: 'No hosts registered yet: start a host agent.' }),
    );
  };
  if (options.watch === true) await watchLoop(ctx, render);
  else ctx.print(await render());
}

async function get(ctx: CommandContext, [id]: string[]): Promise<void> {
  const hostId = validateHostId(id ?? '', 'id');
  const res = await ctx.client.getHost({ id: hostId }, ctx.call());
  if (res.host === undefined) throw new RpcError(Code.NOT_FOUND, `host ${hostId} not found`);
  const host = hostView(res.host);
  const tenants = res.tenants.map(tenantView);
  const now = ctx.io.now();
  emit(
    ctx,
    { host, tenants },
    () =>
      renderFields([
        ['Name', host.id],
        ['State', hostStateText(host)],
        ['Address', host.address],
        ['Runtime', host.runtime],
        ['Agent version', host.agentVersion],
        ['Labels', formatLabels(host.labels)],
        ['Capacity', `cpu ${formatCpu(host.capacity.cpuMillis)}, memory ${formatSize(host.capacity.memoryMib)}, disk ${formatSize(host.capacity.diskMib)}`],
        [
          'Allocated',
          `cpu ${formatCpu(host.allocated.cpuMillis)}, memory ${formatSize(host.allocated.memoryMib)}, disk ${formatSize(host.allocated.diskMib)}, ${host.allocated.instances} instances`,
        ],
        ['Last heartbeat', host.lastHeartbeatAt ? `${formatAge(host.lastHeartbeatAt, now)} ago` : 'never'],
        ['Registered', host.registeredAt ?? '-'],
        ...hostDrainFields(host),
      ]) + `\nTenants:\n${renderTable(tenantColumns(now), tenants, { empty: 'none' }).replace(/^(?=.)/gm, '  ')}`,
  );
}

async function cordon(ctx: CommandContext, [id]: string[], on: boolean): Promise<void> {
  const hostId = validateHostId(id ?? '', 'id');
  const res = on ? await ctx.client.cordonHost({ id: hostId }, ctx.call()) : await ctx.client.uncordonHost({ id: hostId }, ctx.call());
  const host: HostView | null = res.host === undefined ? null : hostView(res.host);
  emit(ctx, host, () => `host ${hostId} ${on ? 'cordoned: it gets no new tenants' : 'uncordoned: it takes new tenants again'}\n`);
}

async function drain(ctx: CommandContext, [id]: string[], options: Options): Promise<void> {
  const hostId = validateHostId(id ?? '', 'id');
  const parallel = options.parallel === undefined ? 0 : Number(options.parallel);
  if (!Number.isInteger(parallel) || parallel < 0 || parallel > 64)
    throw new UsageError(`invalid --parallel ${JSON.stringify(options.parallel)}: use a whole number from 1 to 64`);
  const res = await ctx.client.drainHost({ id: hostId, parallel }, ctx.call());
  const moves = res.moves.map((m) => ({ tenantId: m.tenantId, toHostId: m.toHostId }));
  const blocked = res.blocked.map((b) => ({ tenantId: b.tenantId, reason: b.reason }));
  const host = res.host === undefined ? null : hostView(res.host);
  emit(
    ctx,
    { host, moves, blocked },
    () =>
      `host ${hostId} is draining (cordoned; no new tenants); live moves run in the background: follow them with pgsctl host list --watch\n` +
      `\nMoving:\n${renderTable(
        [
          { header: 'tenant', value: (m: (typeof moves)[number]) => m.tenantId },
          { header: 'to host', value: (m) => m.toHostId },
        ],
        moves,
        { empty: 'nothing' },
      ).replace(/^(?=.)/gm, '  ')}` +
      `\nCannot move:\n${renderTable(
        [
          { header: 'tenant', value: (b: (typeof blocked)[number]) => b.tenantId },
          { header: 'reason', value: (b) => b.reason },
        ],
        blocked,
        { empty: 'nothing' },
      ).replace(/^(?=.)/gm, '  ')}`,
  );
}

/** Adds `host` and its subcommands. */
export function registerHost(program: Command, session: Session): void {
  const host = program.command('host').alias('hosts').description('hosts (one host agent each) and their load');
  examples(
    host
      .command('list')
      .alias('ls')
      .description('list hosts: state, address, usage of capacity, tenant count, last heartbeat age')
      .option('--state <state>', `only hosts in this state (${enumNames(HostState).join(', ')})`)
      .option('-w, --watch', 'keep watching and redraw on change')
      .action(session.action(list)),
    ['pgsctl host list', 'pgsctl host list --watch', 'pgsctl host list --state DOWN -o json'],
  );
  examples(host.command('get').alias('describe').argument('<id>').description('show a host and the tenants placed on it').action(session.action(get)), [
    'pgsctl host get h1',
  ]);
  examples(
    host
      .command('cordon')
      .argument('<id>')
      .description('stop placing new tenants on a host')
      .action(session.action((ctx, args) => cordon(ctx, args, true))),
    ['pgsctl host cordon h2'],
  );
  examples(
    host
      .command('uncordon')
      .argument('<id>')
      .description('allow new tenants on a host again')
      .action(session.action((ctx, args) => cordon(ctx, args, false))),
    ['pgsctl host uncordon h2'],
  );
  examples(
    host
      .command('drain')
      .argument('<id>')
      .description('cordon a host and move its tenants away by live moves (shows what cannot move and why)')
      .option('--parallel <n>', "live moves at a time (default: the coordinator's, 2)")
      .action(session.action(drain)),
    ['pgsctl host drain h2', 'pgsctl host drain h2 --parallel 4'],
  );
}
