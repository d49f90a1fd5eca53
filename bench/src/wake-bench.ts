// Scale-to-zero benchmark on the process runtime: suspended tenant -> first query answered through a
// router (the client connects to a SUSPENDED tenant, the router holds it and asks for the wake),
// p50/p99 over N wakes. Goal: p99 under 1 s. The density run (many registered tenants, a few
// active, wakes while they work) is bench:wake-density (wake-density-bench.ts).
//
//   npm run bench:wake -w bench
//   PGS_BENCH_WAKES=50 PGS_BENCH_WAKE_TENANTS=10
import os from 'node:os';
import { TenantStatus } from '@pgs/proto';
import { poll, withFleet, type BenchFleet } from './fleet-launcher.js';
import { barChartSvg, report, summarize, verdict } from './fleet-report.js';
import { createTenant, timedQuery } from './fleet-tenants.js';
import { wakeBreakdown, wakeEvents, type WakeTiming } from './wake-breakdown.js';

const WAKES = Number(process.env.PGS_BENCH_WAKES ?? 50);
const WAKE_TENANTS = Number(process.env.PGS_BENCH_WAKE_TENANTS ?? 10);
const PORTS_PER_HOST = 100;
const GOAL_P99_MS = 1000;
const BLOCK = 36;

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
  const events = await wakeEvents(fleet.client, ids);
  return { samples, loads, breakdown: wakeBreakdown(fleet.root, 'Where a wake goes', timings, events) };
});

const lat = summarize(latency.samples);
const load = summarize(latency.loads);
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
  ],
  data: {
    wakes: latency.samples,
    latency: lat,
    loadAverage: load,
    breakdown: latency.breakdown?.data,
  },
  chart: barChartSvg(
    'Wake latency (ms)',
    'ms',
    [
      { label: 'p50', value: lat.p50 },
      { label: 'p99', value: lat.p99 },
    ],
    { value: GOAL_P99_MS, label: `goal p99 ${GOAL_P99_MS} ms` },
  ),
});
