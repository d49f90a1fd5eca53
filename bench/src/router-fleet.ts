// The router benchmarks' fleet: a static route feed standing in for the coordinator (one
// instance served as tenants in every pool mode), router processes, pgbench runs and a process's
// CPU time from /proc. Used by router-bench.ts and router-cost.ts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { freePort, type TestPostgres } from '@pgs/pg-testkit';
import { PoolMode, RouteFeedService, RouteState } from '@pgs/proto';
import { addService } from '@pgs/rpc';

/** Seconds of each pgbench run. */
export const SECONDS = Number(process.env.PGS_BENCH_SECONDS ?? 5);
/** Extra node flags for the router processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (written when they stop). */
const ROUTER_NODE_ARGS = (process.env.PGS_BENCH_ROUTER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
export const PARKED = 'parked';
export const USER = 'bench';
export const PASSWORD = 'bench-password-1';
export const TENANT = 'acme';
/** The same instance as TENANT, served in pool mode session (the user name routes it; the database stays TENANT). */
export const POOLED = 'pooled';
/** The same instance again, in pool mode transaction. */
export const TXN_POOLED = 'txnpooled';
const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const children: ChildProcess[] = [];
let stopping = false;

/** Stops every process start() started (SIGTERM, or SIGKILL when `now`) and waits for them. */
export async function stopChildren(now = false): Promise<void> {
  stopping = true;
  for (const c of children) c.kill(now ? 'SIGKILL' : 'SIGTERM');
  if (!now) await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((resolve) => c.once('exit', resolve)))));
}

/** Starts a server process; its output goes to a file (a pipe nobody drains would stall it). */
export function start(cmd: string, args: string[], logFile: string, opts: { uid?: number; gid?: number } = {}): ChildProcess {
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], ...opts });
  fs.closeSync(fd);
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal === null && !stopping)
      console.error(`${path.basename(cmd)} exited with ${code}: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
  });
  children.push(child);
  return child;
}

export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** The SCRAM verifier the instance holds for `user` (the coordinator ships the same bytes to routers). */
export async function verifierOf(pg: TestPostgres, user: string): Promise<string> {
  const admin = await pg.adminClient();
  try {
    return (await admin.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user])).rows[0]!.rolpassword;
  } finally {
    await admin.end();
  }
}

/**
 * A RouteFeed that serves static routes, the benchmark's stand-in for the coordinator: the tenant
 * in pool mode NONE (passthrough), the same instance as tenants POOLED (pool mode SESSION) and
 * TXN_POOLED (TRANSACTION), and a stopped tenant.
 */
export async function startStaticFeed(pg: TestPostgres, instanceTls = false): Promise<{ address: string; stop(): void }> {
  const users = [{ name: USER, scramVerifier: await verifierOf(pg, USER) }];
  // The three tenants differ only in their pool mode (and the pooled ones' users).
  const routable = (tenantId: string) => ({
    tenantId,
    hostId: 'h1',
    address: pg.host,
    port: pg.port,
    state: RouteState.ROUTABLE,
    externalAccess: true,
    revision: 1n,
  });
  const server = new Server();
  addService(server, RouteFeedService, {
    async reportClients() {
      return {};
    },
    async wakeTenant() {
      return {};
    },
    async reportBackendFailures() {
      return {};
    },
    async watchRoutes(_req, stream, ctx) {
      await stream.send({
        snapshot: true,
        revision: 1n,
        upserts: [
          { ...routable(TENANT), poolMode: PoolMode.NONE },
          { ...routable(POOLED), poolMode: PoolMode.SESSION, users },
          { ...routable(TXN_POOLED), poolMode: PoolMode.TRANSACTION, users },
          // A stopped tenant: the router answers it alone (handshake + lookup + refusal, no backend).
          {
            tenantId: PARKED,
            hostId: 'h1',
            address: pg.host,
            port: pg.port,
            state: RouteState.STOPPED,
            reason: 'benchmark',
            externalAccess: true,
            revision: 1n,
          },
        ],
        instanceTls,
      });
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

export function buildRouter(): void {
  const build = spawnSync('npx', ['tsc', '-b', 'apps/router'], { cwd: repoRoot, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('building apps/router failed');
}

export async function startRouter(
  feed: string,
  dir: string,
  name: string,
  extra: string[],
  main = path.join(repoRoot, 'apps/router/dist/main.js'),
  nodeArgs: string[] = [],
): Promise<{ port: number; ops: number; pid: number }> {
  const port = await freePort();
  const ops = await freePort();
  const child = start(
    process.execPath,
    [
      ...ROUTER_NODE_ARGS,
      ...nodeArgs,
      main,
      '--listen',
      `127.0.0.1:${port}`,
      '--coordinator',
      feed,
      '--cache-path',
      path.join(dir, `${name}-cache.db`),
      '--router-id',
      name,
      '--ops-listen',
      `127.0.0.1:${ops}`,
      // The static feed is plaintext gRPC.
      '--insecure',
      ...extra,
    ],
    path.join(dir, `${name}.log`),
  );
  await waitForPort(port);
  // Ready to route once the feed's snapshot is in.
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const health = await fetch(`http://127.0.0.1:${ops}/healthz`)
      .then((r) => r.json() as Promise<{ cache?: { revision?: number } }>)
      .catch(() => undefined);
    if ((health?.cache?.revision ?? 0) >= 1) return { port, ops, pid: child.pid! };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('router did not receive its route');
}

export interface Target {
  name: string;
  port: number;
  user: string;
  /** The proxy's process (its children count too: --workers, HAProxy threads are one process); none for direct. */
  pid?: number;
}

/** CPU time (user and system, ms) of `pid` and its child processes so far, from /proc. */
export function cpuTimes(pid: number): { userMs: number; systemMs: number } {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  const times = { userMs: 0, systemMs: 0 };
  const stat = (p: number): string[] | undefined => {
    try {
      return fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
    } catch {
      return undefined; // gone meanwhile
    }
  };
  const add = (f: string[]): void => {
    times.userMs += Number(f[11]) * tick;
    times.systemMs += Number(f[12]) * tick;
  };
  const own = stat(pid);
  if (!own) return times;
  add(own);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = stat(Number(entry));
    if (f && Number(f[1]) === pid) add(f);
  }
  return times;
}

export interface PgbenchResult {
  tps: number;
  /** The proxy's CPU time per transaction (µs), when it is a process of ours. */
  proxyCpuUs: number | undefined;
  /** The part of it spent in the kernel (system time: socket reads and writes). */
  proxySystemUs: number | undefined;
}

/**
 * One pgbench run. `steady`: the proxy's CPU is counted from pgbench's first progress report (its
 * clients all logged in, one second of transactions done) to the end, per transaction after it,
 * so that the logins of many clients (200 SCRAM exchanges at the proxy) are not charged to the
 * transactions of a short run.
 */
export async function pgbench(target: Target, extra: string[], seconds = SECONDS, clients = ['-c', '8', '-j', '2'], steady = false): Promise<PgbenchResult> {
  let cpuBefore = target.pid ? cpuTimes(target.pid) : { userMs: 0, systemMs: 0 };
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(target.port),
    '-U',
    target.user,
    '-S',
    ...clients,
    '-T',
    String(seconds),
    '-n',
    ...(steady ? ['-P', '1'] : []),
    ...extra,
    TENANT,
  ];
  // Clients without TLS: the instance offers it (inner TLS targets), libpq's default would take it.
  const child = spawn('pgbench', args, { env: { ...process.env, PGPASSWORD: PASSWORD, PGSSLMODE: 'disable' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  // Transactions of the first progress interval, not counted when `steady`.
  let firstInterval: number | undefined;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
    if (!steady || firstInterval !== undefined) return;
    const p = /progress: ([\d.]+) s, ([\d.]+) tps/.exec(stderr);
    if (!p) return;
    if (target.pid) cpuBefore = cpuTimes(target.pid);
    firstInterval = Number(p[1]) * Number(p[2]);
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const m = /tps = ([\d.]+)/.exec(stdout);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? 0);
  if (code !== 0 || !m) throw new Error(`pgbench against ${target.name} failed: ${stderr || stdout}`);
  // A run too short for a progress report (or without steady): every transaction counts.
  const tx = steady && firstInterval !== undefined ? processed - firstInterval : processed;
  const after = target.pid && tx > 0 ? cpuTimes(target.pid) : undefined;
  const perTx = (ms: number): number => (ms * 1000) / tx;
  return {
    tps: Number(m[1]),
    proxyCpuUs: after ? perTx(after.userMs + after.systemMs - cpuBefore.userMs - cpuBefore.systemMs) : undefined,
    proxySystemUs: after ? perTx(after.systemMs - cpuBefore.systemMs) : undefined,
  };
}
