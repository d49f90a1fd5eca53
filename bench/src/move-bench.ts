// Live move benchmark: a single-node tenant of each size (PGS_MOVE_SIZES_MIB, default 100 and 1024
// MiB of table data) moves to another host while clients work through the router in transaction
// pooling: a writer (one autocommit insert at a time), a reader (a count of a small table) and a
// prober that opens a new connection per query. Printed per size: the whole move and its audited
// steps (copy, switch, removal of the old instance), the client-visible pause (p50, p99 and max of
// the latency of statements that ended during the switch, and the longest anywhere in the move),
// client errors, failed new connections, and acknowledged writes lost (checked after the move).
// Goal: pause p99 under 1 s, zero failed new connections, zero lost writes.
//
// Before the switch the old primary checkpoints while clients still run (the fenced shutdown then
// has little left to write); PGS_MOVE_CHECKPOINT=both runs each size without it first (the
// coordinator restarted with --move-checkpoint-timeout 0), then with it, for a before/after at the
// same load; =off runs only without it.
//
//   npm run bench:move -w bench              (PGS_MOVE_SIZES_MIB=100,1024, PGS_MOVE_CHECKPOINT=on)
import os from 'node:os';
import pg from 'pg';
import { HostState, PoolMode, RunState, TenantStatus } from '@pgs/proto';
import { poll, withFleet, type BenchFleet, type BenchRouter } from './fleet-launcher.js';
import { barChartSvg, report, summarize, verdict } from './fleet-report.js';
import { Load } from './switch-load.js';

const SIZES_MIB = (process.env.PGS_MOVE_SIZES_MIB ?? '100,1024')
  .split(',')
  .map(Number)
  .filter((n) => Number.isFinite(n) && n > 0);
const CHECKPOINT_MODES: readonly boolean[] = { both: [false, true], off: [false], on: [true] }[process.env.PGS_MOVE_CHECKPOINT ?? 'on'] ?? [true];
const PASSWORD = 'move-bench-secret';
const BLOCK = 35;

interface Run {
  sizeMib: number;
  /** The old primary checkpointed before the switch. */
  checkpoint: boolean;
  /** Fence sent -> fenced, and the agent's own shutdown time within it. */
  fenceMs: number;
  shutdownMs: number;
  bytes: number;
  totalMs: number;
  copyMs: number;
  switchMs: number;
  removeMs: number;
  pause: ReturnType<typeof summarize>;
  longestMs: number;
  statements: number;
  clientErrors: Record<string, number>;
  connects: number;
  failedConnects: number;
  acked: number;
  lost: number;
  /** The 1-minute load average at the move's start and end. */
  loadAvg: string;
}

async function ownerClient(router: BenchRouter, id: string): Promise<pg.Client> {
  const c = new pg.Client({ host: router.host, port: router.port, user: id, database: id, password: PASSWORD });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function oneRun(fleet: BenchFleet, router: BenchRouter, sizeMib: number, checkpoint: boolean): Promise<Run> {
  const id = `mv${sizeMib}m${checkpoint ? '' : 'n'}`;
  await fleet.client.createTenant({
    id,
    ownerPassword: PASSWORD,
    spec: {
      resources: { cpuMillis: 1000, memoryMib: 512, diskMib: Math.max(8192, sizeMib * 4) },
      nodes: 1,
      externalAccess: true,
      runState: RunState.RUNNING,
      poolMode: PoolMode.TRANSACTION,
    },
  });
  await poll(`tenant ${id} ACTIVE`, async () => (await fleet.client.getTenant({ id })).tenant?.status === TenantStatus.ACTIVE, 120_000, 200);
  let owner: pg.Client | undefined;
  await poll(
    `tenant ${id} through the router`,
    async () => {
      owner = await ownerClient(router, id).catch(() => undefined);
      return owner !== undefined;
    },
    30_000,
    200,
  );
  if (!owner) throw new Error('no owner connection');
  await owner.query('create table acked (id bigint primary key)');
  // About 1 KiB a row; filled in chunks so no single statement runs for minutes.
  await owner.query('create table filler (id bigint, v text)');
  const rows = sizeMib * 1000;
  const filledAt = Date.now();
  for (let from = 0; from < rows; from += 100_000) {
    await owner.query(`insert into filler select g, repeat(md5(g::text), 30) from generate_series(${from + 1}, ${Math.min(rows, from + 100_000)}) g`);
  }
  const bytes = Number((await owner.query<{ n: string }>('select pg_database_size(current_database())::text as n')).rows[0]?.n ?? 0);
  await owner.end();
  console.log(`${id}: ${(bytes / 1048576).toFixed(0)} MiB of data written in ${Date.now() - filledAt} ms`);

  const tenant = (await fleet.client.getTenant({ id })).tenant;
  const from = tenant?.placements[0]?.hostId ?? '';
  const hosts = (await fleet.client.listHosts({})).hosts.filter((h) => h.state === HostState.READY).map((h) => h.id);
  const to = hosts.find((h) => h !== from) ?? '';
  const load = new Load(router, id, PASSWORD);
  load.start();
  await poll('the writer runs', async () => load.acked.length >= 50, 30_000, 20);
  const started = Date.now();
  const loadBefore = os.loadavg()[0] ?? 0;
  const res = await fleet.client.moveTenant({ id, toHostId: to, wait: true }, { timeoutMs: 6 * 3600_000 });
  const totalMs = Date.now() - started;
  // Latencies here carry whatever else the machine runs: the load average goes beside them.
  const loadAvg = `${loadBefore.toFixed(1)} -> ${(os.loadavg()[0] ?? 0).toFixed(1)}`;
  const ackedAtEnd = load.acked.length;
  await poll('writes go on after the move', async () => load.acked.length >= ackedAtEnd + 50, 30_000, 20);
  await load.stop();

  const events = (await fleet.client.listEvents({ tenantId: id, limit: 500 })).events;
  const at = (action: string): number => {
    const e = events.find((x) => x.action === action);
    return e?.time ? Number(e.time.seconds) * 1000 + Math.floor(e.time.nanos / 1e6) : NaN;
  };
  // The switch: from the end of the copy to the route pointing at the new primary, plus the
  // slowest statement's own length (a statement held through it ends just after).
  const switchFrom = at('move.copied');
  const switchTo = at('switchover.completed');
  const during = load.samples.filter((s) => s.at >= switchFrom && s.at - s.ms <= switchTo + 50).map((s) => s.ms);
  // Where the switch's time went: each audited step after the copy, and the agents' own timings.
  const steps = [
    'move.checkpointed',
    'switchover.started',
    'switchover.fence_sent',
    'switchover.fenced',
    'switchover.promote',
    'switchover.completed',
    'move.switched',
  ];
  const breakdown = steps.map((a) => {
    const e = events.find((x) => x.action === a);
    const agent = e?.details?.agent ? ` (${e.details.agent})` : '';
    return `${a.replace(/^\w+\./, '')} +${at(a) - switchFrom}${agent}`;
  });
  console.log(`${id}: switch breakdown, ms after the copy caught up: ${breakdown.join(', ')} (load average ${loadAvg})`);
  const check = await ownerClient(router, id);
  const present = new Set((await check.query<{ id: string }>('select id from acked')).rows.map((r) => Number(r.id)));
  await check.end();
  const step = (name: string): number => Number(res.steps.find((s) => s.name === name)?.durationMs ?? NaN);
  const fenced = events.find((x) => x.action === 'switchover.fenced');
  const shutdownMs = Number(/shutdown (\d+) ms/.exec(fenced?.details?.agent ?? '')?.[1] ?? NaN);
  await fleet.client.deleteTenant({ id }).catch((err: unknown) => console.error(`delete ${id}: ${String(err)}`));
  return {
    sizeMib,
    checkpoint,
    fenceMs: at('switchover.fenced') - at('switchover.fence_sent'),
    shutdownMs,
    bytes,
    totalMs,
    copyMs: step('copy'),
    switchMs: step('switch'),
    removeMs: step('remove_old'),
    pause: summarize(during.length > 0 ? during : [0]),
    longestMs: Math.max(0, ...load.samples.filter((s) => s.at >= started).map((s) => s.ms)),
    statements: during.length,
    clientErrors: Object.fromEntries(load.errors),
    connects: load.connects,
    failedConnects: load.failedConnects,
    acked: load.acked.length,
    lost: load.acked.filter((a) => !present.has(a)).length,
    loadAvg,
  };
}

await withFleet({ name: 'move', block: BLOCK, agents: 2, routers: 1 }, async (fleet) => {
  await poll('2 hosts READY', async () => (await fleet.client.listHosts({})).hosts.filter((h) => h.state === HostState.READY).length === 2, 120_000, 200);
  const router = fleet.routers[0];
  if (!router) throw new Error('no router');
  const runs: Run[] = [];
  let checkpointing = true;
  for (const [size, checkpoint] of SIZES_MIB.flatMap((sz) => CHECKPOINT_MODES.map((c) => [sz, c] as const))) {
    if (checkpoint !== checkpointing) {
      await fleet.restartCoordinator(checkpoint ? [] : ['--move-checkpoint-timeout', '0']);
      checkpointing = checkpoint;
      await poll(
        '2 hosts READY again',
        async () => (await fleet.client.listHosts({})).hosts.filter((h) => h.state === HostState.READY).length === 2,
        120_000,
        200,
      );
    }
    const r = await oneRun(fleet, router, size, checkpoint);
    runs.push(r);
    console.log(
      `${size} MiB${checkpoint ? '' : ' (no checkpoint)'}: fence ${r.fenceMs} ms (shutdown ${r.shutdownMs}); move ${r.totalMs} ms (copy ${r.copyMs}, switch ${r.switchMs}, remove ${r.removeMs}); pause p50 ${r.pause.p50.toFixed(0)} p99 ${r.pause.p99.toFixed(0)} max ${r.pause.max.toFixed(0)} ms ` +
        `over ${r.statements} statements; longest anywhere ${r.longestMs.toFixed(0)} ms; ${r.connects} connections, ${r.failedConnects} failed; errors ${JSON.stringify(r.clientErrors)}; ${r.acked} writes acked, ${r.lost} lost; load average ${r.loadAvg}`,
    );
  }
  const ok = runs.filter((r) => r.checkpoint || !CHECKPOINT_MODES.includes(true)).every((r) => r.pause.p99 < 1000 && r.failedConnects === 0 && r.lost === 0);
  report('move', {
    tables: [
      {
        title: 'Live move of a single-node tenant under load (transaction pooling)',
        columns: [
          'size',
          'checkpoint',
          'fence ms',
          'shutdown ms',
          'move ms',
          'copy ms',
          'switch ms',
          'remove ms',
          'pause p50',
          'pause p99',
          'pause max',
          'failed connects',
          'client errors',
          'lost writes',
          'load avg',
        ],
        rows: runs.map((r) => [
          `${r.sizeMib} MiB`,
          r.checkpoint ? 'yes' : 'no',
          r.fenceMs,
          r.shutdownMs,
          r.totalMs,
          r.copyMs,
          r.switchMs,
          r.removeMs,
          Math.round(r.pause.p50),
          Math.round(r.pause.p99),
          Math.round(r.pause.max),
          r.failedConnects,
          Object.values(r.clientErrors).reduce((a, b) => a + b, 0),
          r.lost,
          r.loadAvg,
        ]),
      },
      { title: 'Goal: pause p99 < 1 s, no failed new connection, no lost write', columns: ['verdict'], rows: [[verdict(ok)]] },
    ],
    data: { runs, goal: { pauseP99Ms: 1000, failedConnects: 0, lostWrites: 0 }, met: ok },
    chart: barChartSvg(
      'Client pause during a live move (p99)',
      'ms',
      runs.map((r) => ({ label: `${r.sizeMib} MiB${r.checkpoint ? '' : ' (no checkpoint)'}`, value: r.pause.p99 })),
      { value: 1000, label: 'goal 1 s' },
    ),
  });
});
