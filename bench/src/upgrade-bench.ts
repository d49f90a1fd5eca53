// Major upgrade benchmark: a single-node PostgreSQL 15 tenant of each size (PGS_UPGRADE_SIZES_MIB,
// default 100 and 1024 MiB of table data) is upgraded to 18 by logical replication while clients
// work through the router (writer, reader, prober on new connections). Printed per size: the whole
// upgrade, the copy (new instance, schema, initial copy), the switch's hold as the coordinator
// measured it, the client-visible pause (p50, p99 and max of the statements that ended during the
// switch, and the longest anywhere), client errors, failed new connections and lost writes.
// Goal: pause p99 under 1 s, no failed new connection, no lost write. Needs PostgreSQL 18 in
// /var/lib/pgs/postgres (apps/host-agent/scripts/setup-postgres-versions.sh).
//
//   npm run bench:upgrade -w bench              (PGS_UPGRADE_SIZES_MIB=100,1024)
import fs from 'node:fs';
import os from 'node:os';
import { HostState, PoolMode, RunState, TenantStatus } from '@pgs/proto';
import { poll, withFleet, type BenchFleet, type BenchRouter } from './fleet-launcher.js';
import { barChartSvg, report, summarize, verdict } from './fleet-report.js';
import { Load, ownerClient } from './switch-load.js';

const SIZES_MIB = (process.env.PGS_UPGRADE_SIZES_MIB ?? '100,1024')
  .split(',')
  .map(Number)
  .filter((n) => Number.isFinite(n) && n > 0);
const PASSWORD = 'upgrade-bench-secret';
const BLOCK = 42;
const PG18 = '/var/lib/pgs/postgres/18/bin/postgres';

interface Run {
  sizeMib: number;
  bytes: number;
  totalMs: number;
  copyMs: number;
  switchMs: number;
  pause: ReturnType<typeof summarize>;
  longestMs: number;
  statements: number;
  clientErrors: Record<string, number>;
  connects: number;
  failedConnects: number;
  acked: number;
  lost: number;
  /** The 1-minute load average when the upgrade started and when it ended (latencies carry it). */
  loadStart: number;
  loadEnd: number;
}

const load1 = (): number => Number((os.loadavg()[0] ?? 0).toFixed(1));

function eventTime(e: { time?: { seconds: bigint; nanos: number } | undefined } | undefined): number {
  return e?.time ? Number(e.time.seconds) * 1000 + Math.floor(e.time.nanos / 1e6) : NaN;
}

async function oneRun(fleet: BenchFleet, router: BenchRouter, sizeMib: number): Promise<Run> {
  const id = `up${sizeMib}m`;
  await fleet.client.createTenant({
    id,
    ownerPassword: PASSWORD,
    spec: {
      version: '15',
      resources: { cpuMillis: 1000, memoryMib: 512, diskMib: Math.max(8192, sizeMib * 4) },
      nodes: 1,
      externalAccess: true,
      runState: RunState.RUNNING,
      poolMode: PoolMode.TRANSACTION,
    },
  });
  await poll(`tenant ${id} ACTIVE`, async () => (await fleet.client.getTenant({ id })).tenant?.status === TenantStatus.ACTIVE, 120_000, 200);
  let owner: Awaited<ReturnType<typeof ownerClient>> | undefined;
  await poll(
    `tenant ${id} through the router`,
    async () => {
      owner = await ownerClient(router, id, PASSWORD).catch(() => undefined);
      return owner !== undefined;
    },
    30_000,
    200,
  );
  if (!owner) throw new Error('no owner connection');
  await owner.query('create table acked (id bigint primary key)');
  // About 1 KiB a row, with a primary key (logical replication needs a replica identity); in chunks.
  await owner.query('create table filler (id bigint primary key, v text)');
  const rows = sizeMib * 1000;
  const filledAt = Date.now();
  for (let from = 0; from < rows; from += 100_000) {
    await owner.query(`insert into filler select g, repeat(md5(g::text), 30) from generate_series(${from + 1}, ${Math.min(rows, from + 100_000)}) g`);
  }
  const bytes = Number((await owner.query<{ n: string }>('select pg_database_size(current_database())::text as n')).rows[0]?.n ?? 0);
  await owner.end();
  console.log(`${id}: ${(bytes / 1048576).toFixed(0)} MiB of data written in ${Date.now() - filledAt} ms`);

  const load = new Load(router, id, PASSWORD);
  load.start();
  await poll('the writer runs', async () => load.acked.length >= 50, 30_000, 20);
  const loadStart = load1();
  const started = Date.now();
  const res = await fleet.client.upgradeTenant({ id, action: { case: 'toMajor', value: 18 }, wait: true }, { timeoutMs: 6 * 3600_000 });
  const totalMs = Date.now() - started;
  const loadEnd = load1();
  const ackedAtEnd = load.acked.length;
  await poll('writes go on after the upgrade', async () => load.acked.length >= ackedAtEnd + 50, 30_000, 20);
  await load.stop();

  const events = (await fleet.client.listEvents({ tenantId: id, limit: 500 })).events;
  const switchedAt = eventTime(events.find((x) => x.action === 'upgrade.switched'));
  const switchMs = Number(res.upgrade?.switchMs ?? 0);
  // The switch: from the hold to the route on the new instance, plus the slowest statement's own length.
  const during = load.samples.filter((s) => s.at >= switchedAt - switchMs && s.at - s.ms <= switchedAt + 50).map((s) => s.ms);
  const check = await ownerClient(router, id, PASSWORD);
  const version = (await check.query<{ v: string }>('select version() as v')).rows[0]?.v ?? '';
  const present = new Set((await check.query<{ id: string }>('select id from acked')).rows.map((r) => Number(r.id)));
  await check.end();
  if (!version.startsWith('PostgreSQL 18.')) throw new Error(`${id} runs ${version} after the upgrade`);
  await fleet.client
    .upgradeTenant({ id, action: { case: 'finalize', value: true }, wait: true })
    .catch((err: unknown) => console.error(`finalize ${id}: ${String(err)}`));
  await fleet.client.deleteTenant({ id }).catch((err: unknown) => console.error(`delete ${id}: ${String(err)}`));
  return {
    sizeMib,
    bytes,
    totalMs,
    copyMs: Number(res.upgrade?.copyMs ?? NaN),
    switchMs,
    pause: summarize(during.length > 0 ? during : [0]),
    longestMs: Math.max(0, ...load.samples.filter((s) => s.at >= started).map((s) => s.ms)),
    statements: during.length,
    clientErrors: Object.fromEntries(load.errors),
    connects: load.connects,
    failedConnects: load.failedConnects,
    acked: load.acked.length,
    lost: load.acked.filter((a) => !present.has(a)).length,
    loadStart,
    loadEnd,
  };
}

if (!fs.existsSync(PG18)) {
  console.error(`bench:upgrade needs PostgreSQL 18 at ${PG18}: run apps/host-agent/scripts/setup-postgres-versions.sh (as root) first`);
  process.exit(2);
}

await withFleet({ name: 'upgrade', block: BLOCK, agents: 2, routers: 1 }, async (fleet) => {
  await poll('2 hosts READY', async () => (await fleet.client.listHosts({})).hosts.filter((h) => h.state === HostState.READY).length === 2, 120_000, 200);
  const router = fleet.routers[0];
  if (!router) throw new Error('no router');
  const runs: Run[] = [];
  for (const size of SIZES_MIB) {
    const r = await oneRun(fleet, router, size);
    runs.push(r);
    console.log(
      `${size} MiB: upgrade ${r.totalMs} ms (copy ${r.copyMs}, switch hold ${r.switchMs}); pause p50 ${r.pause.p50.toFixed(0)} p99 ${r.pause.p99.toFixed(0)} max ${r.pause.max.toFixed(0)} ms ` +
        `over ${r.statements} statements; longest anywhere ${r.longestMs.toFixed(0)} ms; ${r.connects} connections, ${r.failedConnects} failed; errors ${JSON.stringify(r.clientErrors)}; ${r.acked} writes acked, ${r.lost} lost; load average ${r.loadStart} -> ${r.loadEnd} (${os.cpus().length} cores)`,
    );
  }
  const ok = runs.every((r) => r.pause.p99 < 1000 && r.failedConnects === 0 && r.lost === 0);
  report('upgrade', {
    tables: [
      {
        title: 'Major upgrade 15 -> 18 of a single-node tenant under load (logical replication, transaction pooling)',
        columns: [
          'size',
          'total ms',
          'copy ms',
          'switch ms',
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
          r.totalMs,
          r.copyMs,
          r.switchMs,
          Math.round(r.pause.p50),
          Math.round(r.pause.p99),
          Math.round(r.pause.max),
          r.failedConnects,
          Object.values(r.clientErrors).reduce((a, b) => a + b, 0),
          r.lost,
          `${r.loadStart} -> ${r.loadEnd}`,
        ]),
      },
      { title: 'Goal: pause p99 < 1 s, no failed new connection, no lost write', columns: ['verdict'], rows: [[verdict(ok)]] },
    ],
    data: { runs, goal: { pauseP99Ms: 1000, failedConnects: 0, lostWrites: 0 }, met: ok },
    chart: barChartSvg(
      'Client pause during a major upgrade (p99)',
      'ms',
      runs.map((r) => ({ label: `${r.sizeMib} MiB`, value: r.pause.p99 })),
      { value: 1000, label: 'goal 1 s' },
    ),
  });
});
