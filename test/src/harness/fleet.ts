/**
 * A whole fleet on one machine, as child processes of the test: one coordinator, N host agents
 * (each "host" its own loopback address 127.0.<block>.<11+i> and its own data root) and M routers,
 * all in one temp dir. Every fault the scenarios need (kill -9, restart, losing a whole host) is a
 * method here, and `stop()` always leaves nothing behind: it kills every process it started and
 * everything else running under the temp dir (postgres included), then checks /proc.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AppProcess } from './app-process.js';
import { getJson } from './http-json.js';
import type { Endpoint, Login } from './pg-clients.js';
import { attempt } from './pg-clients.js';
import { pgsctlJson, runPgsctl, type PgsctlResult } from './pgsctl.js';
import { waitFor, waitUntil } from './poll.js';
import { freePort } from './ports.js';
import { isAlive, killAllUnder, postmastersUnder, processesUnder, signal, type FoundProcess } from './proc-scan.js';
import { SCRIPTS, requireBuilt } from './repo.js';
import type { HostJson, RouteTableJson, RouterHealthJson, TenantDetailsJson, TenantJson } from './views.js';

/** Timing of host liveness, short so fault scenarios fit in CI. */
export interface FleetTiming {
  heartbeatMs: number;
  hostTtlMs: number;
  hostDownGraceMs: number;
}

/** What startFleet builds. */
export interface FleetOptions {
  /** Short name for the temp dir and logs (e.g. the test file's name). */
  name: string;
  /** Third octet of the file's loopback block: hosts are 127.0.<block>.11, .12, ... */
  block: number;
  agents: number;
  routers: number;
  timing?: Partial<FleetTiming>;
  /** How long each app may take to become ready (default READY_TIMEOUT_MS). */
  readyTimeoutMs?: number;
  /**
   * Where the coordinator listens (default 127.0.<block>.1). A partition test puts it on its
   * veth's root-side address so an agent inside a network namespace can reach it.
   */
  coordinatorAddress?: string;
  /** Hosts (by index) that run inside a network namespace the test created, for partitions. */
  isolatedHosts?: Readonly<Record<number, IsolatedHost>>;
  /**
   * A posix backup repository for the fleet (`--backup-repo posix:<root>/backups`): every host of
   * the suite is on one machine, so one directory is what a shared mount would be.
   */
  backups?: boolean;
  /** More coordinator options, appended after the suite's own. */
  coordinatorArgs?: readonly string[];
  /** Environment of the coordinator (secrets it reads from the environment, never argv). */
  coordinatorEnv?: Readonly<Record<string, string>>;
  /**
   * Several coordinators on one PostgreSQL store (its URL, password included: it goes in the
   * environment, never argv). Agents, routers and pgsctl get every coordinator's address.
   */
  sharedStore?: { url: string; coordinators: number };
  /**
   * Coordinators (by index, with sharedStore) that run inside a network namespace the test created,
   * listening on its address at fixed ports (ISOLATED_COORDINATOR_PORTS: nothing else binds there),
   * so the test can cut one off from the store and from everyone.
   */
  isolatedCoordinators?: Readonly<Record<number, { netns: string; address: string }>>;
}

/** The ports of a coordinator inside a network namespace (its address is its own, so fixed ports are free). */
export const ISOLATED_COORDINATOR_PORTS = Object.freeze({ grpc: 7400, http: 7480 });

/** One coordinator of the fleet. */
export interface FleetCoordinator {
  readonly grpc: string;
  readonly http: string;
  readonly process: AppProcess;
}

/** A host whose agent (and so its instances) runs inside a network namespace. */
export interface IsolatedHost {
  /** The namespace (`ip netns exec <netns>`). */
  netns: string;
  /** The host's address inside the namespace (its instances listen there). */
  address: string;
  /** Networks whose clients (the routers, seen from the namespace) may log in to instances. */
  allowCidrs: readonly string[];
}

/**
 * Security as in production: the coordinator runs its fleet CA and serves mTLS; every
 * agent and router joins with its own single-use join token at its first start (by environment,
 * never argv) and keeps its certificate in its own state dir (agents: <data root>/identity, routers:
 * identity-<id> beside their cache), so restarts need no token; pgsctl trusts the CA and uses the
 * fleet-admin token the coordinator writes at its first start; REST calls send that token as a
 * bearer token.
 */
export interface FleetSecurity {
  /** PEM of the fleet CA (`<coordinator data dir>/ca.pem`). */
  readonly caFile: string;
  /** The bootstrap fleet-admin token (mode 0600). */
  readonly adminTokenFile: string;
  /** Every join token handed out so far (for log scans). */
  readonly joinTokens: readonly string[];
  /** `Authorization` header value for the REST API. */
  bearer(): string;
}

/** The agent's ops port inside a namespace: the namespace is new and empty, so any fixed port is free. */
const ISOLATED_OPS_PORT = 7490;

/**
 * How long each app of a fleet may take to become ready unless a file says otherwise: a deadline, not
 * an expectation (a quiet machine starts an app in a second or two). Files run side by side, on
 * machines shared with other checkouts; at a load average of 50 a host agent was seen to need more
 * than 30 s before it wrote its first log line.
 */
export const READY_TIMEOUT_MS = 120_000;

/** The default liveness timing of the suite: heartbeat 200 ms, unreachable after 1 s, down 1 s later. */
export const FAST_TIMING: FleetTiming = { heartbeatMs: 200, hostTtlMs: 1000, hostDownGraceMs: 1000 };

/** One host: its agent and where its instances live. */
export interface FleetHost {
  readonly id: string;
  readonly address: string;
  readonly dataRoot: string;
  readonly opsUrl: string;
  readonly process: AppProcess;
}

/** One router. */
export interface FleetRouter {
  readonly id: string;
  readonly endpoint: Endpoint;
  readonly opsUrl: string;
  readonly cachePath: string;
  readonly process: AppProcess;
}

/** Options of createTenant. */
export interface CreateTenantOptions {
  password: string;
  access?: boolean;
  replicas?: number;
  syncReplicas?: number;
  /** Wait for ACTIVE and for every router to route it (default true). */
  wait?: boolean;
  /** More `pgsctl tenant create` flags. */
  extraArgs?: readonly string[];
}

/** A running fleet. */
export interface Fleet {
  readonly root: string;
  readonly timing: FleetTiming;
  readonly coordinatorGrpc: string;
  readonly coordinatorHttp: string;
  readonly coordinator: AppProcess;
  /** Every coordinator (one unless sharedStore); coordinatorGrpc lists all their gRPC addresses. */
  readonly coordinators: readonly FleetCoordinator[];
  /** The index of the coordinator whose /healthz says it leads (undefined while none does). */
  leaderIndex(): Promise<number | undefined>;
  killCoordinatorAt(i: number, sig?: NodeJS.Signals): Promise<void>;
  restartCoordinatorAt(i: number): Promise<void>;
  readonly hosts: readonly FleetHost[];
  readonly routers: readonly FleetRouter[];
  /** The fleet CA (the coordinator writes it into its data dir) and the bootstrap fleet-admin token file. */
  readonly security: FleetSecurity;

  /** Runs pgsctl -o json against the coordinator (non-zero exits are returned, not thrown). */
  pgsctl(args: readonly string[], input?: string): Promise<PgsctlResult>;
  /** Runs pgsctl -o json and parses the output; throws on a non-zero exit. */
  pgsctlJson<T>(args: readonly string[], input?: string): Promise<T>;
  tenant(id: string): Promise<TenantDetailsJson>;
  hostStates(): Promise<Record<string, string>>;
  routeTable(): Promise<RouteTableJson>;
  routerHealth(i: number): Promise<RouterHealthJson>;
  /** Creates a tenant; by default waits until it is ACTIVE and every router lets its owner in. */
  createTenant(id: string, options: CreateTenantOptions): Promise<TenantJson>;
  /** Waits until every router (or those listed) reports a route-cache revision >= `revision`. */
  waitRoutersAt(revision: number, timeoutMs?: number, routers?: readonly number[]): Promise<void>;
  /** Waits until `login` can connect and query through every router (or those listed). */
  waitServing(login: Login, timeoutMs?: number, routers?: readonly number[]): Promise<void>;

  killCoordinator(sig?: NodeJS.Signals): Promise<void>;
  restartCoordinator(): Promise<void>;
  killAgent(i: number, sig?: NodeJS.Signals): Promise<void>;
  restartAgent(i: number): Promise<void>;
  /** The whole host goes away: its agent and every postgres under its data root are SIGKILLed. */
  stopHost(i: number): Promise<void>;
  /** The host's agent and instances stop answering (SIGSTOP) or resume (SIGCONT), sockets left open. */
  freezeHost(i: number, frozen: boolean): void;
  killRouter(i: number, sig?: NodeJS.Signals): Promise<void>;
  restartRouter(i: number): Promise<void>;
  /** Live postmasters under a host's data root. */
  postmasters(i: number): Array<{ pid: number; dataDir: string }>;

  /** The tail of every process's log, for the test output on failure. */
  logs(lines?: number): string;
  /** Stops everything; returns the processes that had to be killed at the end (leftovers). */
  stop(): Promise<FoundProcess[]>;
}

/** Third octet blocks already used in this process (two fleets must not share addresses). */
const blocksInUse = new Set<number>();
/** Every fleet root of this process, killed synchronously if the runner exits without afterAll. */
const liveRoots = new Set<string>();
process.once('exit', () => {
  for (const root of liveRoots) for (const p of processesUnder(root)) signal(p.pid, 'SIGKILL');
});

/**
 * Second octet of every fleet address: 0 unless PGS_TEST_NET says otherwise, so that several checkouts
 * of the repo can run the same scenario files on one machine at once without sharing an address.
 */
export const TEST_NET = testNet();

function testNet(): number {
  const raw = process.env['PGS_TEST_NET'] ?? '0';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 254) throw new Error(`PGS_TEST_NET=${raw}: expected an integer 0..254`);
  return n;
}

function hostAddress(block: number, i: number): string {
  return `127.${TEST_NET}.${block}.${11 + i}`;
}

/** Starts a fleet and waits until every part is ready (or throws with their logs). */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  requireBuilt(['coordinator', 'pgsctl', ...(options.agents > 0 ? (['agent'] as const) : []), ...(options.routers > 0 ? (['router'] as const) : [])]);
  if (options.block < 1 || options.block > 254) throw new Error(`block ${options.block} out of 1..254`);
  if (options.agents > 4) throw new Error("at most 4 agents per fleet (each gets 10 ports of the block's 40)");
  if (blocksInUse.has(options.block)) throw new Error(`loopback block 127.${TEST_NET}.${options.block}.0/24 is already used by another fleet`);
  blocksInUse.add(options.block);
  const timing: FleetTiming = { ...FAST_TIMING, ...options.timing };
  const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `pgs-e2e-${options.name}-`));
  // The postgres OS user must traverse to the agents' data roots.
  fs.chmodSync(root, 0o755);
  liveRoots.add(root);
  const controlAddress = `127.${TEST_NET}.${options.block}.1`;
  const coordinatorAddress = options.coordinatorAddress ?? controlAddress;
  const coordinatorCount = options.sharedStore?.coordinators ?? 1;
  const listens: Array<{ grpc: string; http: string }> = [];
  for (let i = 0; i < coordinatorCount; i++) {
    const isolated = options.isolatedCoordinators?.[i];
    listens.push(
      isolated
        ? { grpc: `${isolated.address}:${ISOLATED_COORDINATOR_PORTS.grpc}`, http: `${isolated.address}:${ISOLATED_COORDINATOR_PORTS.http}` }
        : { grpc: `${coordinatorAddress}:${await freePort(coordinatorAddress)}`, http: `${coordinatorAddress}:${await freePort(coordinatorAddress)}` },
    );
  }
  const coordinatorHttp = (listens[0] as { http: string }).http;
  // Agents, routers and pgsctl get every coordinator and find the leader among them.
  const coordinatorGrpc = listens.map((l) => l.grpc).join(',');
  const logDir = path.join(root, 'logs');
  fs.mkdirSync(logDir);
  const adminTokenFile = path.join(root, 'admin.token');
  const coordinatorData = path.join(root, 'coordinator');
  const joinTokens: string[] = [];
  const security: FleetSecurity = {
    caFile: path.join(coordinatorData, 'ca.pem'),
    adminTokenFile,
    joinTokens,
    bearer: () => `Bearer ${fs.readFileSync(adminTokenFile, 'utf8').trim()}`,
  };
  const pgsctlEnv: Record<string, string> = { PGS_CA: security.caFile, PGS_TOKEN_FILE: adminTokenFile };

  // Coordinators sharing a store open its sealed secrets with one key, given in the environment.
  const sharedEnv: Record<string, string> = options.sharedStore
    ? { PGS_STORE: options.sharedStore.url, PGS_SECRET_KEY: randomBytes(32).toString('base64') }
    : {};
  const coordinators: FleetCoordinator[] = listens.map((l, i) => ({
    ...l,
    process: new AppProcess({
      name: i === 0 ? 'coordinator' : `coordinator ${i + 1}`,
      script: SCRIPTS.coordinator,
      ...(options.isolatedCoordinators?.[i] ? { wrapper: ['ip', 'netns', 'exec', options.isolatedCoordinators[i].netns] } : {}),
      cwd: root,
      logFile: path.join(logDir, i === 0 ? 'coordinator.log' : `coordinator-${i + 1}.log`),
      env: { ...options.coordinatorEnv, ...sharedEnv },
      args: [
        '--grpc-listen',
        l.grpc,
        '--http-listen',
        l.http,
        '--data-dir',
        i === 0 ? coordinatorData : `${coordinatorData}-${i + 1}`,
        '--admin-token-file',
        adminTokenFile,
        '--heartbeat-interval',
        `${timing.heartbeatMs}ms`,
        '--host-ttl',
        `${timing.hostTtlMs}ms`,
        '--host-down-grace',
        `${timing.hostDownGraceMs}ms`,
        '--reconcile-interval',
        '100ms',
        '--retry-base',
        '500ms',
        '--retry-max',
        '5s',
        // Tenants ask for a whole core by default; the suite's hosts are all on one small machine.
        '--cpu-overcommit',
        '16',
        ...(options.backups ? ['--backup-repo', `posix:${path.join(root, 'backups')}`] : []),
        ...(options.coordinatorArgs ?? []),
      ],
    }),
  }));
  const coordinator = (coordinators[0] as FleetCoordinator).process;

  const hosts: FleetHost[] = [];
  for (let i = 0; i < options.agents; i++) {
    const id = `h${i + 1}`;
    const isolated = options.isolatedHosts?.[i];
    const address = isolated?.address ?? hostAddress(options.block, i);
    const dataRoot = path.join(root, id);
    fs.mkdirSync(dataRoot, { mode: 0o755 });
    const opsPort = isolated ? ISOLATED_OPS_PORT : await freePort(address);
    // Disjoint port ranges per host, so "not reachable on another host's address" cannot hit a
    // neighbour's instance that happens to use the same port number; all below the ephemeral range.
    const portBase = 20000 + options.block * 40 + i * 10;
    hosts.push({
      id,
      address,
      dataRoot,
      opsUrl: `http://${address}:${opsPort}`,
      process: new AppProcess({
        name: `agent ${id}`,
        script: SCRIPTS.agent,
        cwd: dataRoot,
        logFile: path.join(logDir, `agent-${id}.log`),
        ...(isolated ? { wrapper: ['ip', 'netns', 'exec', isolated.netns] } : {}),
        args: [
          ...(isolated ? ['--allow-cidrs', isolated.allowCidrs.join(',')] : []),
          '--host-id',
          id,
          '--address',
          address,
          '--coordinator',
          coordinatorGrpc,
          '--data-root',
          dataRoot,
          '--runtime',
          'process',
          '--port-range',
          `${portBase}-${portBase + 9}`,
          '--ops-listen',
          `${address}:${opsPort}`,
          '--labels',
          `zone=z${i + 1},region=test`,
          '--cpu',
          '32',
          '--memory',
          '64Gi',
          '--disk',
          '1Ti',
          // Faster than the defaults so faults are noticed and reported within the scenarios' deadlines.
          '--health-interval',
          '500ms',
          '--report-interval',
          '1s',
          '--reconnect-min',
          '50ms',
          '--reconnect-max',
          '500ms',
          '--stop-timeout',
          '5s',
          '--spare-clones',
          '1',
        ],
      }),
    });
  }

  const routers: FleetRouter[] = [];
  for (let i = 0; i < options.routers; i++) {
    const id = `r${i + 1}`;
    const host = controlAddress;
    const port = await freePort(host);
    const opsPort = await freePort(host);
    const cachePath = path.join(root, `router-${id}.db`);
    routers.push({
      id,
      endpoint: { host, port },
      opsUrl: `http://${host}:${opsPort}`,
      cachePath,
      process: new AppProcess({
        name: `router ${id}`,
        script: SCRIPTS.router,
        cwd: root,
        logFile: path.join(logDir, `router-${id}.log`),
        args: [
          '--router-id',
          id,
          '--listen',
          `${host}:${port}`,
          '--coordinator',
          coordinatorGrpc,
          '--cache-path',
          cachePath,
          '--ops-listen',
          `${host}:${opsPort}`,
          '--cancel-listen',
          `${host}:0`,
          '--shutdown-timeout',
          '2s',
          '--sync-backoff-min',
          '50ms',
          '--sync-backoff-max',
          '500ms',
          // Fail over to a changed route quickly instead of waiting a second per attempt.
          '--backend-connect-timeout',
          '2s',
        ],
      }),
    });
  }

  const all = (): AppProcess[] => [...coordinators.map((c) => c.process), ...hosts.map((h) => h.process), ...routers.map((r) => r.process)];

  const logs = (lines = 40): string => {
    const parts = all().map((p) => `----- ${p.spec.name} (${p.spec.logFile}) -----\n${p.tail(lines)}`);
    for (const h of hosts) {
      for (const file of findLogs(h.dataRoot)) parts.push(`----- postgres ${path.relative(root, file)} -----\n${tailFile(file, 15)}`);
    }
    return parts.join('\n');
  };

  const pgsctl = (args: readonly string[], input?: string): Promise<PgsctlResult> =>
    runPgsctl(coordinatorGrpc, args, { env: pgsctlEnv, ...(input === undefined ? {} : { input }) });
  const json = <T>(args: readonly string[], input?: string): Promise<T> =>
    pgsctlJson<T>(coordinatorGrpc, args, { env: pgsctlEnv, ...(input === undefined ? {} : { input }) });

  const oneCoordinatorReady = async (c: FleetCoordinator): Promise<void> => {
    await waitFor(
      `${c.process.spec.name} /healthz`,
      async () => {
        if (!c.process.running) throw new Error(`${c.process.spec.name} exited: ${c.process.tail(20)}`);
        const { status } = await getJson(`http://${c.http}/healthz`);
        return status === 200 ? true : undefined;
      },
      { timeoutMs: readyTimeoutMs },
    );
  };
  const leaderIndex = async (): Promise<number | undefined> => {
    for (const [i, c] of coordinators.entries()) {
      if (!c.process.running) continue;
      const { body } = await getJson<{ role?: string }>(`http://${c.http}/healthz`).catch(() => ({ body: undefined }));
      if (body?.role === 'leader' || (coordinators.length === 1 && body !== undefined)) return i;
    }
    return undefined;
  };
  const coordinatorReady = async (): Promise<void> => {
    await Promise.all(coordinators.filter((c) => c.process.running).map(oneCoordinatorReady));
    if (coordinators.length > 1) await waitFor('a coordinator leading', leaderIndex, { timeoutMs: readyTimeoutMs });
    // Written (mode 0600) by the (first) leader before it listens, at its first start.
    await waitFor('the CA and the fleet-admin token', () => ([security.caFile, adminTokenFile].every((f) => fs.existsSync(f)) ? true : undefined), {
      timeoutMs: readyTimeoutMs,
    });
  };

  /** A single-use join token for one agent or router, created as the fleet-admin. */
  const joinToken = async (kind: 'host' | 'router', id: string): Promise<string> => {
    const { token } = await json<{ token: string }>(['token', 'create', '--kind', kind, '--id', id, '--ttl', '30m']);
    joinTokens.push(token);
    return token;
  };

  const hostStates = async (): Promise<Record<string, string>> => {
    const list = await json<HostJson[]>(['host', 'list']);
    return Object.fromEntries(list.map((h) => [h.id, h.state]));
  };

  const agentReady = async (i: number): Promise<void> => {
    const h = hosts[i] as FleetHost;
    await waitFor(
      `agent ${h.id} /healthz`,
      async () => {
        if (!h.process.running) throw new Error(`agent ${h.id} exited: ${h.process.tail(20)}`);
        const { status } = await getJson(h.opsUrl + '/healthz');
        return status === 200 ? true : undefined;
      },
      { timeoutMs: readyTimeoutMs },
    );
    await waitUntil(`host ${h.id} READY at the coordinator`, hostStates, (s) => s[h.id] === 'READY', { timeoutMs: readyTimeoutMs, intervalMs: 200 });
  };

  const routerHealth = async (i: number): Promise<RouterHealthJson> => {
    const r = routers[i] as FleetRouter;
    const { body } = await getJson<RouterHealthJson>(r.opsUrl + '/healthz');
    if (body === undefined) throw new Error(`router ${r.id} /healthz is not JSON`);
    return body;
  };

  const routerReady = async (i: number, needFeed: boolean): Promise<void> => {
    const r = routers[i] as FleetRouter;
    await waitFor(
      `router ${r.id} ready${needFeed ? ' with a live route feed' : ''}`,
      async () => {
        if (!r.process.running) throw new Error(`router ${r.id} exited: ${r.process.tail(20)}`);
        const h = await routerHealth(i);
        return h.ok && (!needFeed || h.cache.connected) ? true : undefined;
      },
      { timeoutMs: readyTimeoutMs },
    );
  };

  const routerIndexes = (only?: readonly number[]): number[] => [...(only ?? routers.map((_, i) => i))];

  const fleet: Fleet = {
    root,
    timing,
    coordinatorGrpc,
    coordinatorHttp,
    coordinator,
    coordinators,
    leaderIndex,
    async killCoordinatorAt(i, sig = 'SIGKILL') {
      await (coordinators[i] as FleetCoordinator).process.kill(sig);
    },
    async restartCoordinatorAt(i) {
      const c = coordinators[i] as FleetCoordinator;
      c.process.start();
      await oneCoordinatorReady(c);
    },
    hosts,
    routers,
    security,
    pgsctl,
    pgsctlJson: json,
    tenant: (id) => json<TenantDetailsJson>(['tenant', 'get', id]),
    hostStates,
    routeTable: () => json<RouteTableJson>(['route', 'list']),
    routerHealth,

    async createTenant(id, o) {
      const args = ['tenant', 'create', id, '--password-stdin', '--access', o.access === false ? 'disabled' : 'enabled'];
      if (o.replicas !== undefined) args.push('--replicas', String(o.replicas));
      if (o.syncReplicas !== undefined) args.push('--sync-replicas', String(o.syncReplicas));
      args.push(...(o.extraArgs ?? []));
      if (o.wait !== false) args.push('--wait', '--timeout', '60s');
      const created = await json<{ tenant: TenantJson }>(args, o.password);
      if (o.wait !== false && o.access !== false) await fleet.waitServing({ user: id, password: o.password, database: id });
      return created.tenant;
    },

    async waitRoutersAt(revision, timeoutMs = 10_000, only) {
      await Promise.all(
        routerIndexes(only).map((i) =>
          waitUntil(
            `router ${routers[i]?.id} at route revision >= ${revision}`,
            () => routerHealth(i),
            (h) => h.cache.revision >= revision,
            { timeoutMs, intervalMs: 20 },
          ),
        ),
      );
    },

    async waitServing(login, timeoutMs = 15_000, only) {
      await Promise.all(
        routerIndexes(only).map((i) =>
          waitUntil(
            `${login.user} served through router ${routers[i]?.id}`,
            () => attempt((routers[i] as FleetRouter).endpoint, login),
            (a) => a.ok,
            { timeoutMs, intervalMs: 100 },
          ),
        ),
      );
    },

    async killCoordinator(sig = 'SIGKILL') {
      await coordinator.kill(sig);
    },
    async restartCoordinator() {
      coordinator.start();
      await coordinatorReady();
    },
    async killAgent(i, sig = 'SIGKILL') {
      await (hosts[i] as FleetHost).process.kill(sig);
    },
    async restartAgent(i) {
      (hosts[i] as FleetHost).process.start();
      await agentReady(i);
    },
    async stopHost(i) {
      const h = hosts[i] as FleetHost;
      await h.process.kill('SIGKILL');
      await killAllUnder(h.dataRoot);
    },
    freezeHost(i, frozen) {
      const h = hosts[i] as FleetHost;
      for (const p of processesUnder(h.dataRoot)) signal(p.pid, frozen ? 'SIGSTOP' : 'SIGCONT');
    },
    async killRouter(i, sig = 'SIGKILL') {
      await (routers[i] as FleetRouter).process.kill(sig);
    },
    async restartRouter(i) {
      (routers[i] as FleetRouter).process.start();
      await routerReady(i, false);
    },
    postmasters: (i) => postmastersUnder((hosts[i] as FleetHost).dataRoot),

    logs,

    async stop() {
      // Thaw anything frozen so it can die; then the polite way, then by force.
      for (const p of processesUnder(root)) signal(p.pid, 'SIGCONT');
      await Promise.all(routers.map((r) => r.process.kill('SIGTERM', 5000)));
      await Promise.all(hosts.map((h) => h.process.kill('SIGTERM', 5000)));
      await Promise.all(coordinators.map((c) => c.process.kill('SIGTERM', 5000)));
      // Agents leave their instances running on purpose (a restarted agent adopts them): stop them fast.
      for (const h of hosts) for (const pm of postmastersUnder(h.dataRoot)) signal(pm.pid, 'SIGINT');
      await waitFor('postmasters to stop', () => (hosts.every((h) => postmastersUnder(h.dataRoot).length === 0) ? true : undefined), {
        timeoutMs: 10_000,
      }).catch(() => undefined);
      const leftovers = await killAllUnder(root);
      const stillThere = processesUnder(root).filter((p) => isAlive(p.pid));
      if (stillThere.length > 0) throw new Error(`processes survived SIGKILL under ${root}: ${stillThere.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
      liveRoots.delete(root);
      blocksInUse.delete(options.block);
      if (process.env.PGS_E2E_KEEP !== '1') fs.rmSync(root, { recursive: true, force: true });
      return leftovers;
    },
  };

  try {
    for (const c of coordinators) c.process.start();
    await coordinatorReady();
    // Only the first start gets a token: restarts load the certificate the component saved.
    const hostTokens = await Promise.all(hosts.map((h) => joinToken('host', h.id)));
    const routerTokens = await Promise.all(routers.map((r) => joinToken('router', r.id)));
    hosts.forEach((h, i) => h.process.start({ PGS_JOIN_TOKEN: hostTokens[i] as string }));
    await Promise.all(hosts.map((_, i) => agentReady(i)));
    routers.forEach((r, i) => r.process.start({ PGS_JOIN_TOKEN: routerTokens[i] as string }));
    await Promise.all(routers.map((_, i) => routerReady(i, true)));
  } catch (err) {
    const text = logs(80);
    await fleet.stop().catch(() => undefined);
    throw new Error(`fleet ${options.name} did not start: ${(err as Error).message}\n${text}`, { cause: err });
  }
  return fleet;
}

function findLogs(dir: string, depth = 4): string[] {
  const out: string[] = [];
  const walk = (d: string, left: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch (err) {
      if (['ENOENT', 'EACCES', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return;
      throw err;
    }
    for (const e of entries) {
      const full = path.join(d, e.name);
      if (e.isFile() && e.name.endsWith('.log')) out.push(full);
      else if (e.isDirectory() && e.name !== 'data' && e.name !== 'template' && left > 0) walk(full, left - 1);
    }
  };
  walk(dir, depth);
  return out;
}

function tailFile(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(unreadable: ${(err as Error).message})`;
  }
}
