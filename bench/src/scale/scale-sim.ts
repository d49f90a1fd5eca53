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
import os from 'node:os';
import { withFleet } from '../fleet-launcher.js';
import { report } from '../fleet-report.js';
import { parseOptions } from './options.js';
import { atRest, churn, grow, newRouterSnapshot, realRouterPropagation, restart, type ScaleContext } from './phases.js';
import { printSteps, stepsTable, writeCharts, type StepResult } from './scale-report.js';
import { SimFleet } from './sim-fleet.js';

const o = parseOptions(process.argv.slice(2));
// Liveness as shipped (heartbeats every second, TTL 3 s, grace 4 s): at 10,000 hosts that is the load.
// PGS_BENCH_COORDINATOR_ARGS: more coordinator flags, e.g. "--route-queue-kib 262144".
const coordinatorArgs = ['--log-level', 'warn', ...(process.env.PGS_BENCH_COORDINATOR_ARGS ?? '').split(' ').filter((a) => a !== '')];
const watchers = o.routers - o.realRouters;
console.log(
  `scale: steps ${o.steps.map((s) => `${s.tenants}:${s.hosts}`).join(' ')}; ${watchers} watchers (${Math.min(o.fullWatchers, watchers)} keeping whole tables) + ${o.realRouters} real routers`,
);

/** Results so far: every finished step, and the one under way with the phases it completed. */
const results: StepResult[] = [];
/** The step under way and its phase; undefined between steps. */
let under: { result: StepResult; phase: string } | undefined;
/** Set on Ctrl-C or SIGTERM: what is written then is final (the failures the fleet's stop causes are not the run's). */
let stopped = false;

/** Writes the table, JSON and charts of what was measured so far (after each step, and at the end however it came). */
function writeResults(): void {
  if (results.length === 0) return;
  report(o.name, {
    tables: [stepsTable(results)],
    data: { options: o, coordinator: process.env.PGS_BENCH_COORDINATOR ?? 'apps/coordinator/dist', steps: results },
  });
  for (const f of writeCharts(o.name, results)) console.log(`chart:  ${f}`);
}

let sim: SimFleet | undefined;

await withFleet(
  { name: 'scale', block: 43, agents: 0, routers: o.realRouters, coordinatorArgs },
  async (fleet) => {
    sim = new SimFleet(fleet.grpc, o);
    const ctx: ScaleContext = { fleet, sim, o, coordinatorArgs, created: 0, access: new Map(), toggleCursor: 0 };
    try {
      sim.startWatchers(watchers);
      for (const [i, step] of o.steps.entries()) {
        const label = `step ${i + 1}/${o.steps.length}: ${step.tenants.toLocaleString('en')} tenants on ${step.hosts.toLocaleString('en')} hosts`;
        const result: StepResult = { step, load: {} };
        results.push(result);
        const current = { result, phase: 'start' };
        under = current;
        // Runs one phase, noting the load around it, and the phase the step ended in if it throws.
        const phase = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
          const l0 = os.loadavg()[0] ?? Number.NaN;
          current.phase = name;
          console.log(`${label}: ${name} (load ${l0.toFixed(1)})`);
          try {
            return await run();
          } catch (err) {
            result.incomplete ??= { phase: name, reason: (err as Error).message.split('\n')[0] ?? '' };
            throw err;
          } finally {
            result.load[name] = [l0, os.loadavg()[0] ?? Number.NaN];
          }
        };
        ctx.toggleCursor = 0;
        const growing = {};
        result.grow = growing;
        const grown = await phase('grow', () => grow(ctx, step, growing));
        console.log(`${label}: placed (${Math.round(grown.placementsPerSecond)}/s)`);
        result.rest = await phase('rest', () => atRest(ctx, step.hosts));
        const failed = (err: unknown): { error: string } => ({ error: (err as Error).message });
        result.snapshot = await phase('snapshot', () => newRouterSnapshot(ctx, `new${i}`).catch(failed));
        result.routerSnapshot = await phase('router snapshot', () => newRouterSnapshot(ctx, `newr${i}`, true).catch(failed));
        const churned = await phase('churn', () => churn(ctx, i, step.hosts));
        result.churn = churned;
        result.realRouters = await phase('real routers', () => realRouterPropagation(ctx, 20));
        const stats = await sim.stats();
        result.workersRssBytes = stats.workersRssBytes;
        result.watcherErrors = stats.watcherErrors;
        if (o.restart) {
          const marks = {};
          result.restart = marks;
          await phase('restart', () => restart(ctx, step.hosts, marks));
        }
        under = undefined;
        printSteps(results);
        if (stats.watcherErrors.length) console.log(`watcher errors: ${stats.watcherErrors.slice(0, 5).join(' | ')}`);
        for (const [k, f] of Object.entries(churned.apiFailures)) console.log(`API ${k} failures: ${f.count} (${f.samples.join(' | ')})`);
        if (i < o.steps.length - 1) writeResults();
      }
    } finally {
      if (!stopped) writeResults();
      await sim.stop();
    }
  },
  async (signal) => {
    stopped = true;
    if (under && !under.result.incomplete) under.result.incomplete = { phase: under.phase, reason: `stopped by ${signal}` };
    writeResults();
    await sim?.stop();
  },
);
