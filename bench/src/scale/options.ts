/** The scale simulator's flags, checked, with the steps they imply. */
import { parseArgs } from 'node:util';

/** One measured step: the fleet grown to this many tenants on this many hosts. */
export interface Step {
  tenants: number;
  hosts: number;
}

export interface ScaleOptions {
  /** Results file and chart prefix in bench/results/. */
  name: string;
  hosts: number;
  tenants: number;
  routers: number;
  steps: Step[];
  /** Tenant creations per second through the API while the fleet grows. */
  createRate: number;
  createConcurrency: number;
  churnSeconds: number;
  /** Of `routers`: real router processes (SQLite route cache); the rest are in-memory watchers. */
  realRouters: number;
  /** Of the watchers: how many keep the whole route table in memory. */
  fullWatchers: number;
  hostsPerWorker: number;
  /** Fake hosts sharing one gRPC connection (1: each its own, as real agents; see own-connection.ts for why it matters). */
  hostsPerConnection: number;
  /** Each fake host's instance report period (ms), as a real agent's --report-interval. */
  reportIntervalMs: number;
  /** How often an unchanged instance is reported again (ms), as a real agent's --full-report-interval. */
  fullReportIntervalMs: number;
  watchersPerWorker: number;
  /** Tenants t0..t<n-1> have their access toggled during churn (each once per step). */
  togglePool: number;
  restart: boolean;
}

const USAGE = `npm run bench:scale -w bench -- [--hosts 10000] [--tenants 1000000] [--routers 100]
  [--steps 10000:1000,100000:1000,1000000:10000]  tenants:hosts per measured step (default: 10k, 100k, 1M tenants
                                                  up to --tenants, hosts in proportion, at least 1,000)
  [--create-rate 1000] [--create-concurrency 64] [--churn-seconds 30] [--real-routers 2] [--full-watchers 2]
  [--hosts-per-worker 2500] [--hosts-per-connection 1] [--report-interval-ms 5000] [--full-report-interval-ms 15000] [--watchers-per-worker 25] [--toggle-pool 2000] [--no-restart] [--name scale]
  PGS_BENCH_COORDINATOR=<main.js> runs another coordinator build (before/after comparisons)
quick: --hosts 200 --tenants 2000 --routers 10 --churn-seconds 10`;

function positive(name: string, raw: string | undefined, fallback: number, min = 1): number {
  const v = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min} (got ${raw})\n${USAGE}`);
  return v;
}

/** The default steps: 10k, 100k, 1M tenants (those under --tenants, then --tenants), hosts in proportion. */
function defaultSteps(tenants: number, hosts: number): Step[] {
  const counts = [10_000, 100_000, 1_000_000].filter((n) => n < tenants);
  counts.push(tenants);
  const floor = Math.min(1000, hosts);
  return counts.map((n) => ({ tenants: n, hosts: Math.max(floor, Math.min(hosts, Math.round((n / tenants) * hosts))) }));
}

function parseSteps(raw: string): Step[] {
  const steps = raw.split(',').map((s) => {
    const [t, h] = s.split(':').map(Number);
    if (!Number.isInteger(t) || !Number.isInteger(h) || (t as number) < 1 || (h as number) < 1)
      throw new Error(`--steps: "${s}" is not tenants:hosts\n${USAGE}`);
    return { tenants: t as number, hosts: h as number };
  });
  for (let i = 1; i < steps.length; i++) {
    const a = steps[i - 1] as Step;
    const b = steps[i] as Step;
    if (b.tenants < a.tenants || b.hosts < a.hosts) throw new Error(`--steps must only grow (${a.tenants}:${a.hosts} then ${b.tenants}:${b.hosts})`);
  }
  return steps;
}

export function parseOptions(argv: string[]): ScaleOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      hosts: { type: 'string' },
      tenants: { type: 'string' },
      routers: { type: 'string' },
      steps: { type: 'string' },
      'create-rate': { type: 'string' },
      'create-concurrency': { type: 'string' },
      'churn-seconds': { type: 'string' },
      'real-routers': { type: 'string' },
      'full-watchers': { type: 'string' },
      'hosts-per-worker': { type: 'string' },
      'hosts-per-connection': { type: 'string' },
      'report-interval-ms': { type: 'string' },
      'full-report-interval-ms': { type: 'string' },
      'watchers-per-worker': { type: 'string' },
      name: { type: 'string' },
      'toggle-pool': { type: 'string' },
      'no-restart': { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const hosts = positive('hosts', values.hosts, 10_000);
  const tenants = positive('tenants', values.tenants, 1_000_000);
  const routers = positive('routers', values.routers, 100);
  const steps = values.steps ? parseSteps(values.steps) : defaultSteps(tenants, hosts);
  const realRouters = positive('real-routers', values['real-routers'], Math.min(2, routers), 0);
  if (realRouters > routers || realRouters > 10) throw new Error(`--real-routers must be at most --routers and at most 10 (got ${realRouters})`);
  const togglePool = positive('toggle-pool', values['toggle-pool'], Math.min(2000, steps[0]?.tenants ?? 2000));
  if (togglePool > (steps[0]?.tenants ?? 0)) throw new Error(`--toggle-pool (${togglePool}) must not exceed the first step's tenants (${steps[0]?.tenants})`);
  const name = values.name ?? 'scale';
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`--name must be lower-case letters, digits and dashes (got ${name})`);
  return {
    name,
    hosts,
    tenants,
    routers,
    steps,
    createRate: positive('create-rate', values['create-rate'], 1000),
    createConcurrency: positive('create-concurrency', values['create-concurrency'], 64),
    churnSeconds: positive('churn-seconds', values['churn-seconds'], 30),
    realRouters,
    fullWatchers: positive('full-watchers', values['full-watchers'], 2, 0),
    hostsPerWorker: positive('hosts-per-worker', values['hosts-per-worker'], 2500),
    // A real agent has a connection of its own.
    hostsPerConnection: positive('hosts-per-connection', values['hosts-per-connection'], 1),
    // The host agent's defaults: --report-interval (changed and replicated instances) and
    // --full-report-interval (every other instance).
    reportIntervalMs: positive('report-interval-ms', values['report-interval-ms'], 5000, 0),
    fullReportIntervalMs: positive('full-report-interval-ms', values['full-report-interval-ms'], 15_000),
    watchersPerWorker: positive('watchers-per-worker', values['watchers-per-worker'], 25),
    togglePool,
    restart: !values['no-restart'],
  };
}
