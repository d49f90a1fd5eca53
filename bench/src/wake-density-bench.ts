// The density run of scale to zero: R registered tenants on one machine, A of them active (each
// with a light query loop through a router: one query every 200 ms), the other R - A suspended.
// Prints the memory the fleet holds (the summed PSS of every postgres process, the control plane's
// PSS, the machine's memory in use before the fleet and at steady state), registered tenants per
// GiB, and the latency of W wakes of suspended tenants while the A keep working, beside the A's
// own query latency before and during the wakes, each with the load average it ran under.
//
//   npm run bench:wake-density -w bench                       # 1,000:50 on ten agents, for a quiet machine
//   PGS_BENCH_DENSITY=300:50 npm run bench:wake-density -w bench
//
// PGS_BENCH_DENSITY=<registered>:<active> (1000:50), PGS_BENCH_DENSITY_HOSTS (10 agents; each gets a
// port range of its share plus 10%, since a tenant keeps its port while suspended),
// PGS_BENCH_DENSITY_WAKES (50), PGS_BENCH_DENSITY_CONCURRENCY (8 creations at once),
// PGS_BENCH_DENSITY_STEADY_S (20 s of loops before the wakes). Each tenant costs ~45 MB of disk:
// the run refuses to start without room for all of them and 8 GiB to spare, and stops if the
// disk gets that low meanwhile. The fleet (processes and data directories) goes on success,
// failure and Ctrl-C.
import os from 'node:os';
import { BENCH_NET, withFleet, type BenchFleet } from './fleet-launcher.js';
import { barChartSvg, report, summarize, verdict } from './fleet-report.js';
import { registerTenants } from './density-tenants.js';
import { timedQuery } from './fleet-tenants.js';
import { measureInstances } from './instance-memory.js';
import { controlPlanePss, freeBytes, machineUsedMib } from './machine-memory.js';
import { startQueryLoops } from './query-loops.js';
import { wakeBreakdown, wakeEvents, type WakeTiming } from './wake-breakdown.js';

function densityOf(text: string): { registered: number; active: number } {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  const registered = Number(m?.[1]);
  const active = Number(m?.[2]);
  if (!m || registered < 2 || active < 1 || active >= registered)
    throw new Error(`PGS_BENCH_DENSITY=${JSON.stringify(text)}: use <registered>:<active> with 1 <= active < registered, e.g. 1000:50 or 300:50`);
  return { registered, active };
}

const { registered: REGISTERED, active: ACTIVE } = densityOf(process.env.PGS_BENCH_DENSITY ?? '1000:50');
const HOSTS = Math.min(10, Math.max(1, Number(process.env.PGS_BENCH_DENSITY_HOSTS ?? 10)));
const WAKES = Math.min(REGISTERED - ACTIVE, Number(process.env.PGS_BENCH_DENSITY_WAKES ?? 50));
const CONCURRENCY = Number(process.env.PGS_BENCH_DENSITY_CONCURRENCY ?? 8);
const STEADY_MS = Number(process.env.PGS_BENCH_DENSITY_STEADY_S ?? 20) * 1000;
const PORTS_PER_AGENT = Math.ceil((REGISTERED / HOSTS) * 1.1) + 2;
const LOOP_PERIOD_MS = 200;
const GOAL_P99_MS = 1000;
const BLOCK = 39;
const GiB = 1024 ** 3;
/** A data directory with its WAL (~40 MB) and some room; the agents' spare copies come on top. */
const DISK_PER_TENANT = 45 * 1024 ** 2;
const SPARES_PER_AGENT = 8;
const KEEP_FREE = 8 * GiB;

const round = (n: number): number => Math.round(n * 10) / 10;
const load = (): number => os.loadavg()[0] ?? 0;

const needed = (REGISTERED + HOSTS * SPARES_PER_AGENT) * DISK_PER_TENANT + KEEP_FREE;
if (freeBytes(os.tmpdir()) < needed)
  throw new Error(
    `${REGISTERED} tenants need ~${(needed / GiB).toFixed(0)} GiB free in ${os.tmpdir()} (with ${KEEP_FREE / GiB} GiB to spare), ` +
      `${(freeBytes(os.tmpdir()) / GiB).toFixed(1)} GiB are: free some or run a smaller PGS_BENCH_DENSITY`,
  );

/** Load averages sampled once a second, to print beside the latencies of a window. */
const loadSamples: Array<{ at: number; load: number }> = [];
const loadTimer = setInterval(() => loadSamples.push({ at: Date.now(), load: load() }), 1000);
const loadBetween = (from: number, to: number): string => {
  const s = summarize(loadSamples.filter((x) => x.at >= from && x.at < to).map((x) => x.load));
  return `${round(s.mean)} / ${round(s.max)}`;
};

const diskBefore = freeBytes(os.tmpdir());
const usedBefore = machineUsedMib();
console.log(
  `density run: ${REGISTERED} registered, ${ACTIVE} active, ${HOSTS} agent(s) of ${PORTS_PER_AGENT} ports, ${WAKES} wakes; ` +
    `block 127.${BENCH_NET}.${BLOCK}.x; machine memory in use ${Math.round(usedBefore)} MiB, load avg ${round(load())}`,
);

// Two creations in flight per host at most: bin-packing would otherwise send a burst of creates to
// one host at a time, where they wait for each other's template copy once its spares are gone.
const COORDINATOR_ARGS = ['--max-creating-per-host', '2'];

/** Registers the tenants, runs the loops and the wakes, and measures. */
async function measure(fleet: BenchFleet) {
  const router = fleet.routers[0];
  if (!router) throw new Error('a router is needed');
  const ids = Array.from({ length: REGISTERED }, (_, i) => `d-${i}`);
  const active = ids.slice(0, ACTIVE);
  const sleeping = ids.slice(ACTIVE);
  const registerStart = Date.now();
  const registered = await registerTenants(fleet, { active, suspended: sleeping, concurrency: CONCURRENCY, minFreeBytes: KEEP_FREE, dataDir: fleet.root });
  const registerEnd = Date.now();
  const diskAfter = freeBytes(os.tmpdir());

  const loops = startQueryLoops(router, active, LOOP_PERIOD_MS);
  // The first seconds are the loops' logins; steady state starts after them.
  await new Promise((r) => setTimeout(r, 5000));
  const steadyFrom = Date.now();
  await new Promise((r) => setTimeout(r, STEADY_MS));
  const instances = fleet.hostDataRoots.flatMap(measureInstances);
  const control = controlPlanePss(fleet.root);
  const usedSteady = machineUsedMib();
  const steadyTo = Date.now();

  // Wakes spread over the suspended tenants (and so over the hosts), one after another.
  const step = Math.max(1, Math.floor(sleeping.length / WAKES));
  const targets = Array.from({ length: WAKES }, (_, i) => sleeping[i * step]).filter((id): id is string => id !== undefined);
  const wakes: number[] = [];
  const wakeLoads: number[] = [];
  const timings: WakeTiming[] = [];
  const failures: string[] = [];
  for (const id of targets) {
    wakeLoads.push(load());
    const connectAt = Date.now();
    try {
      wakes.push(await timedQuery(router, id));
      timings.push({ tenantId: id, connectAt, answeredAt: Date.now() });
    } catch (err) {
      failures.push(`${id}: ${(err as Error).message}`);
    }
  }
  const wakesTo = Date.now();
  const events = await wakeEvents(
    fleet.client,
    timings.map((t) => t.tenantId),
  );
  const afterWakes = fleet.hostDataRoots.flatMap(measureInstances);
  await loops.stop();
  return {
    registerSeconds: (registerEnd - registerStart) / 1000,
    createMs: summarize(registered.createMs),
    suspendCallMs: summarize(registered.suspendMs),
    registerLoad: loadBetween(registerStart, registerEnd),
    diskUsedGib: (diskBefore - diskAfter) / GiB,
    running: instances.length,
    postgresPssMib: instances.reduce((s, x) => s + x.pssMib, 0),
    postgresProcesses: instances.reduce((s, x) => s + x.processes, 0),
    runningAfterWakes: afterWakes.length,
    postgresPssAfterWakesMib: afterWakes.reduce((s, x) => s + x.pssMib, 0),
    control,
    usedSteady,
    steadyLoop: summarize(loops.between(steadyFrom, steadyTo)),
    steadyLoad: loadBetween(steadyFrom, steadyTo),
    wakeLoop: summarize(loops.between(steadyTo, wakesTo)),
    wakeWindowLoad: loadBetween(steadyTo, wakesTo),
    loopQueries: loops.samples.length,
    loopErrors: loops.errors,
    wakes,
    wakeLoads,
    failures,
    breakdown: wakeBreakdown(fleet.root, `Where a wake goes while ${ACTIVE} tenants work`, timings, events),
  };
}

/** Prints the tables and writes the result (before the fleet goes: removing a thousand data directories takes minutes). */
function reportRun(run: Awaited<ReturnType<typeof measure>>): void {
  const wake = summarize(run.wakes);
  const wakeLoad = summarize(run.wakeLoads);
  const perRunning = run.running > 0 ? run.postgresPssMib / run.running : Number.NaN;
  const perGib = (mib: number): number => Math.floor(REGISTERED / (mib / 1024));
  const machineDelta = run.usedSteady - usedBefore;
  const latencyRow = (what: string, s: ReturnType<typeof summarize>, loadText: string): Array<string | number> => [
    what,
    s.n,
    round(s.p50),
    round(s.p99),
    round(s.max),
    loadText,
  ];
  report('wake-density', {
    tables: [
      {
        title: `Density: ${REGISTERED} registered tenants on ${HOSTS} agent(s) of ${PORTS_PER_AGENT} ports, ${ACTIVE} active (a query every ${LOOP_PERIOD_MS} ms each), the rest suspended`,
        columns: ['measure', 'value'],
        rows: [
          [`registering (create -> ACTIVE -> suspend, ${CONCURRENCY} at once), s (load avg mean / max ${run.registerLoad})`, round(run.registerSeconds)],
          [
            `create -> ACTIVE per tenant, ms (p50 / p99 / max over ${run.createMs.n})`,
            `${round(run.createMs.p50)} / ${round(run.createMs.p99)} / ${round(run.createMs.max)}`,
          ],
          [`suspend call per tenant, ms (p50 / p99)`, `${round(run.suspendCallMs.p50)} / ${round(run.suspendCallMs.p99)}`],
          ['disk used by the fleet, GiB (free space before -> after registering)', round(run.diskUsedGib)],
          ['instances running at steady state', run.running],
          [`postgres PSS summed, MiB (${run.postgresProcesses} processes; ${round(perRunning)} per running instance)`, round(run.postgresPssMib)],
          [`control plane PSS, MiB (coordinator, agents, router: ${run.control.processes} processes)`, round(run.control.pssMib)],
          [
            'machine memory in use, MiB (MemTotal - MemAvailable, all processes: before the fleet -> steady state)',
            `${Math.round(usedBefore)} -> ${Math.round(run.usedSteady)}`,
          ],
          ['registered tenants per GiB of postgres PSS', perGib(run.postgresPssMib)],
          ['registered tenants per GiB of postgres + control plane PSS', perGib(run.postgresPssMib + run.control.pssMib)],
          ['registered tenants per GiB of the machine memory added (other work on the machine included)', machineDelta > 0 ? perGib(machineDelta) : '-'],
          [`the same ${REGISTERED} all running, MiB (estimate: PSS per running instance x registered)`, Math.round(perRunning * REGISTERED)],
          [`instances running after the wakes, postgres PSS MiB`, `${run.runningAfterWakes}, ${round(run.postgresPssAfterWakesMib)}`],
        ],
      },
      {
        title: `Latency while ${ACTIVE} tenants work (ms)`,
        columns: ['what', 'n', 'p50', 'p99', 'max', 'load avg (mean / max)'],
        rows: [
          latencyRow(`active loops' queries, ${STEADY_MS / 1000} s before the wakes`, run.steadyLoop, run.steadyLoad),
          latencyRow(`active loops' queries during the wakes`, run.wakeLoop, run.wakeWindowLoad),
          latencyRow(
            `wakes: suspended tenant -> first answer through the router (goal p99 < ${GOAL_P99_MS}: ${verdict(wake.p99 < GOAL_P99_MS)})`,
            wake,
            `${round(wakeLoad.mean)} / ${round(wakeLoad.max)}`,
          ),
        ],
      },
      {
        title: 'Errors',
        columns: ['what', 'count'],
        rows: [
          [`wakes that failed${run.failures.length > 0 ? ` (first: ${run.failures[0]})` : ''}`, run.failures.length],
          [`active loops' queries that failed (of ${run.loopQueries} answered)`, run.loopErrors],
        ],
      },
      ...(run.breakdown ? [run.breakdown.table] : []),
    ],
    data: {
      registered: REGISTERED,
      active: ACTIVE,
      hosts: HOSTS,
      portsPerAgent: PORTS_PER_AGENT,
      machineUsedBeforeMib: usedBefore,
      ...run,
      wakeLatency: wake,
      wakeLoadAverage: wakeLoad,
      breakdown: run.breakdown?.data,
    },
    chart: barChartSvg(
      `Latency with ${ACTIVE} of ${REGISTERED} tenants active (ms)`,
      'ms',
      [
        { label: 'loop p99', value: run.steadyLoop.p99 },
        { label: 'loop p99 (wakes)', value: run.wakeLoop.p99 },
        { label: 'wake p50', value: wake.p50 },
        { label: 'wake p99', value: wake.p99 },
      ],
      { value: GOAL_P99_MS, label: `goal wake p99 ${GOAL_P99_MS} ms` },
    ),
  });
  if (run.failures.length > 0) process.exitCode = 1;
}

await withFleet(
  { name: 'wake-density', block: BLOCK, agents: HOSTS, portsPerAgent: PORTS_PER_AGENT, routers: 1, coordinatorArgs: COORDINATOR_ARGS },
  async (fleet) => {
    const run = await measure(fleet);
    clearInterval(loadTimer);
    reportRun(run);
    console.log('removing the fleet (processes, data directories)...');
  },
);
