// Scale-to-zero benchmark. Two runs on the process runtime, each with its own fleet:
//
// 1. Wake latency: suspended tenant -> first query answered through a router (the client connects
//    to a SUSPENDED tenant, the router holds it and asks for the wake), p50/p99 over N wakes.
//    Goal: p99 under 1 s.
// 2. Density: R registered tenants, A of them active (each with a light query loop through the
//    router), the rest suspended: the memory the instances hold (PSS of every postmaster and its
//    children), the machine's memory in use, registered tenants per GiB, and wake latency of
//    suspended tenants while the A keep working.
//
//   npm run bench:wake -w bench
//   PGS_BENCH_WAKES=50 PGS_BENCH_WAKE_TENANTS=10 PGS_BENCH_REGISTERED=1000 PGS_BENCH_ACTIVE=50 PGS_BENCH_DENSITY_WAKES=20
//
// 1,000 registered tenants need ten agents of 100 ports each (a suspended tenant keeps its port) and
// a thousand instance creations; the defaults are smaller so that the run fits a shared machine.
import fs from 'node:fs';
import os from 'node:os';
import { TenantStatus } from '@pgs/proto';
import pg from 'pg';
import { poll, withFleet, type BenchFleet, type BenchRouter } from './fleet-launcher.js';
import { barChartSvg, report, summarize, verdict } from './fleet-report.js';
import { BENCH_PASSWORD, createTenant } from './fleet-tenants.js';
import { measureInstances } from './instance-memory.js';
import { wakeBreakdown, type WakeTiming } from './wake-breakdown.js';

const WAKES = Number(process.env.PGS_BENCH_WAKES ?? 50);
const WAKE_TENANTS = Number(process.env.PGS_BENCH_WAKE_TENANTS ?? 10);
const REGISTERED = Number(process.env.PGS_BENCH_REGISTERED ?? 100);
const ACTIVE = Number(process.env.PGS_BENCH_ACTIVE ?? 10);
const DENSITY_WAKES = Number(process.env.PGS_BENCH_DENSITY_WAKES ?? 10);
const PORTS_PER_HOST = 100;
const GOAL_P99_MS = 1000;
const BLOCK = 36;

/** Connect + `select 1` through the router as the owner; ms until the answer (throws on failure). */
async function timedQuery(router: BenchRouter, id: string): Promise<number> {
  const started = performance.now();
  const client = new pg.Client({ host: router.host, port: router.port, user: id, database: id, password: BENCH_PASSWORD, connectionTimeoutMillis: 60_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return performance.now() - started;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates tenants `ids` a few at a time and waits until all are ACTIVE. */
async function createAll(fleet: BenchFleet, ids: readonly string[]): Promise<void> {
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) await createTenant(fleet, id);
    }),
  );
  await poll(
    `${ids.length} tenants ACTIVE`,
    async () => (await fleet.client.listTenants({ status: TenantStatus.ACTIVE, page: { pageSize: 1000 } })).tenants.length >= ids.length,
    60 * 60_000,
    1000,
  );
}

/** Suspends `ids` and waits until every one is SUSPENDED with its instance stopped. */
async function suspendAll(fleet: BenchFleet, ids: readonly string[]): Promise<void> {
  for (const id of ids) await fleet.client.suspendTenant({ id });
  await poll(
    `${ids.length} tenants suspended and stopped`,
    async () => {
      const { tenants } = await fleet.client.listTenants({ status: TenantStatus.SUSPENDED, page: { pageSize: 1000 } });
      const stopped = new Set(tenants.filter((t) => t.placements.every((p) => p.health?.up !== true)).map((t) => t.id));
      return ids.every((id) => stopped.has(id));
    },
    10 * 60_000,
    250,
  );
}

/** Wakes each of `ids` in turn by a client query through the router: latency (ms), epoch times and the 1-minute load average before it. */
async function wakeEach(fleet: BenchFleet, ids: readonly string[]): Promise<{ ms: number[]; timings: WakeTiming[]; loads: number[] }> {
  const router = fleet.routers[0];
  if (!router) throw new Error('a router is needed');
  const out = { ms: [] as number[], timings: [] as WakeTiming[], loads: [] as number[] };
  for (const id of ids) {
    out.loads.push(os.loadavg()[0] ?? 0);
    const connectAt = Date.now();
    out.ms.push(await timedQuery(router, id));
    out.timings.push({ tenantId: id, connectAt, answeredAt: Date.now() });
  }
  return out;
}

/** The machine's memory in use (MemTotal - MemAvailable), MiB: every process on it, other work included. */
function machineUsedMib(): number {
  const text = fs.readFileSync('/proc/meminfo', 'utf8');
  const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return (kib('MemTotal') - kib('MemAvailable')) / 1024;
}

const round = (n: number): number => Math.round(n * 10) / 10;

// Run 1: wake latency.
const latency = await withFleet({ name: 'wake', block: BLOCK, agents: 1, routers: 1 }, async (fleet) => {
  const ids = Array.from({ length: Math.min(WAKE_TENANTS, PORTS_PER_HOST) }, (_, i) => `wake-${i}`);
  await createAll(fleet, ids);
  const samples: number[] = [];
  const timings: WakeTiming[] = [];
  const loads: number[] = [];
  while (samples.length < WAKES) {
    const batch = ids.slice(0, Math.min(ids.length, WAKES - samples.length));
    await suspendAll(fleet, batch);
    const r = await wakeEach(fleet, batch);
    samples.push(...r.ms);
    timings.push(...r.timings);
    loads.push(...r.loads);
    console.log(`wakes: ${samples.length}/${WAKES}`);
  }
  return { samples, loads, breakdown: wakeBreakdown(fleet.root, 'Where a wake goes', timings) };
});

// Run 2: density with A active tenants and the rest suspended, and wakes while the A work.
const density = await withFleet({ name: 'wake-density', block: BLOCK, agents: Math.ceil(REGISTERED / PORTS_PER_HOST), routers: 1 }, async (fleet) => {
  const ids = Array.from({ length: REGISTERED }, (_, i) => `d-${i}`);
  const active = ids.slice(0, ACTIVE);
  const sleeping = ids.slice(ACTIVE);
  const before = machineUsedMib();
  await createAll(fleet, ids);
  const allRunning = fleet.hostDataRoots.flatMap(measureInstances);
  await suspendAll(fleet, sleeping);
  const router = fleet.routers[0];
  if (!router) throw new Error('a router is needed');
  // The A active tenants: a client each, one light query every 200 ms.
  let working = true;
  let queries = 0;
  const loops = active.map(async (id) => {
    const c = new pg.Client({ host: router.host, port: router.port, user: id, database: id, password: BENCH_PASSWORD });
    c.on('error', () => undefined);
    await c.connect();
    try {
      while (working) {
        await c.query('select count(*) from pg_class');
        queries++;
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await c.end().catch(() => undefined);
    }
  });
  await new Promise((r) => setTimeout(r, 5000));
  const instances = fleet.hostDataRoots.flatMap(measureInstances);
  const pssMib = instances.reduce((s, x) => s + x.pssMib, 0);
  const used = machineUsedMib();
  const woken = await wakeEach(fleet, sleeping.slice(0, DENSITY_WAKES));
  const wakes = woken.ms;
  const breakdown = wakeBreakdown(fleet.root, `Where a wake goes while ${ACTIVE} tenants work`, woken.timings);
  working = false;
  await Promise.all(loops);
  return {
    registered: REGISTERED,
    active: ACTIVE,
    running: instances.length,
    instancesPssMib: pssMib,
    allRunningPssMib: allRunning.reduce((s, x) => s + x.pssMib, 0),
    machineUsedMib: used,
    machineUsedBeforeMib: before,
    tenantsPerGib: REGISTERED / (pssMib / 1024),
    wakes,
    loads: woken.loads,
    breakdown,
    queries,
  };
});

const lat = summarize(latency.samples);
const load = summarize(latency.loads);
const loadDuring = summarize(density.loads);
const during = summarize(density.wakes);
report('wake', {
  tables: [
    {
      title: `Wake latency: suspended tenant -> first query answered through the router (${lat.n} wakes, ms)`,
      columns: ['p50', 'p95', 'p99', 'max', 'mean', 'load avg (mean / max)', `goal p99 < ${GOAL_P99_MS} ms`],
      rows: [
        [
          round(lat.p50),
          round(lat.p95),
          round(lat.p99),
          round(lat.max),
          round(lat.mean),
          `${round(load.mean)} / ${round(load.max)}`,
          verdict(lat.p99 < GOAL_P99_MS),
        ],
      ],
    },
    ...(latency.breakdown ? [latency.breakdown.table] : []),
    {
      title: `Density: ${density.registered} registered tenants, ${density.active} active with a query loop, the rest suspended`,
      columns: ['measure', 'value'],
      rows: [
        ['instances running', density.running],
        ['instances PSS, MiB (postmasters + children)', round(density.instancesPssMib)],
        ['the same with every tenant running, MiB', round(density.allRunningPssMib)],
        ['registered tenants per GiB (by instances PSS)', Math.floor(density.tenantsPerGib)],
        [
          'machine memory in use, MiB (all processes, before -> during)',
          `${Math.round(density.machineUsedBeforeMib)} -> ${Math.round(density.machineUsedMib)}`,
        ],
        [
          `wake latency while ${density.active} work, ms (p50 / p99 / max over ${during.n}; load avg ${round(loadDuring.mean)})`,
          `${round(during.p50)} / ${round(during.p99)} / ${round(during.max)}`,
        ],
        ['queries served by the active tenants meanwhile', density.queries],
      ],
    },
    ...(density.breakdown ? [density.breakdown.table] : []),
  ],
  data: {
    wakes: latency.samples,
    latency: lat,
    loadAverage: load,
    breakdown: latency.breakdown?.data,
    density: { ...density, breakdown: density.breakdown?.data, wakeLatency: during, loadAverage: loadDuring },
  },
  chart: barChartSvg(
    'Wake latency (ms)',
    'ms',
    [
      { label: 'p50', value: lat.p50 },
      { label: 'p99', value: lat.p99 },
      { label: 'p99 under load', value: during.p99 },
    ],
    { value: GOAL_P99_MS, label: `goal p99 ${GOAL_P99_MS} ms` },
  ),
});
