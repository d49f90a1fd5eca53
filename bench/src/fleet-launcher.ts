/**
 * A local fleet for the fleet benchmarks: the built coordinator, host agents (each on its own
 * loopback address) and routers as child processes in a temp dir, an operator gRPC client, and a
 * stop that leaves no process behind (postgres included: everything whose cwd is under the dir).
 * The e2e suite has its own harness (test/ is black-box and imports nothing); this one may use
 * the gRPC contracts since bench/ is not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { CoordinatorService, HostState } from '@pgs/proto';
import { createClient, type CallOptions, type Client } from '@pgs/rpc';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const SCRIPTS = {
  // PGS_BENCH_COORDINATOR: another build's main.js (e.g. a copy of the build before a change, for before/after runs).
  coordinator: process.env.PGS_BENCH_COORDINATOR ? path.resolve(process.env.PGS_BENCH_COORDINATOR) : path.join(REPO, 'apps', 'coordinator', 'dist', 'main.js'),
  agent: path.join(REPO, 'apps', 'host-agent', 'dist', 'main.js'),
  router: path.join(REPO, 'apps', 'router', 'dist', 'main.js'),
};

/** What to start. */
export interface BenchFleetOptions {
  name: string;
  /** Third octet of the loopback block (127.0.<block>.x). */
  block: number;
  agents: number;
  /**
   * The port range of each agent (an instance holds a port, suspended or not): 100 by default.
   * Wider ranges run past the block's thousand ports into the next block's, which no fleet uses.
   */
  portsPerAgent?: number;
  routers: number;
  coordinatorArgs?: string[];
  agentArgs?: string[];
  /**
   * The coordinator's store: its SQLite file in the data dir (default), or a PostgreSQL server this
   * fleet starts (fsync on, on its own loopback address) and passes as PGS_STORE.
   */
  store?: BenchStore;
}

/** The store backends a bench fleet can run its coordinator on. */
export const BENCH_STORES = ['sqlite', 'postgres'] as const;

/** One of BENCH_STORES. */
export type BenchStore = (typeof BENCH_STORES)[number];

/** The stores named in PGS_BENCH_STORE (comma-separated, default sqlite); a clear error for anything else. */
export function benchStores(value = process.env.PGS_BENCH_STORE ?? 'sqlite'): BenchStore[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = names.filter((n) => !(BENCH_STORES as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0)
    throw new Error(`PGS_BENCH_STORE=${JSON.stringify(value)}: use ${BENCH_STORES.join(', ')} or both, comma-separated (e.g. sqlite,postgres)`);
  return [...new Set(names)] as BenchStore[];
}

/** A started router. */
export interface BenchRouter {
  id: string;
  host: string;
  port: number;
  opsUrl: string;
}

/** A running benchmark fleet. */
export interface BenchFleet {
  root: string;
  grpc: string;
  http: string;
  client: Client<typeof CoordinatorService>;
  routers: BenchRouter[];
  hostAddresses: string[];
  hostDataRoots: string[];
  /** A router's route-cache revision from its /healthz. */
  routerRevision(i: number): Promise<number>;
  /** Stops the coordinator (SIGTERM) and starts it again on the same state, with `extraArgs` instead of the first start's. */
  restartCoordinator(extraArgs?: string[]): Promise<void>;
  /** The coordinator process's pid (for its CPU time and memory in /proc). */
  coordinatorPid(): number | undefined;
  stop(): Promise<void>;
}

/** Whole-fleet answers (GetFleetStatus with 100,000 tenants) are far above gRPC's 4 MiB default. */
const FLEET_DOCUMENT_MAX = 256 * 1024 * 1024;

/** Agents (and anything else that reads PGS_*) run in plaintext too; unknown PGS_* variables are ignored. */
const INSECURE_ENV = Object.freeze({ PGS_INSECURE: 'true' });

/** `client` with `metadata()` added to every call (unary and server-streaming: request, options). */
function withMetadata<C extends object>(client: C, metadata: () => Record<string, string>): C {
  return new Proxy(client, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || key === 'close') return value;
      return (request: unknown, options?: CallOptions) =>
        (value as (r: unknown, o: CallOptions) => unknown).call(target, request, {
          ...options,
          metadata: { ...(options?.metadata as Record<string, string> | undefined), ...metadata() },
        });
    },
  });
}

/** A free port on host. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until truthy or throws after timeoutMs. */
export async function poll(what: string, probe: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.status === 200;
}

/** The role /healthz names (leader or follower with a PostgreSQL store; none with SQLite). */
async function healthRole(url: string): Promise<string | undefined> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as { role?: string }).role;
}

/** Every process whose cwd or command line is under root. */
function processesUnder(root: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let cwd = '';
    let cmd = '';
    try {
      cwd = fs.readlinkSync(`/proc/${e}/cwd`);
      cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
    } catch (err) {
      if (!['ENOENT', 'ESRCH', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
    if (cwd.startsWith(root) || cmd.includes(root)) out.push(Number(e));
  }
  return out;
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * With PGS_BENCH_KEEP_LOGS=<dir>, copies the fleet's logs (coordinator, agents, routers and every
 * instance's postgres.log) there before the temp dir goes, to see where a run's time went.
 */
function keepLogs(root: string): void {
  const target = process.env.PGS_BENCH_KEEP_LOGS;
  if (!target) return;
  const dest = path.join(path.resolve(target), path.basename(root));
  for (const file of fs.readdirSync(root, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.log')) continue;
    const to = path.join(dest, file);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(path.join(root, file), to);
  }
  process.stderr.write(`fleet logs kept in ${dest}\n`);
}

/**
 * Second octet of every bench fleet address: 0 unless PGS_TEST_NET says otherwise (as in the e2e
 * harness), so that several checkouts can run benchmarks on one machine without sharing an address.
 */
export const BENCH_NET = Number(process.env['PGS_TEST_NET'] ?? '0');

/** Starts the fleet; throws (after cleaning up) with log tails when a part does not come up. */
export async function startBenchFleet(o: BenchFleetOptions): Promise<BenchFleet> {
  const needed = { coordinator: SCRIPTS.coordinator, ...(o.agents > 0 ? { agent: SCRIPTS.agent } : {}), ...(o.routers > 0 ? { router: SCRIPTS.router } : {}) };
  if (o.block < 31 || o.block > 49 || o.agents > 10) throw new Error('bench fleets use loopback blocks 31..49 and at most 10 agents');
  const ports = o.portsPerAgent ?? 100;
  const firstPort = 10000 + (o.block - 30) * 1000;
  if (ports < 1 || firstPort + o.agents * ports > 32768) throw new Error(`${o.agents} agents of ${ports} ports do not fit below the ephemeral port range`);
  for (const [name, file] of Object.entries(needed))
    if (!fs.existsSync(file)) throw new Error(`${name} is not built (${file}): run \`NX_DAEMON=false npx nx run-many -t build\``);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `pgs-bench-${o.name}-`));
  fs.chmodSync(root, 0o755);
  const ctl = `127.${BENCH_NET}.${o.block}.1`;
  const grpc = `${ctl}:${await freePort(ctl)}`;
  const http = `${ctl}:${await freePort(ctl)}`;
  const children: ChildProcess[] = [];
  const logs: string[] = [];
  // The store server gets an address of its own in the block, away from the hosts' (.11 and up).
  let storeServer: TestPostgres | undefined;
  const storeEnv: Record<string, string> = {};
  if (o.store === 'postgres') {
    const password = 'bench-store-secret';
    storeServer = await startTestPostgres({ host: `127.${BENCH_NET}.${o.block}.2`, users: [{ name: 'pgs', password }], settings: { fsync: 'on' } });
    storeEnv.PGS_STORE = storeServer.url('pgs', password);
  }
  const start = (name: string, script: string, args: string[], cwd: string, env: Readonly<Record<string, string>> = {}): ChildProcess => {
    const log = path.join(root, `${name}.log`);
    if (!logs.includes(log)) logs.push(log);
    const fd = fs.openSync(log, 'a');
    // PGS_BENCH_NODE_ARGS: node flags for every fleet process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
    // (profiling flags are refused in NODE_OPTIONS).
    const nodeArgs = (process.env.PGS_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], { cwd, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    fs.closeSync(fd);
    children.push(child);
    return child;
  };
  const stop = async (): Promise<void> => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    // A coordinator deep in a backlog may not get to its SIGTERM handler: SIGKILL after a grace period.
    const grace = setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, 20_000);
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    clearTimeout(grace);
    for (let i = 0; i < 100; i++) {
      const left = processesUnder(root);
      if (left.length === 0) break;
      for (const pid of left) kill(pid, i < 40 ? 'SIGINT' : 'SIGKILL');
      await new Promise((r) => setTimeout(r, 100));
    }
    client.close();
    await storeServer?.stop();
    keepLogs(root);
    fs.rmSync(root, { recursive: true, force: true });
  };
  // Plaintext control plane (--insecure: benchmarks measure the platform, not TLS); the operator
  // client carries the fleet-admin token the coordinator writes at its first start.
  const adminTokenFile = path.join(root, 'admin.token');
  let token = '';
  const client = withMetadata(
    createClient(CoordinatorService, grpc, credentials.createInsecure(), { 'grpc.max_receive_message_length': FLEET_DOCUMENT_MAX }),
    (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {}),
  );
  const coordinatorArgs = [
    '--grpc-listen',
    grpc,
    '--http-listen',
    http,
    '--data-dir',
    path.join(root, 'coordinator'),
    '--cpu-overcommit',
    '16',
    '--insecure',
    '--admin-token-file',
    adminTokenFile,
  ];
  let coordinator: ChildProcess | undefined;
  const restartCoordinator = async (extraArgs: string[] = o.coordinatorArgs ?? []): Promise<void> => {
    if (coordinator && coordinator.exitCode === null && coordinator.signalCode === null) {
      const exited = new Promise((r) => coordinator?.once('exit', r));
      coordinator.kill('SIGTERM');
      await exited;
    }
    coordinator = start('coordinator', SCRIPTS.coordinator, [...coordinatorArgs, ...extraArgs], root, storeEnv);
    // A coordinator on a big store (the scale simulator's) takes longer than a minute to load it.
    await poll('coordinator', () => httpOk(`http://${http}/healthz`), Number(process.env.PGS_BENCH_COORDINATOR_START_TIMEOUT ?? 60) * 1000);
    // On PostgreSQL the coordinator answers /healthz while it still elects itself; it writes the
    // admin token and serves the API once it leads.
    if (o.store === 'postgres')
      await poll('coordinator leading', async () => (await healthRole(`http://${http}/healthz`)) === 'leader' && fs.existsSync(adminTokenFile), 60_000);
    if (fs.existsSync(adminTokenFile)) token = fs.readFileSync(adminTokenFile, 'utf8').trim();
  };
  try {
    await restartCoordinator();
    const hostAddresses: string[] = [];
    const hostDataRoots: string[] = [];
    for (let i = 0; i < o.agents; i++) {
      const address = `127.${BENCH_NET}.${o.block}.${11 + i}`;
      const dataRoot = path.join(root, `h${i + 1}`);
      fs.mkdirSync(dataRoot, { mode: 0o755 });
      hostAddresses.push(address);
      hostDataRoots.push(dataRoot);
      // Below the ephemeral range; bench blocks are 31..39.
      const base = firstPort + i * ports;
      start(
        `agent-h${i + 1}`,
        SCRIPTS.agent,
        [
          '--host-id',
          `h${i + 1}`,
          '--address',
          address,
          '--coordinator',
          grpc,
          '--data-root',
          dataRoot,
          '--runtime',
          'process',
          '--port-range',
          `${base}-${base + ports - 1}`,
          '--ops-listen',
          `${address}:0`,
          '--labels',
          `zone=z${i + 1}`,
          '--cpu',
          '64',
          '--memory',
          '256Gi',
          '--disk',
          '4Ti',
          ...(o.agentArgs ?? []),
        ],
        dataRoot,
        INSECURE_ENV,
      );
    }
    await poll(
      `${o.agents} hosts READY`,
      async () => (await client.listHosts({})).hosts.filter((h) => h.state === HostState.READY).length === o.agents,
      // Ten agents starting at once (each its template first) take minutes on a loaded machine.
      Math.max(60_000, o.agents * 20_000),
      200,
    );
    const routers: BenchRouter[] = [];
    for (let i = 0; i < o.routers; i++) {
      const port = await freePort(ctl);
      const ops = await freePort(ctl);
      routers.push({ id: `r${i + 1}`, host: ctl, port, opsUrl: `http://${ctl}:${ops}` });
      start(
        `router-r${i + 1}`,
        SCRIPTS.router,
        [
          '--router-id',
          `r${i + 1}`,
          '--listen',
          `${ctl}:${port}`,
          '--coordinator',
          grpc,
          '--cache-path',
          path.join(root, `r${i + 1}.db`),
          '--ops-listen',
          `${ctl}:${ops}`,
          '--cancel-listen',
          `${ctl}:0`,
          '--shutdown-timeout',
          '1s',
          '--insecure',
        ],
        root,
      );
    }
    const routerRevision = async (i: number): Promise<number> => {
      const res = await fetch(`${routers[i]?.opsUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { cache?: { revision?: number; connected?: boolean } };
      return body.cache?.revision ?? -1;
    };
    await Promise.all(routers.map((r) => poll(`router ${r.id}`, () => httpOk(`${r.opsUrl}/healthz`), 30_000)));
    return {
      root,
      grpc,
      http,
      client,
      routers,
      hostAddresses,
      hostDataRoots,
      routerRevision,
      restartCoordinator,
      coordinatorPid: () => coordinator?.pid,
      stop,
    };
  } catch (err) {
    const tails = logs.map((l) => `--- ${path.basename(l)}\n${fs.readFileSync(l, 'utf8').split('\n').slice(-15).join('\n')}`).join('\n');
    await stop();
    throw new Error(`${(err as Error).message}\n${tails}`, { cause: err });
  }
}

/**
 * Runs `main` with the fleet, stopping it on success, failure, Ctrl-C and SIGTERM. `onSignal` runs
 * first on Ctrl-C or SIGTERM (the process exits once the fleet is stopped, so `main`'s own
 * cleanup never runs): for a benchmark to write what it measured so far.
 */
export async function withFleet<T>(
  o: BenchFleetOptions,
  main: (fleet: BenchFleet) => Promise<T>,
  onSignal?: (signal: NodeJS.Signals) => void | Promise<void>,
): Promise<T> {
  const fleet = await startBenchFleet(o);
  const onSignalStop = (signal: NodeJS.Signals): void => {
    void Promise.resolve()
      .then(() => onSignal?.(signal))
      .catch((err: unknown) => console.error(`on ${signal}: ${(err as Error).message}`))
      .finally(() => void fleet.stop().finally(() => process.exit(130)));
  };
  process.once('SIGINT', onSignalStop);
  process.once('SIGTERM', onSignalStop);
  try {
    return await main(fleet);
  } finally {
    process.off('SIGINT', onSignalStop);
    process.off('SIGTERM', onSignalStop);
    await fleet.stop();
  }
}
