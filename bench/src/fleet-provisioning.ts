// Fleet benchmark: time from `tenant create` (the CreateTenant call) to the first
// successful query through a router, for 20 tenants one after another and 20 at once, on a real
// local fleet (coordinator, 3 host agents on the process runtime, 1 router).
// Goal: p50 under 1 s and p95 under 2 s.
//
//   npm run bench:provisioning -w bench          (PGS_BENCH_TENANTS=20)
//
// Besides the two rows it prints where each run's time went, from the agents' logs
// (provisioning-breakdown.ts); PGS_BENCH_KEEP_LOGS=<dir> keeps the fleet's logs.
//
// Each run starts from a fleet at rest: every host's pool of ready spares full (ListHosts shows
// what each agent last reported). Without that the burst measured the refill after the 20 in a
// row, which on a slow disk takes longer than the runs themselves.
import { performance } from 'node:perf_hooks';
import { poll, withFleet, type BenchFleet } from './fleet-launcher.js';
import { barChartSvg, report, summarize, verdict } from './fleet-report.js';
import { createTenant, firstQuery } from './fleet-tenants.js';
import { provisioningBreakdown, type ProvisionTiming } from './provisioning-breakdown.js';

const N = Number(process.env.PGS_BENCH_TENANTS ?? 20);

/** Creates a tenant and waits for its first query through the router; times as epoch ms. */
async function provisionOne(fleet: Parameters<Parameters<typeof withFleet>[1]>[0], id: string): Promise<ProvisionTiming> {
  const router = fleet.routers[0];
  if (!router) throw new Error('no router');
  const t0 = performance.now();
  await createTenant(fleet, id);
  const t1 = await firstQuery(router, id);
  return { tenantId: id, askedAt: performance.timeOrigin + t0, queryAt: performance.timeOrigin + t1 };
}

const took = (t: ProvisionTiming): number => t.queryAt - t.askedAt;

// PGS_BENCH_AGENT_ARGS: extra host agent flags, e.g. "--spare-clones 2", to compare settings.
const agentArgs = process.env.PGS_BENCH_AGENT_ARGS?.split(' ').filter((a) => a !== '') ?? [];
/** The agents' spare pool size: their --spare-clones (default 8). */
const SPARES = agentArgs.includes('--spare-clones') ? Number(agentArgs[agentArgs.indexOf('--spare-clones') + 1]) : 8;

/** Waits until every host reports a full spare pool; returns how long that took (ms). */
async function poolsFull(fleet: BenchFleet): Promise<number> {
  const start = performance.now();
  await poll(
    `every host with ${SPARES} ready spares`,
    async () => {
      const { hosts } = await fleet.client.listHosts({});
      // A runtime without spares (docker) reports none: nothing to wait for.
      return hosts.length > 0 && hosts.every((h) => (h.readySpares ?? SPARES) >= SPARES);
    },
    180_000,
    200,
  );
  return performance.now() - start;
}

await withFleet({ name: 'provisioning', block: 31, agents: 3, routers: 1, agentArgs }, async (fleet) => {
  const inRow: ProvisionTiming[] = [];
  const restBeforeRow = await poolsFull(fleet);
  for (let i = 0; i < N; i++) inRow.push(await provisionOne(fleet, `seq-${i}`));
  const restBeforeBurst = await poolsFull(fleet);
  console.log(`spare pools full: ${Math.round(restBeforeRow)} ms after start, ${Math.round(restBeforeBurst)} ms after the ${N} in a row`);
  const concurrentStart = performance.now();
  const atOnce = await Promise.all(Array.from({ length: N }, (_, i) => provisionOne(fleet, `par-${i}`)));
  const concurrentWallMs = performance.now() - concurrentStart;
  const sequential = inRow.map(took);
  const concurrent = atOnce.map(took);
  const s = summarize(sequential);
  const c = summarize(concurrent);
  const ms = (v: number): number => Math.round(v);
  // The agents write their log lines as they go; give the last ones a moment to land.
  await new Promise((r) => setTimeout(r, 300));
  const breakdown = [
    provisioningBreakdown(fleet.root, `Where the time of the ${N} in a row went`, inRow),
    provisioningBreakdown(fleet.root, `Where the time of the ${N} at once went`, atOnce),
  ].filter((b) => b !== undefined);
  report('fleet-provisioning', {
    tables: [
      {
        title: `Provisioning: CreateTenant -> first query through a router (ms), ${N} tenants per run`,
        columns: ['run', 'p50', 'p95', 'max', 'mean', 'goal p50<1000 p95<2000'],
        rows: [
          ['in a row', ms(s.p50), ms(s.p95), ms(s.max), ms(s.mean), verdict(s.p50 < 1000 && s.p95 < 2000)],
          [`at once (wall ${ms(concurrentWallMs)} ms)`, ms(c.p50), ms(c.p95), ms(c.max), ms(c.mean), verdict(c.p50 < 1000 && c.p95 < 2000)],
        ],
      },
      ...breakdown.map((b) => b.table),
    ],
    data: {
      tenants: N,
      spares: SPARES,
      poolsFullBeforeRowMs: restBeforeRow,
      poolsFullBeforeBurstMs: restBeforeBurst,
      sequentialMs: sequential,
      concurrentMs: concurrent,
      sequential: s,
      concurrent: c,
      concurrentWallMs,
      breakdown: breakdown.map((b) => b.data),
    },
    chart: barChartSvg(
      'Provisioning to first query (ms)',
      'ms',
      [
        { label: 'row p50', value: s.p50 },
        { label: 'row p95', value: s.p95 },
        { label: 'row max', value: s.max },
        { label: 'once p50', value: c.p50 },
        { label: 'once p95', value: c.p95 },
        { label: 'once max', value: c.max },
      ],
      { value: 1000, label: 'p50 goal 1 s' },
    ),
  });
});
