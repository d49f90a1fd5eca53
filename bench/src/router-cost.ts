// What the router spends per unit of work, in the figures a loaded machine moves least: CPU time
// per transaction (user + system time of the router process from /proc over a pgbench run, divided
// by its transactions) in pool modes session, transaction and none (passthrough), beside the same
// figure for the proxy that does that job elsewhere (PgBouncer in the pooled modes, HAProxy for
// passthrough), so the gap is a ratio the load does not move; and memory per idle client in
// transaction mode (live JavaScript heap from heap snapshots, each after a full collection, and
// PSS); and CPU time per new connection in pool mode session (`pgbench -C -S`: a SCRAM login at the
// proxy and a pooled server connection lent and reset each time), beside PgBouncer's in session
// mode and direct's connection rate. Not a test: it prints tables; latency and TPS are in bench:router.
//
//   npm run bench:router-cost -w bench
//     PGS_BENCH_SECONDS=5 PGS_BENCH_ROUNDS=3 PGS_BENCH_WARMUP_SECONDS=10
//     PGS_BENCH_IDLE_CLIENTS=1000,5000   idle-client counts, each measured on a fresh router
//     PGS_BENCH_BASELINE_NODE_ARGS="..."   Node flags for the baseline only (without a baseline build:
//                                         this build again with these flags, e.g. a V8 heap setting)
//     PGS_BENCH_ROUTER_BASELINE=<main.js> another router build (e.g. a copy of apps/router/dist made
//                                         before a change), measured interleaved with this one
//     PGS_BENCH_COST_ONLY=cpu|connect|memory   one part only
//     PGS_BENCH_COST_MODES="transaction -S,..."   only these CPU-per-transaction modes
//     PGS_BENCH_ROUTER_ARGS="--workers 2"       extra flags for every router (both builds)
//     PGS_BENCH_COST_CLIENTS="-c 200 -j 2"      pgbench clients of the CPU runs (default -c 8 -j 2)
//     PGS_BENCH_RATE=<tps>                pgbench -R: every target runs at the same rate, so each
//                                         does the same work per wake-up (a proxy run slower by the
//                                         load reads more messages per wake-up and looks cheaper)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { heapSnapshotFlags, liveHeapBytes } from './heap-snapshot.js';
import { checkOpenFilesLimit, measureIdleClientMemory } from './idle-client-memory.js';
import { ensurePackages, startHaproxy, startPgbouncer } from './reference-proxies.js';
import {
  buildRouter,
  PASSWORD,
  pgbench,
  POOLED,
  SECONDS,
  startRouter,
  startStaticFeed,
  stopChildren,
  TENANT,
  TXN_POOLED,
  USER,
  type Target,
} from './router-fleet.js';

const ROUNDS = Number(process.env.PGS_BENCH_ROUNDS ?? 3);
const WARMUP_SECONDS = Number(process.env.PGS_BENCH_WARMUP_SECONDS ?? 10);
const IDLE_CLIENTS = (process.env.PGS_BENCH_IDLE_CLIENTS ?? '1000,5000').split(',').map(Number);
if (IDLE_CLIENTS.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('PGS_BENCH_IDLE_CLIENTS must be a comma-separated list of integers >= 2');
const ONLY = process.env.PGS_BENCH_COST_ONLY ?? '';
if (!['', 'cpu', 'connect', 'memory'].includes(ONLY)) throw new Error(`PGS_BENCH_COST_ONLY must be "cpu", "connect", "memory" or unset, got "${ONLY}"`);
const RATE = process.env.PGS_BENCH_RATE ? Number(process.env.PGS_BENCH_RATE) : undefined;
if (RATE !== undefined && !(Number.isInteger(RATE) && RATE > 0))
  throw new Error(`PGS_BENCH_RATE must be a positive integer (transactions per second), got "${process.env.PGS_BENCH_RATE}"`);
const RATE_ARGS = RATE ? ['-R', String(RATE)] : [];
const BASELINE = process.env.PGS_BENCH_ROUTER_BASELINE ? path.resolve(process.env.PGS_BENCH_ROUTER_BASELINE) : undefined;
/** A router to measure: this build (`main` undefined) or another, with Node flags of its own. */
interface Build {
  name: string;
  main: string | undefined;
  nodeArgs: string[];
}
const BASELINE_NODE_ARGS = (process.env.PGS_BENCH_BASELINE_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
/** Server connections of the transaction pool (--pool-size); the session pool lends one per client. */
const POOL_SIZE = 10;
/** pgbench's clients and threads (PGS_BENCH_COST_CLIENTS, e.g. "-c 200 -j 2" for many clients over the transaction pool). */
const CLIENTS = (process.env.PGS_BENCH_COST_CLIENTS ?? '-c 8 -j 2').split(' ').filter((a) => a !== '');

/** Extra router flags for every router this run starts (e.g. "--workers 2"), both builds alike. */
const ROUTER_ARGS = (process.env.PGS_BENCH_ROUTER_ARGS ?? '').split(' ').filter((a) => a !== '');

type Reference = 'pgbouncer session' | 'pgbouncer transaction' | 'haproxy';
/** The paths whose CPU per transaction is measured: pool mode, pgbench query mode, the proxy compared with. */
const ALL_MODES: Array<{ name: string; tenant: string; args: string[]; reference: Reference }> = [
  { name: 'session -S', tenant: POOLED, args: ['-M', 'simple'], reference: 'pgbouncer session' },
  { name: 'transaction -S', tenant: TXN_POOLED, args: ['-M', 'simple'], reference: 'pgbouncer transaction' },
  { name: 'transaction -S -M extended', tenant: TXN_POOLED, args: ['-M', 'extended'], reference: 'pgbouncer transaction' },
  { name: 'passthrough -S', tenant: TENANT, args: ['-M', 'simple'], reference: 'haproxy' },
];
const MODES = ALL_MODES.filter((m) => !process.env.PGS_BENCH_COST_MODES || process.env.PGS_BENCH_COST_MODES.split(',').includes(m.name));

function loadavg(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const runs = (part: string): boolean => ONLY === '' || ONLY === part;
  if (runs('memory')) checkOpenFilesLimit(Math.max(...IDLE_CLIENTS));
  if (ONLY !== 'memory') ensurePackages();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-router-cost-'));
  fs.chmodSync(dir, 0o755);
  console.log(`router cost benchmark: ${os.cpus().length} cores, load average ${loadavg()} (1/5/15 min) at start`);
  const pg = await startTestPostgres({ users: [{ name: USER, password: PASSWORD, database: TENANT }], settings: { max_connections: '200' } });
  const feed = await startStaticFeed(pg);
  try {
    buildRouter();
    const builds: Build[] = [
      { name: 'router', main: undefined, nodeArgs: [] },
      ...(BASELINE || BASELINE_NODE_ARGS.length > 0 ? [{ name: 'baseline', main: BASELINE, nodeArgs: BASELINE_NODE_ARGS }] : []),
    ];
    if (runs('cpu') || runs('connect')) initPgbench(pg);
    if (runs('cpu')) await cpuPerTransaction(pg, feed.address, dir, builds);
    if (runs('connect')) await cpuPerConnection(pg, feed.address, dir, builds);
    if (runs('memory')) await memoryPerIdleClient(feed.address, dir, builds);
    console.log(`\nload average ${loadavg()} (1/5/15 min) at end`);
  } finally {
    await stopChildren();
    feed.stop();
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function initPgbench(pg: TestPostgres): void {
  const init = spawnSync('pgbench', ['-i', '-s', '1', '-q', '-h', pg.host, '-p', String(pg.port), '-U', USER, TENANT], {
    env: { ...process.env, PGPASSWORD: PASSWORD, PGSSLMODE: 'disable' },
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
}

async function cpuPerTransaction(pg: TestPostgres, feed: string, dir: string, builds: Build[]): Promise<void> {
  const targets: Array<Target & { mode: (typeof MODES)[number] }> = [];
  for (const b of builds) {
    const r = await startRouter(feed, dir, `cost-${b.name}`, ['--pool-size', String(POOL_SIZE), ...ROUTER_ARGS], b.main, b.nodeArgs);
    for (const mode of MODES) targets.push({ name: `${b.name} ${mode.name}`, port: r.port, user: `${USER}.${mode.tenant}`, pid: r.pid, mode });
  }
  // The reference proxies, sized as the router: a session pool lends one connection per client.
  const references: Partial<Record<Reference, { port: number; pid: number }>> = {};
  for (const mode of MODES) {
    if (references[mode.reference]) continue;
    if (mode.reference === 'pgbouncer session') references[mode.reference] = await startPgbouncer(pg, dir, 'pgbouncer-session', 'session', 40);
    else if (mode.reference === 'pgbouncer transaction')
      references[mode.reference] = await startPgbouncer(pg, dir, 'pgbouncer-transaction', 'transaction', POOL_SIZE);
    else references[mode.reference] = await startHaproxy(pg, dir);
  }
  for (const mode of MODES) {
    const ref = references[mode.reference]!;
    targets.push({ name: `${mode.reference} (${mode.name})`, port: ref.port, user: USER, pid: ref.pid, mode });
  }
  console.log(
    `\nCPU per transaction: pgbench -S ${CLIENTS.join(' ')}${RATE ? ` -R ${RATE}` : ''} -T ${SECONDS} per target, ${ROUNDS} interleaved rounds (median); each proxy's CPU counted from pgbench's first progress report (logins excluded); transaction pools of ${POOL_SIZE} server connections (router and PgBouncer)`,
  );
  for (const t of targets) {
    if (WARMUP_SECONDS <= 0) break;
    const w = await pgbench(t, [...t.mode.args, ...RATE_ARGS], WARMUP_SECONDS, CLIENTS);
    console.log(`  warm-up ${t.name}: ${w.tps.toFixed(0)} tps (not counted)`);
  }
  const samples = new Map(targets.map((t) => [t.name, { cpuUs: [] as number[], systemUs: [] as number[], tps: [] as number[] }]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const r = await pgbench(t, [...t.mode.args, ...RATE_ARGS], SECONDS, CLIENTS, true);
      console.log(
        `  round ${round}/${ROUNDS} ${t.name}: ${r.proxyCpuUs?.toFixed(1) ?? '-'} µs CPU/tx (system ${r.proxySystemUs?.toFixed(1) ?? '-'}), ${r.tps.toFixed(0)} tps (load ${os.loadavg()[0]!.toFixed(1)})`,
      );
      const s = samples.get(t.name)!;
      if (r.proxyCpuUs !== undefined) s.cpuUs.push(r.proxyCpuUs);
      if (r.proxySystemUs !== undefined) s.systemUs.push(r.proxySystemUs);
      s.tps.push(r.tps);
    }
  }
  console.table(
    MODES.map((mode) => {
      const row: Record<string, string> = { mode: mode.name };
      for (const b of builds) {
        const s = samples.get(`${b.name} ${mode.name}`)!;
        row[`${b.name} µs CPU/tx`] = median(s.cpuUs).toFixed(1);
        row[`${b.name} of it system`] = median(s.systemUs).toFixed(1);
        row[`${b.name} tps (load-bound)`] = median(s.tps).toFixed(0);
      }
      const ref = samples.get(`${mode.reference} (${mode.name})`)!;
      row.reference = mode.reference;
      row['reference µs CPU/tx'] = median(ref.cpuUs).toFixed(1);
      row['reference of it system'] = median(ref.systemUs).toFixed(1);
      row['router / reference CPU'] = (median(samples.get(`router ${mode.name}`)!.cpuUs) / median(ref.cpuUs)).toFixed(2);
      return row;
    }),
  );
  console.log(`  load average ${loadavg()}`);
}

/**
 * CPU per new connection in pool mode session: pgbench -C -S, so each transaction is a connection,
 * a SCRAM login at the proxy (PgBouncer: auth_type scram-sha-256 against its auth_file's verifier)
 * and a pooled server connection lent, then reset (DISCARD ALL) when the client leaves. Direct
 * runs too, for the connection rate the pools are compared with (no proxy CPU there).
 */
async function cpuPerConnection(pg: TestPostgres, feed: string, dir: string, builds: Build[]): Promise<void> {
  const targets: Target[] = [{ name: 'direct', port: pg.port, user: USER }];
  for (const b of builds) {
    const r = await startRouter(feed, dir, `connect-${b.name}`, ROUTER_ARGS, b.main, b.nodeArgs);
    targets.push({ name: `${b.name} session pool`, port: r.port, user: `${USER}.${POOLED}`, pid: r.pid });
  }
  const bouncer = await startPgbouncer(pg, dir, 'pgbouncer-connect', 'session', 40);
  targets.push({ name: 'pgbouncer session', port: bouncer.port, user: USER, pid: bouncer.pid });
  console.log(
    `\nCPU per new connection: pgbench -C -S ${CLIENTS.join(' ')}${RATE ? ` -R ${RATE}` : ''} -T ${SECONDS} per target (a SCRAM login each), ${ROUNDS} interleaved rounds (median); the proxy's user + system time over the run / connections`,
  );
  for (const t of targets) {
    if (WARMUP_SECONDS <= 0) break;
    const w = await pgbench(t, ['-C', ...RATE_ARGS], WARMUP_SECONDS, CLIENTS);
    console.log(`  warm-up ${t.name}: ${w.tps.toFixed(0)} connections/s (not counted)`);
  }
  const samples = new Map(targets.map((t) => [t.name, { cpuUs: [] as number[], systemUs: [] as number[], tps: [] as number[] }]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const r = await pgbench(t, ['-C', ...RATE_ARGS], SECONDS, CLIENTS);
      console.log(
        `  round ${round}/${ROUNDS} ${t.name}: ${r.proxyCpuUs?.toFixed(0) ?? '-'} µs CPU/connection (system ${r.proxySystemUs?.toFixed(0) ?? '-'}), ${r.tps.toFixed(0)} connections/s (load ${os.loadavg()[0]!.toFixed(1)})`,
      );
      const s = samples.get(t.name)!;
      if (r.proxyCpuUs !== undefined) s.cpuUs.push(r.proxyCpuUs);
      if (r.proxySystemUs !== undefined) s.systemUs.push(r.proxySystemUs);
      s.tps.push(r.tps);
    }
  }
  const rate = (name: string): number => median(samples.get(name)!.tps);
  console.table(
    targets.map((t) => {
      const s = samples.get(t.name)!;
      return {
        target: t.name,
        'connections/s (load-bound)': rate(t.name).toFixed(0),
        'vs direct': (rate(t.name) / rate('direct')).toFixed(2),
        'vs pgbouncer': (rate(t.name) / rate('pgbouncer session')).toFixed(2),
        'µs CPU/connection': s.cpuUs.length ? median(s.cpuUs).toFixed(0) : '-',
        'of it system': s.systemUs.length ? median(s.systemUs).toFixed(0) : '-',
      };
    }),
  );
  // The same round's figures of the two builds ran seconds apart: their ratio, round by round,
  // shows how much of a difference is the build and how much the machine's load.
  const ours = samples.get('router session pool')?.cpuUs ?? [];
  const theirs = samples.get('baseline session pool')?.cpuUs ?? [];
  if (ours.length > 0 && ours.length === theirs.length) {
    const ratios = ours.map((c, i) => c / theirs[i]!);
    console.log(`  router / baseline CPU per connection, round by round: ${ratios.map((r) => r.toFixed(2)).join(' ')} (median ${median(ratios).toFixed(2)})`);
  }
  console.log(`  load average ${loadavg()}`);
}

async function memoryPerIdleClient(feed: string, dir: string, builds: Build[]): Promise<void> {
  console.log(
    `\nmemory per idle client, transaction mode (pool of ${POOL_SIZE}): N clients log in (SCRAM, node-postgres) and stay idle on a fresh router; live heap per client = (heap at N - heap after N/2 closed) / (N/2), from heap snapshots (a full GC each); PSS per client = slope between N/2 and N`,
  );
  const rows: Array<Record<string, string>> = [];
  for (const n of IDLE_CLIENTS) {
    for (const b of builds) {
      const name = `idle-${b.name}-${n}`;
      const heapDir = path.join(dir, `heap-${name}`);
      const r = await startRouter(feed, dir, name, ['--pool-size', String(POOL_SIZE)], b.main, [...b.nodeArgs, ...heapSnapshotFlags(heapDir)]);
      try {
        const m = await measureIdleClientMemory(
          { port: r.port, user: `${USER}.${TXN_POOLED}`, password: PASSWORD, database: TENANT, pid: r.pid, heap: () => liveHeapBytes(r.pid, heapDir) },
          n,
        );
        const row = {
          build: b.name,
          clients: String(n),
          'live heap KiB/client': m.heapPerClientKiB?.toFixed(2) ?? '-',
          'PSS KiB/client': m.pssPerClientKiB.toFixed(1),
          'RSS KiB/client': m.rssPerClientKiB.toFixed(1),
          'PSS MiB at N': (m.after.pssKiB / 1024).toFixed(1),
          load: os.loadavg()[0]!.toFixed(1),
        };
        console.log(
          `  ${b.name}, ${n} clients: ${row['live heap KiB/client']} KiB live heap, ${row['PSS KiB/client']} KiB PSS per idle client (load ${row.load})`,
        );
        rows.push(row);
      } finally {
        process.kill(r.pid, 'SIGTERM');
      }
    }
  }
  console.table(rows);
}

main().catch((err: unknown) => {
  console.error(err);
  void stopChildren(true);
  process.exit(1);
});
