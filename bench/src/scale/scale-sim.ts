// The scale simulator: the real coordinator process with up to 10,000 fake hosts (each its own
// identity and AgentControlService stream, many per worker process), up to 100 routers (route
// watchers on their own WatchRoutes streams, a few of them real routers with their SQLite route
// cache) and a driver creating 1,000,000 tenants through the API, step by step; at each step it
// measures the coordinator at rest, a new router's snapshot, churn (API latency, route
// propagation, host loss and return, a drain) and a restart. Prints a table per step and writes
// bench/results/scale.json and a chart per curve (scale-*.svg).
//
//   npm run bench:scale -w bench -- --hosts 10000 --tenants 1000000 --routers 100
//   npm run bench:scale -w bench -- --hosts 200 --tenants 2000 --routers 10 --churn-seconds 10   (a quick run)
import { withFleet } from '../fleet-launcher.js';
import { report } from '../fleet-report.js';
import { parseOptions } from './options.js';
import { atRest, churn, grow, newRouterSnapshot, realRouterPropagation, restart, type ScaleContext } from './phases.js';
import { printSteps, stepsTable, writeCharts, type StepResult } from './scale-report.js';
import { SimFleet } from './sim-fleet.js';

const o = parseOptions(process.argv.slice(2));
// Liveness as shipped (heartbeats every second, TTL 3 s, grace 4 s): at 10,000 hosts that is the load.
const coordinatorArgs = ['--log-level', 'warn'];
const watchers = o.routers - o.realRouters;
console.log(
  `scale: steps ${o.steps.map((s) => `${s.tenants}:${s.hosts}`).join(' ')}; ${watchers} watchers (${Math.min(o.fullWatchers, watchers)} keeping whole tables) + ${o.realRouters} real routers`,
);

await withFleet({ name: 'scale', block: 43, agents: 0, routers: o.realRouters, coordinatorArgs }, async (fleet) => {
  const sim = new SimFleet(fleet.grpc, o);
  const ctx: ScaleContext = { fleet, sim, o, coordinatorArgs, created: 0, access: new Map(), toggleCursor: 0 };
  const results: StepResult[] = [];
  try {
    sim.startWatchers(watchers);
    for (const [i, step] of o.steps.entries()) {
      const label = `step ${i + 1}/${o.steps.length}: ${step.tenants.toLocaleString('en')} tenants on ${step.hosts.toLocaleString('en')} hosts`;
      console.log(`\n${label}: growing`);
      ctx.toggleCursor = 0;
      const grown = await grow(ctx, step);
      console.log(`${label}: placed (${Math.round(grown.placementsPerSecond)}/s); at rest`);
      const rest = await atRest(ctx, step.hosts);
      console.log(`${label}: a new router's snapshot`);
      const snapshot = await newRouterSnapshot(ctx, `new${i}`).catch((err: unknown) => ({ error: (err as Error).message }));
      const routerSnapshot = await newRouterSnapshot(ctx, `newr${i}`, true).catch((err: unknown) => ({ error: (err as Error).message }));
      console.log(`${label}: churn for ${o.churnSeconds} s`);
      const churned = await churn(ctx, i, step.hosts);
      console.log(`${label}: real routers`);
      const realRouters = await realRouterPropagation(ctx, 20);
      const stats = await sim.stats();
      const result: StepResult = {
        step,
        grow: grown,
        rest,
        snapshot,
        routerSnapshot,
        churn: churned,
        realRouters,
        workersRssBytes: stats.workersRssBytes,
        watcherErrors: stats.watcherErrors,
      };
      if (o.restart) {
        console.log(`${label}: restart`);
        result.restart = await restart(ctx, step.hosts);
      }
      results.push(result);
      printSteps(results);
      if (stats.watcherErrors.length) console.log(`watcher errors: ${stats.watcherErrors.slice(0, 5).join(' | ')}`);
      for (const [k, f] of Object.entries(churned.apiFailures)) console.log(`API ${k} failures: ${f.count} (${f.samples.join(' | ')})`);
    }
  } finally {
    if (results.length > 0) {
      report(o.name, {
        tables: [stepsTable(results)],
        data: { options: o, coordinator: process.env.PGS_BENCH_COORDINATOR ?? 'apps/coordinator/dist', steps: results },
      });
      for (const f of writeCharts(o.name, results)) console.log(`chart:  ${f}`);
    }
    await sim.stop();
  }
});
