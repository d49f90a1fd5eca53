// Fleet benchmark: route propagation, the time from a change committed at the
// coordinator (SetTenantAccess answered) to every one of 10 routers having applied it (their
// /healthz shows a route-cache revision at least the change's). Goal: p99 under 100 ms.
//
//   npm run bench:propagation -w bench           (PGS_BENCH_CHANGES=200, PGS_BENCH_ROUTERS=10)
import { performance } from 'node:perf_hooks';
import { withFleet } from './fleet-launcher.js';
import { barChartSvg, report, summarize, verdict } from './fleet-report.js';
import { createTenant, firstQuery } from './fleet-tenants.js';

const CHANGES = Number(process.env.PGS_BENCH_CHANGES ?? 200);
const ROUTERS = Number(process.env.PGS_BENCH_ROUTERS ?? 10);

await withFleet({ name: 'propagation', block: 32, agents: 1, routers: ROUTERS }, async (fleet) => {
  const id = 'prop';
  await createTenant(fleet, id);
  const first = fleet.routers[0];
  if (!first) throw new Error('no router');
  await firstQuery(first, id);
  const all: number[] = [];
  const perRouter: number[][] = fleet.routers.map(() => []);
  for (let i = 0; i < CHANGES; i++) {
    await fleet.client.setTenantAccess({ id, externalAccess: i % 2 === 1 });
    // The answer means the change is committed; the clock starts here.
    const committed = performance.now();
    const { revision } = await fleet.client.listRoutes({});
    const target = Number(revision);
    // Every router polled on its own, tightly: the time is when its /healthz first shows the revision.
    const applied = await Promise.all(
      fleet.routers.map(async (_, r) => {
        for (;;) {
          if ((await fleet.routerRevision(r)) >= target) return performance.now();
          if (performance.now() - committed > 10_000) throw new Error(`router r${r + 1} never reached revision ${target}`);
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      }),
    );
    applied.forEach((t, r) => perRouter[r]?.push(t - committed));
    all.push(Math.max(...applied) - committed);
  }
  const s = summarize(all);
  const ms = (v: number): number => Math.round(v * 10) / 10;
  report('fleet-propagation', {
    tables: [
      {
        title: `Route propagation: change committed -> all ${ROUTERS} routers applied (ms), ${CHANGES} changes (includes up to ~2 ms of /healthz polling)`,
        columns: ['measure', 'p50', 'p95', 'p99', 'max', 'goal p99<100'],
        rows: [['all routers', ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max), verdict(s.p99 < 100)]],
      },
      {
        title: 'Per router (ms)',
        columns: ['router', 'p50', 'p99', 'max'],
        rows: perRouter.map((v, r) => {
          const x = summarize(v);
          return [`r${r + 1}`, ms(x.p50), ms(x.p99), ms(x.max)];
        }),
      },
    ],
    data: { routers: ROUTERS, changes: CHANGES, allRoutersMs: all, summary: s },
    chart: barChartSvg(
      `Route propagation to ${ROUTERS} routers (ms)`,
      'ms',
      [
        { label: 'p50', value: s.p50 },
        { label: 'p95', value: s.p95 },
        { label: 'p99', value: s.p99 },
        { label: 'max', value: s.max },
      ],
      { value: 100, label: 'p99 goal 100 ms' },
    ),
  });
});
