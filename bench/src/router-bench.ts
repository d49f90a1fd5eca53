// Benchmark of apps/router: pgbench -S through the router vs direct vs HAProxy (TCP
// mode) vs PgBouncer (session mode), all in the same run on one machine; the same with a new
// connection per transaction (pgbench -C); and the router's handshake + route lookup latency.
// Not a test: it prints a table.
//
//   npm run bench:router -w bench        (PGS_BENCH_SECONDS=5, PGS_BENCH_ROUNDS=3, PGS_BENCH_WARMUP_SECONDS=10 by default)
//
// The router runs twice: as one process, and with --workers <cores> (HAProxy uses one thread per
// core by default, so that is the like-for-like pair). A bare Node.js pipe proxy runs too, as the
// floor of the runtime. Each number is the median of the rounds; beside throughput it prints each
// proxy's CPU time per transaction (from /proc), which a busy machine moves far less than TPS, and
// the load average at start and end, since a shared machine's load moves every result.
//
// Handshake + lookup is measured two ways: client-side (TCP connect + startup packet -> first
// reply, from this process, which also carries both processes' scheduling on a busy machine) and
// the router's own time from the startup packet to the routing decision, from its histogram.
//
// Targets: router TPS >= 0.9x HAProxy's; connection setup >= HAProxy's rate; handshake
// + lookup overhead < 1 ms p99. Installs haproxy and pgbouncer from Debian packages if missing.
//
// Pooling, in the same run: the router's session pool against PgBouncer configured alike (SCRAM
// against the verifier in its auth_file, session mode) on a new connection per transaction (goal:
// >= 2x direct's rate and above PgBouncer's); MANY_CLIENTS pgbench clients through transaction
// pools of SMALL_POOL server connections, router vs PgBouncer (goal: router TPS >= PgBouncer's);
// and each proxy's memory per idle client (idle-client-memory.ts).
//
// Inner TLS, in the same run: the instance serves TLS too (its certificate from a throwaway CA,
// naming 127.0.0.1), and a second router is told by its feed to reach instances with TLS and verify
// them (verify-full); its passthrough and session-pool targets stand next to the plaintext router's.
// Every client here connects without TLS (PGSSLMODE=disable), so only the router's leg differs.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort, postgresOsUser, startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { encodeStartupMessage } from '@pgs/wire-protocol';
import { heapSnapshotFlags, liveHeapBytes } from './heap-snapshot.js';
import { checkOpenFilesLimit, measureIdleClientMemory, type IdleClientMemory } from './idle-client-memory.js';
import { ensurePackages, startHaproxy, startPgbouncer } from './reference-proxies.js';
import {
  buildRouter,
  PARKED,
  PASSWORD,
  pgbench,
  POOLED,
  SECONDS,
  start,
  startRouter,
  startStaticFeed,
  stopChildren,
  TENANT,
  TXN_POOLED,
  USER,
  waitForPort,
  type Target,
} from './router-fleet.js';

const LATENCY_SAMPLES = Number(process.env.PGS_BENCH_LATENCY_SAMPLES ?? 2000);
// Targets run in turn, round after round, and the median is reported, so drifting background load
// on a shared machine does not favour whoever ran first and one disturbed round does not decide.
const ROUNDS = Number(process.env.PGS_BENCH_ROUNDS ?? 3);
// A router runs for days; V8 optimizes code that runs once per connection only after a few
// thousand connections (measured: the router's connection path was still being compiled after
// 2,000), so every target first serves pgbench -C untimed for this long.
const WARMUP_SECONDS = Number(process.env.PGS_BENCH_WARMUP_SECONDS ?? 10);
const WORKERS = os.cpus().length;
/** Clients of the many-clients run (pgbench -S through a small transaction pool). */
const MANY_CLIENTS = Number(process.env.PGS_BENCH_MANY_CLIENTS ?? 200);
/** Server connections of the small transaction pools (router --pool-size, PgBouncer default_pool_size). */
const SMALL_POOL = 10;
/** Idle clients opened for the memory-per-client run. */
const IDLE_CLIENTS = Number(process.env.PGS_BENCH_IDLE_CLIENTS ?? 1000);
/** `pooling`: only what the pooling goals compare (direct, router none/session/transaction, HAProxy, PgBouncer; the many-clients run; idle memory). */
const ONLY = process.env.PGS_BENCH_ONLY ?? '';
if (ONLY !== '' && ONLY !== 'pooling') throw new Error(`PGS_BENCH_ONLY must be "pooling" or unset, got "${ONLY}"`);
const POOLING_ONLY = ONLY === 'pooling';
/**
 * Another router build (the path of its main.js, e.g. a copy of apps/router/dist made before a
 * change) run next to this one in the pooled rows, interleaved: on a loaded machine only ratios
 * within one run mean much, so a change is judged against the build it replaces in the same run.
 */
const BASELINE = process.env.PGS_BENCH_ROUTER_BASELINE ? path.resolve(process.env.PGS_BENCH_ROUTER_BASELINE) : undefined;

/** A throwaway CA and a server certificate for 127.0.0.1 (openssl CLI), readable by postgres. */
function instanceCertificate(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const run = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'inner-ca.key', '-out', 'inner-ca.crt', '-days', '2', '-subj', '/CN=bench inner CA']);
  fs.writeFileSync(path.join(dir, 'inner-ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  run(['req', ...ec, '-keyout', 'inner.key', '-out', 'inner.csr', '-subj', '/CN=instance:bench']);
  run([
    'x509',
    '-req',
    '-in',
    'inner.csr',
    '-CA',
    'inner-ca.crt',
    '-CAkey',
    'inner-ca.key',
    '-CAcreateserial',
    '-out',
    'inner.crt',
    '-days',
    '2',
    '-extfile',
    'inner-ext.cnf',
  ]);
  const files = { caFile: path.join(dir, 'inner-ca.crt'), certFile: path.join(dir, 'inner.crt'), keyFile: path.join(dir, 'inner.key') };
  fs.chmodSync(files.keyFile, 0o600);
  const owner = postgresOsUser();
  if (owner) for (const f of [files.certFile, files.keyFile]) fs.chownSync(f, owner.uid, owner.gid);
  return files;
}

/** The runtime's floor: a bare Node.js pipe proxy (node-pipe-proxy.ts). */
async function startNodePipe(pg: TestPostgres, dir: string): Promise<{ port: number; pid: number }> {
  const port = await freePort();
  const child = start(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'node-pipe-proxy.ts'), String(port), pg.host, String(pg.port)],
    path.join(dir, 'node-pipe.log'),
  );
  await waitForPort(port);
  return { port, pid: child.pid! };
}

/** Time from TCP connect + startup packet to the first reply byte (ms); `expect` is its type ('R' or 'E'). */
function firstReply(port: number, user: string, expect: number): Promise<number> {
  const startup = encodeStartupMessage({ parameters: { user, database: TENANT } });
  return new Promise<number>((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => s.write(startup));
    s.once('data', (d: Buffer) => {
      const t = performance.now() - t0;
      s.destroy();
      if (d[0] !== expect) reject(new Error(`expected message type ${String.fromCharCode(expect)}, got ${d.toString('latin1', 0, 40)}`));
      else resolve(t);
    });
    s.once('error', reject);
  });
}

/** Interleaved samples (one of each path in turn), so background load hits every path alike. */
async function latencies(paths: Array<{ port: number; user: string; expect: number }>, samples: number): Promise<number[][]> {
  const out = paths.map(() => [] as number[]);
  for (let i = 0; i < samples; i++) {
    for (const [k, p] of paths.entries()) out[k]!.push(await firstReply(p.port, p.user, p.expect));
  }
  return out;
}

/**
 * Cumulative counts of the router's pgs_router_routing_seconds histogram by bucket bound (seconds;
 * Infinity for +Inf): startup packet received -> routing decision, the router's own time.
 */
async function routingHistogram(ops: number): Promise<Map<number, number>> {
  const text = await fetch(`http://127.0.0.1:${ops}/metrics`).then((r) => r.text());
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^pgs_router_routing_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+)/gm)) {
    out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  return out;
}

/** The smallest bucket bound holding 99% of the observations made between two scrapes. */
function histogramP99(before: Map<number, number>, after: Map<number, number>): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (total <= 0) return NaN;
  for (const le of bounds) if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= 0.99 * total) return le;
  return Infinity;
}

function median(values: number[]): number {
  return values.length === 0 ? NaN : percentile(values, 50);
}

function loadavg(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  ensurePackages();
  checkOpenFilesLimit(IDLE_CLIENTS);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-router-bench-'));
  fs.chmodSync(dir, 0o755);
  console.log(
    `router benchmark: ${os.cpus().length} cores, load average ${loadavg()} (1/5/15 min) at start; pgbench -S -c 8 -j 2 -T ${SECONDS}, ${ROUNDS} interleaved rounds (median), same run for every target`,
  );
  const inner = instanceCertificate(dir);
  const pg = await startTestPostgres({
    users: [{ name: USER, password: PASSWORD, database: TENANT }],
    settings: { max_connections: String(MANY_CLIENTS + 300), ssl: 'on', ssl_cert_file: inner.certFile, ssl_key_file: inner.keyFile },
  });
  const feed = await startStaticFeed(pg);
  const tlsFeed = await startStaticFeed(pg, true);
  try {
    const init = spawnSync('pgbench', ['-i', '-s', '10', '-q', '-h', pg.host, '-p', String(pg.port), '-U', USER, TENANT], {
      env: { ...process.env, PGPASSWORD: PASSWORD, PGSSLMODE: 'disable' },
      encoding: 'utf8',
    });
    if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    buildRouter();
    const router = await startRouter(feed.address, dir, 'router', []);
    const workers = WORKERS > 1 && !POOLING_ONLY ? await startRouter(feed.address, dir, 'router-workers', ['--workers', String(WORKERS)]) : undefined;
    const workersName = `router --workers ${WORKERS}`;
    const innerTls = await startRouter(tlsFeed.address, dir, 'router-inner-tls', ['--instance-ca', inner.caFile]);
    const INNER = 'router + inner TLS';
    const INNER_POOL = 'router session pool + inner TLS';
    const haproxy = await startHaproxy(pg, dir);
    const pgbouncer = await startPgbouncer(pg, dir, 'pgbouncer', 'session', 40, IDLE_CLIENTS + 1000);
    // The many-clients pair: transaction pools of SMALL_POOL server connections.
    const router10 = await startRouter(feed.address, dir, 'router-pool10', ['--pool-size', String(SMALL_POOL)]);
    const pgbouncer10 = await startPgbouncer(pg, dir, 'pgbouncer-txn', 'transaction', SMALL_POOL, IDLE_CLIENTS + 1000);
    const baseline = BASELINE ? await startRouter(feed.address, dir, 'router-baseline', [], BASELINE) : undefined;
    const baseline10 = BASELINE ? await startRouter(feed.address, dir, 'router-baseline-pool10', ['--pool-size', String(SMALL_POOL)], BASELINE) : undefined;
    const nodePipe = POOLING_ONLY ? undefined : await startNodePipe(pg, dir);
    const NODE_FLOOR = 'node pipe (floor)';
    const targets: Target[] = [
      { name: 'direct', port: pg.port, user: USER },
      { name: 'router', port: router.port, user: `${USER}.${TENANT}`, pid: router.pid },
      ...(workers ? [{ name: workersName, port: workers.port, user: `${USER}.${TENANT}`, pid: workers.pid }] : []),
      // Pool mode session: SCRAM at the router, a pooled server connection (no fork per connection).
      { name: 'router session pool', port: router.port, user: `${USER}.${POOLED}`, pid: router.pid },
      ...(workers ? [{ name: `${workersName} session pool`, port: workers.port, user: `${USER}.${POOLED}`, pid: workers.pid }] : []),
      { name: 'router transaction pool', port: router.port, user: `${USER}.${TXN_POOLED}`, pid: router.pid },
      ...(baseline ? [{ name: 'baseline router session pool', port: baseline.port, user: `${USER}.${POOLED}`, pid: baseline.pid }] : []),
      // The router's leg to the instance in TLS, verified against the CA (the client's leg stays plaintext).
      { name: INNER, port: innerTls.port, user: `${USER}.${TENANT}`, pid: innerTls.pid },
      { name: INNER_POOL, port: innerTls.port, user: `${USER}.${POOLED}`, pid: innerTls.pid },
      { name: 'haproxy (tcp)', port: haproxy.port, user: USER, pid: haproxy.pid },
      { name: 'pgbouncer (session)', port: pgbouncer.port, user: USER, pid: pgbouncer.pid },
      ...(nodePipe ? [{ name: NODE_FLOOR, port: nodePipe.port, user: USER, pid: nodePipe.pid }] : []),
    ];
    const ROUTER_TXN10 = `router transaction pool ${SMALL_POOL}`;
    const PGBOUNCER_TXN10 = `pgbouncer (transaction) pool ${SMALL_POOL}`;
    const many: Target[] = [
      { name: 'direct', port: pg.port, user: USER },
      { name: ROUTER_TXN10, port: router10.port, user: `${USER}.${TXN_POOLED}`, pid: router10.pid },
      ...(baseline10 ? [{ name: `baseline ${ROUTER_TXN10}`, port: baseline10.port, user: `${USER}.${TXN_POOLED}`, pid: baseline10.pid }] : []),
      { name: PGBOUNCER_TXN10, port: pgbouncer10.port, user: USER, pid: pgbouncer10.pid },
    ];
    // pgbench -M simple: with -M prepared pgbench prepares with the blocking PQprepare, which stalls a
    // thread whose other clients hold every pooled server (see apps/router/README.md).
    const manyArgs = ['-c', String(MANY_CLIENTS), '-j', '2'];
    const manySamples = new Map<string, { tps: number[]; cpuUs: number[] }>(many.map((t) => [t.name, { tps: [], cpuUs: [] }]));
    type Samples = { tps: number[]; connTps: number[]; cpuUs: number[]; connCpuUs: number[] };
    const samples = new Map<string, Samples>(targets.map((t) => [t.name, { tps: [], connTps: [], cpuUs: [], connCpuUs: [] }]));
    for (const t of targets) {
      if (WARMUP_SECONDS <= 0 || t.pid === undefined) continue;
      process.stdout.write(`  warm-up ${t.name}: pgbench -C for ${WARMUP_SECONDS} s ... `);
      console.log(`${(await pgbench(t, ['-C'], WARMUP_SECONDS)).tps.toFixed(0)} tps (not counted)`);
    }
    for (const t of many) {
      if (WARMUP_SECONDS <= 0 || t.pid === undefined) continue;
      process.stdout.write(`  warm-up ${t.name}: pgbench -C for ${WARMUP_SECONDS} s ... `);
      console.log(`${(await pgbench(t, ['-C'], WARMUP_SECONDS)).tps.toFixed(0)} tps (not counted)`);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of targets) {
        process.stdout.write(`  round ${round}/${ROUNDS} ${t.name}: -S ... `);
        const select = await pgbench(t, []);
        process.stdout.write(`${select.tps.toFixed(0)} tps; -C ... `);
        const connect = await pgbench(t, ['-C']);
        console.log(`${connect.tps.toFixed(0)} tps (load ${os.loadavg()[0]!.toFixed(1)})`);
        const s = samples.get(t.name)!;
        s.tps.push(select.tps);
        s.connTps.push(connect.tps);
        if (select.proxyCpuUs !== undefined) s.cpuUs.push(select.proxyCpuUs);
        if (connect.proxyCpuUs !== undefined) s.connCpuUs.push(connect.proxyCpuUs);
      }
      for (const t of many) {
        process.stdout.write(`  round ${round}/${ROUNDS} ${t.name}: -S -M simple ${manyArgs.join(' ')} ... `);
        // A machine loaded by other work may not let 200 SCRAM logins finish within the run
        // (nothing processed): that round of the target is left out, the rest of the run goes on.
        const r = await pgbench(t, ['-M', 'simple'], SECONDS, manyArgs, true).catch((err: unknown) => {
          console.log(
            `failed, left out: ${(err as Error).message.split('\n').find((l) => l.includes('error') || l.includes('aborted') || l.includes('processed')) ?? ''}`,
          );
          return undefined;
        });
        if (!r) continue;
        console.log(`${r.tps.toFixed(0)} tps (load ${os.loadavg()[0]!.toFixed(1)})`);
        manySamples.get(t.name)!.tps.push(r.tps);
        if (r.proxyCpuUs !== undefined) manySamples.get(t.name)!.cpuUs.push(r.proxyCpuUs);
      }
    }
    const results = new Map(
      [...samples].map(([name, s]) => [
        name,
        {
          tps: median(s.tps),
          connTps: median(s.connTps),
          cpuUs: s.cpuUs.length ? median(s.cpuUs) : NaN,
          connCpuUs: s.connCpuUs.length ? median(s.connCpuUs) : NaN,
        },
      ]),
    );
    const direct = results.get('direct')!;
    const haproxyResult = results.get('haproxy (tcp)')!;
    const us = (v: number): string => (Number.isNaN(v) ? '-' : v.toFixed(0));
    const rows = targets.map((t) => {
      const r = results.get(t.name)!;
      return {
        target: t.name,
        'select tps': r.tps.toFixed(0),
        'vs direct': (r.tps / direct.tps).toFixed(2),
        'vs haproxy': (r.tps / haproxyResult.tps).toFixed(2),
        'proxy CPU µs/tx': us(r.cpuUs),
        'connect tps (-C)': r.connTps.toFixed(0),
        '-C vs direct': (r.connTps / direct.connTps).toFixed(2),
        '-C vs haproxy': (r.connTps / haproxyResult.connTps).toFixed(2),
        'proxy CPU µs/conn': us(r.connCpuUs),
      };
    });
    console.log(`\npgbench (same run, median of ${ROUNDS} rounds; proxy CPU = user + system time of the proxy's processes per transaction):`);
    console.table(rows);

    // Connection rate with SCRAM: every -C transaction above is a new connection and a SCRAM login
    // (direct and HAProxy: by PostgreSQL, after a fork; PgBouncer and the router's pools: at the
    // proxy, against the same verifier, on a pooled server connection).
    const pgbouncerResult = results.get('pgbouncer (session)')!;
    const SESSION_POOLS = ['router session pool', ...(workers ? [`${workersName} session pool`] : []), ...(baseline ? ['baseline router session pool'] : [])];
    const connRows = ['direct', 'haproxy (tcp)', 'pgbouncer (session)', ...SESSION_POOLS].map((name) => {
      const r = results.get(name)!;
      return {
        target: name,
        'connect tps (-C -S, SCRAM)': r.connTps.toFixed(0),
        'vs direct': (r.connTps / direct.connTps).toFixed(2),
        'vs pgbouncer': (r.connTps / pgbouncerResult.connTps).toFixed(2),
        'proxy CPU µs/conn': us(r.connCpuUs),
      };
    });
    console.log(
      `\nnew connection per transaction (pgbench -C -S -c 8 -j 2, SCRAM-SHA-256 every time; PgBouncer: auth_type scram-sha-256, verifier in auth_file, session mode), median of ${ROUNDS} rounds:`,
    );
    console.table(connRows);

    // Inner TLS: the same router with its leg to the instance in TLS, next to plaintext.
    const innerRows = [
      ['router', INNER],
      ['router session pool', INNER_POOL],
    ].map(([plainName, tlsName]) => {
      const plain = results.get(plainName!)!;
      const tls = results.get(tlsName!)!;
      return {
        target: tlsName,
        'select tps': tls.tps.toFixed(0),
        'plaintext select tps': plain.tps.toFixed(0),
        'TLS/plain select': (tls.tps / plain.tps).toFixed(2),
        'connect tps (-C)': tls.connTps.toFixed(0),
        'plaintext connect tps': plain.connTps.toFixed(0),
        'TLS/plain connect': (tls.connTps / plain.connTps).toFixed(2),
        'proxy CPU µs/conn (TLS / plain)': `${us(tls.connCpuUs)} / ${us(plain.connCpuUs)}`,
      };
    });
    console.log(`\ninner TLS (router -> instance in TLS, verify-full against the CA; clients in plaintext), median of ${ROUNDS} rounds:`);
    console.table(innerRows);

    const manyResults = new Map([...manySamples].map(([name, s]) => [name, { tps: median(s.tps), cpuUs: s.cpuUs.length ? median(s.cpuUs) : NaN }]));
    const pgbouncer10Result = manyResults.get(PGBOUNCER_TXN10)!;
    console.log(
      `\n${MANY_CLIENTS} clients, pgbench -S -M simple ${manyArgs.join(' ')}; proxies in transaction mode with ${SMALL_POOL} server connections (direct: ${MANY_CLIENTS} backends), median of ${ROUNDS} rounds; proxy CPU per transaction from pgbench's first progress report on (the clients' logins not counted):`,
    );
    console.table(
      many.map((t) => {
        const r = manyResults.get(t.name)!;
        return {
          target: t.name,
          'select tps': r.tps.toFixed(0),
          'vs direct': (r.tps / manyResults.get('direct')!.tps).toFixed(2),
          'vs pgbouncer': (r.tps / pgbouncer10Result.tps).toFixed(2),
          'proxy CPU µs/tx': us(r.cpuUs),
        };
      }),
    );

    let measured: number[][] = [];
    let ownP99: number[] = [];
    if (!POOLING_ONLY) {
      process.stdout.write(`\nhandshake + lookup latency (${LATENCY_SAMPLES} connections per path, interleaved; connect + startup packet -> first reply) ... `);
      const R = 0x52;
      const E = 0x45;
      const paths = [
        { name: 'direct: first auth message', port: pg.port, user: USER, expect: R },
        { name: 'router: first auth message', port: router.port, user: `${USER}.${TENANT}`, expect: R },
        { name: 'haproxy (tcp): first auth message', port: haproxy.port, user: USER, expect: R },
        { name: 'router alone: handshake + lookup + refusal (no backend)', port: router.port, user: `${USER}.${PARKED}`, expect: E },
        ...(workers ? [{ name: `${workersName} alone: handshake + lookup + refusal`, port: workers.port, user: `${USER}.${PARKED}`, expect: E }] : []),
      ];
      const routerSide = [router, ...(workers ? [workers] : [])];
      const before = await Promise.all(routerSide.map((r) => routingHistogram(r.ops)));
      measured = await latencies(paths, LATENCY_SAMPLES);
      const after = await Promise.all(routerSide.map((r) => routingHistogram(r.ops)));
      console.log('done');
      console.table(
        paths.map((p, i) => ({ path: p.name, 'p50 ms': percentile(measured[i]!, 50).toFixed(3), 'p99 ms': percentile(measured[i]!, 99).toFixed(3) })),
      );
      // What a proxy adds to a client's connection start: its first-auth-message times minus direct's.
      const added = (i: number, p: number): string => (percentile(measured[i]!, p) - percentile(measured[0]!, p)).toFixed(3);
      console.log('added to connection start (first auth message) over direct, client-side:');
      console.table([
        { proxy: 'router', 'p50 ms': added(1, 50), 'p99 ms': added(1, 99) },
        { proxy: 'haproxy (tcp)', 'p50 ms': added(2, 50), 'p99 ms': added(2, 99) },
      ]);
      ownP99 = routerSide.map((_, i) => histogramP99(before[i]!, after[i]!));
      console.log(
        "the router's own time, startup packet received -> routing decision (decode, routing key, cache lookup, checks), from its pgs_router_routing_seconds histogram over the latency run:",
      );
      console.table(routerSide.map((_, i) => ({ router: i === 0 ? 'router' : workersName, 'p99 at most (bucket bound) ms': (ownP99[i]! * 1000).toFixed(3) })));
    }
    // Idle clients hold no server connection in transaction mode (PgBouncer: in session mode too,
    // until their first query); the router's session mode lends one at login, so its idle clients
    // would each need a server, and are measured in transaction mode.
    // Fresh processes: one that served the runs above holds their garbage, which it may collect
    // while the clients log in.
    console.log(
      `\nmemory per idle client: ${IDLE_CLIENTS} clients log in (SCRAM, node-postgres, 50 at a time) and stay idle, to a fresh proxy in transaction mode with ${SMALL_POOL} server connections; its RSS/PSS from /proc/<pid>/smaps_rollup before, at ${IDLE_CLIENTS / 2} and at ${IDLE_CLIENTS} clients; per client = the slope between the last two ...`,
    );
    // The routers also write heap snapshots (a full GC first): their live heap per client, load-independent.
    const heapDir = (name: string): string => path.join(dir, `heap-${name}`);
    const routerIdle = await startRouter(
      feed.address,
      dir,
      'router-idle',
      ['--pool-size', String(SMALL_POOL)],
      undefined,
      heapSnapshotFlags(heapDir('router')),
    );
    const pgbouncerIdle = await startPgbouncer(pg, dir, 'pgbouncer-idle', 'transaction', SMALL_POOL, IDLE_CLIENTS + 1000);
    const baselineIdle = BASELINE
      ? await startRouter(feed.address, dir, 'router-baseline-idle', ['--pool-size', String(SMALL_POOL)], BASELINE, heapSnapshotFlags(heapDir('baseline')))
      : undefined;
    const idleTargets = [
      {
        name: ROUTER_TXN10,
        port: routerIdle.port,
        user: `${USER}.${TXN_POOLED}`,
        pid: routerIdle.pid,
        heap: () => liveHeapBytes(routerIdle.pid, heapDir('router')),
      },
      ...(baselineIdle
        ? [
            {
              name: `baseline ${ROUTER_TXN10}`,
              port: baselineIdle.port,
              user: `${USER}.${TXN_POOLED}`,
              pid: baselineIdle.pid,
              heap: () => liveHeapBytes(baselineIdle.pid, heapDir('baseline')),
            },
          ]
        : []),
      { name: PGBOUNCER_TXN10, port: pgbouncerIdle.port, user: USER, pid: pgbouncerIdle.pid },
    ];
    const idle = new Map<string, IdleClientMemory>();
    for (const t of idleTargets) {
      const m = await measureIdleClientMemory({ ...t, password: PASSWORD, database: TENANT }, IDLE_CLIENTS);
      const heap = m.heapPerClientKiB !== undefined ? `, ${m.heapPerClientKiB.toFixed(1)} KiB live heap` : '';
      console.log(`  ${t.name}: ${m.pssPerClientKiB.toFixed(1)} KiB PSS${heap} per idle client`);
      idle.set(t.name, m);
    }
    const mib = (kib: number): string => (kib / 1024).toFixed(1);
    console.table(
      idleTargets.map((t) => {
        const m = idle.get(t.name)!;
        return {
          target: t.name,
          'RSS MiB (0 / half / all)': `${mib(m.before.rssKiB)} / ${mib(m.half.rssKiB)} / ${mib(m.after.rssKiB)}`,
          'PSS MiB (0 / half / all)': `${mib(m.before.pssKiB)} / ${mib(m.half.pssKiB)} / ${mib(m.after.pssKiB)}`,
          'RSS KiB/client': m.rssPerClientKiB.toFixed(1),
          'PSS KiB/client': m.pssPerClientKiB.toFixed(1),
          'live heap KiB/client': m.heapPerClientKiB !== undefined ? m.heapPerClientKiB.toFixed(1) : '-',
          'per 1,000 clients (PSS) MiB': mib(m.pssPerClientKiB * 1000),
        };
      }),
    );

    console.log(`\nload average ${loadavg()} (1/5/15 min) at end`);
    console.log('\ntargets, medians of this run:');
    const verdict = (ok: boolean): string => (ok ? 'MET' : 'NOT MET');
    const floor = results.get(NODE_FLOOR);
    if (!POOLING_ONLY)
      for (const [k, [name, alone]] of (
        [['router', measured[3]!], ...(workers ? [[workersName, measured[4]!] as const] : [])] as Array<readonly [string, number[]]>
      ).entries()) {
        const r = results.get(name)!;
        // The router's own work (TCP accept, startup decode, routing key, cache lookup, reply) is what
        // the no-backend path measures; the full path adds one loopback connect to the instance.
        const clientP99 = percentile(alone, 99);
        const own = ownP99[k]!;
        console.log(`  ${name}:`);
        console.log(`    tps >= 0.9x haproxy: ${(r.tps / haproxyResult.tps).toFixed(2)}x ${verdict(r.tps >= 0.9 * haproxyResult.tps)}`);
        console.log(
          `    connection setup (-C) >= haproxy: ${(r.connTps / haproxyResult.connTps).toFixed(2)}x ${verdict(r.connTps >= haproxyResult.connTps)} (CPU per connection: router ${us(r.connCpuUs)} µs, haproxy ${us(haproxyResult.connCpuUs)} µs, bare node pipe ${us(floor?.connCpuUs ?? NaN)} µs)`,
        );
        console.log(
          `    handshake + lookup p99 < 1 ms: router's own time <= ${(own * 1000).toFixed(3)} ms ${verdict(own < 0.001)}; whole refusal round trip client-side (TCP connect, this process's scheduling) ${clientP99.toFixed(3)} ms ${verdict(clientP99 < 1)}`,
        );
      }
    if (POOLING_ONLY) {
      const r = results.get('router')!;
      console.log(`  router (pool mode none): tps >= haproxy: ${(r.tps / haproxyResult.tps).toFixed(2)}x ${verdict(r.tps >= haproxyResult.tps)}`);
    }
    console.log('\npooling targets, medians of this run:');
    for (const name of SESSION_POOLS) {
      const r = results.get(name)!;
      console.log(
        `  ${name}: connection rate (-C -S, SCRAM) >= 2x direct: ${(r.connTps / direct.connTps).toFixed(2)}x ${verdict(r.connTps >= 2 * direct.connTps)}; above pgbouncer (session): ${(r.connTps / pgbouncerResult.connTps).toFixed(2)}x ${verdict(r.connTps > pgbouncerResult.connTps)}`,
      );
    }
    const r10 = manyResults.get(ROUTER_TXN10)!;
    console.log(
      `  ${ROUTER_TXN10}, ${MANY_CLIENTS} clients: tps >= pgbouncer's (transaction, pool ${SMALL_POOL}): ${(r10.tps / pgbouncer10Result.tps).toFixed(2)}x ${verdict(r10.tps >= pgbouncer10Result.tps)}`,
    );
    const routerMem = idle.get(ROUTER_TXN10)!;
    const bouncerMem = idle.get(PGBOUNCER_TXN10)!;
    console.log(
      `  memory per idle client (PSS): router ${routerMem.pssPerClientKiB.toFixed(1)} KiB (live heap ${routerMem.heapPerClientKiB?.toFixed(1) ?? '-'} KiB), pgbouncer ${bouncerMem.pssPerClientKiB.toFixed(1)} KiB (${(routerMem.pssPerClientKiB / bouncerMem.pssPerClientKiB).toFixed(1)}x; no goal set)`,
    );
  } finally {
    await stopChildren();
    feed.stop();
    tlsFeed.stop();
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  void stopChildren(true);
  process.exit(1);
});
