/**
 * The phases of one step of the scale simulator, each returning what it measured: growing the
 * fleet (hosts, then tenants through the API at a steady rate until placed), the coordinator at
 * rest (heartbeat cost), a new router's snapshot, churn (API latency, route propagation to every
 * watcher, host loss and return, a drain), real routers' propagation and a coordinator restart.
 */
import path from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { RouteFeedService, RunState, TenantStatus } from '@pgs/proto';
import { createClient } from '@pgs/rpc';
import { poll, type BenchFleet } from '../fleet-launcher.js';
import { maxOf, minOf, summarize } from '../fleet-report.js';
import { wallMs } from './ipc.js';
import type { ScaleOptions, Step } from './options.js';
import { cpuSeconds, cpuWindow, dirBytes, fsyncsOver, memory } from './proc-stats.js';
import { MAX_FEED_MESSAGE, RouteWatcher, togglePool } from './route-watcher.js';
import type { SimFleet } from './sim-fleet.js';
import { atRate, Latencies } from './steady-rate.js';

/** What every phase works with. */
export interface ScaleContext {
  fleet: BenchFleet;
  sim: SimFleet;
  o: ScaleOptions;
  coordinatorArgs: string[];
  /** Tenants t0..t<created-1> exist (churn's own come and go apart). */
  created: number;
  /** External access of the toggle pool's tenants (absent = on, as created). */
  access: Map<number, boolean>;
  /** Next pool tenant to toggle this step. */
  toggleCursor: number;
}

const HEARTBEAT_INTERVAL_MS = 1000;
const PASSWORD = 'bench-owner-secret';

function pid(ctx: ScaleContext): number {
  const p = ctx.fleet.coordinatorPid();
  if (p === undefined) throw new Error('the coordinator is not running');
  return p;
}

/** Tenants still NEW: one page of one and the total, cheap for the coordinator. */
async function unplaced(ctx: ScaleContext): Promise<number> {
  const res = await ctx.fleet.client.listTenants({ status: TenantStatus.NEW, page: { pageSize: 1 } }, { timeoutMs: 60_000 });
  return res.tenants.length === 0 ? 0 : Math.max(1, res.page?.totalSize ?? 0);
}

function createTenant(ctx: ScaleContext, id: string): Promise<unknown> {
  return ctx.fleet.client.createTenant(
    {
      id,
      ownerPassword: PASSWORD,
      spec: { resources: { cpuMillis: 1000, memoryMib: 512, diskMib: 8192 }, nodes: 1, externalAccess: true, runState: RunState.RUNNING },
    },
    { timeoutMs: 120_000 },
  );
}

export interface GrowResult {
  hostsConnectMs: number;
  tenantsAdded: number;
  createSeconds: number;
  createPerSecond: number;
  /** From the first creation to every tenant placed. */
  placedSeconds: number;
  placementsPerSecond: number;
  backlogAtCreateEnd: number;
  coordinatorCores: number;
  createLatency: ReturnType<typeof summarize>;
  createFailures: number;
}

/**
 * Hosts up to the step's, then tenants through the API at the steady rate until all are placed.
 * `marks` gets what is known as it goes (the hosts' connect time, the creates so far and their
 * rate), so a step stopped while growing still reports how far it got.
 */
export async function grow(ctx: ScaleContext, step: Step, marks: Partial<GrowResult> = {}): Promise<GrowResult> {
  const h0 = performance.now();
  ctx.sim.growHosts(step.hosts);
  await poll(`${step.hosts} fake hosts connected`, async () => (await ctx.sim.stats()).hostsConnected >= step.hosts, 15 * 60_000, 500);
  const hostsConnectMs = performance.now() - h0;
  marks.hostsConnectMs = hostsConnectMs;
  const lat = new Latencies();
  const from = ctx.created;
  const cpu = cpuWindow(pid(ctx));
  const c0 = performance.now();
  let lastLog = c0;
  let answered = 0;
  const { seconds } = await atRate(
    ctx.o.createRate,
    ctx.o.createConcurrency,
    async (i) => {
      await lat.time('create', () => createTenant(ctx, `t${from + i}`));
      marks.tenantsAdded = ++answered;
      marks.createSeconds = (performance.now() - c0) / 1000;
      marks.createPerSecond = marks.tenantsAdded / marks.createSeconds;
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        console.log(
          `  created ${(from + i).toLocaleString('en')} (${Math.round(i / ((lastLog - c0) / 1000))}/s), coordinator RSS ${Math.round(memory(pid(ctx)).rss / 2 ** 20)} MiB`,
        );
      }
    },
    { count: step.tenants - from },
  );
  const backlog = await unplaced(ctx);
  await poll('every tenant placed', async () => (await unplaced(ctx)) === 0, 30 * 60_000, 500);
  const placedSeconds = (performance.now() - c0) / 1000;
  const usage = cpu();
  ctx.created = step.tenants;
  const added = step.tenants - from;
  return Object.assign(marks, {
    hostsConnectMs,
    tenantsAdded: added,
    createSeconds: seconds,
    createPerSecond: added / seconds,
    placedSeconds,
    placementsPerSecond: added / placedSeconds,
    backlogAtCreateEnd: backlog,
    coordinatorCores: usage.cores,
    createLatency: summarize(lat.byKind.get('create') ?? []),
    createFailures: lat.failures.get('create')?.count ?? 0,
  });
}

export interface RestResult {
  cores: number;
  /** Coordinator CPU per heartbeat (µs): everything it did at rest, over the heartbeats it took. */
  usPerHeartbeat: number;
  rssBytes: number;
  peakRssBytes: number;
  storeBytes: number;
  /** fsync/fdatasync calls per second at rest (strace, in a window after the CPU one); undefined without strace. */
  fsyncsPerSecond?: number;
}

/** The coordinator at rest for 10 s with every host heartbeating once a second and reporting its instances every --report-interval-ms; then its fsyncs for 10 s. */
export async function atRest(ctx: ScaleContext, hosts: number): Promise<RestResult> {
  await new Promise((r) => setTimeout(r, 3000));
  const cpu = cpuWindow(pid(ctx));
  await new Promise((r) => setTimeout(r, 10_000));
  const u = cpu();
  const beats = hosts * ((u.seconds * 1000) / HEARTBEAT_INTERVAL_MS);
  const mem = memory(pid(ctx));
  return {
    cores: u.cores,
    usPerHeartbeat: (u.cpuSeconds * 1e6) / beats,
    rssBytes: mem.rss,
    peakRssBytes: mem.peak,
    storeBytes: dirBytes(path.join(ctx.fleet.root, 'coordinator')),
    fsyncsPerSecond: ((await fsyncsOver(pid(ctx), 10_000)) ?? Number.NaN) / 10,
  };
}

/** A route feed client; `routerDefaults`: the channel options a real router uses (gRPC's, 4 MiB messages at most). */
function feedClient(ctx: ScaleContext, routerDefaults = false): ReturnType<typeof createClient<typeof RouteFeedService>> {
  return createClient(
    RouteFeedService,
    ctx.fleet.grpc,
    credentials.createInsecure(),
    routerDefaults ? {} : { 'grpc.max_receive_message_length': MAX_FEED_MESSAGE },
  );
}

/** A new router: WatchRoutes since 0 until the snapshot is in (`routerDefaults`: on a real router's channel options). */
export async function newRouterSnapshot(ctx: ScaleContext, name: string, routerDefaults = false): Promise<{ ms: number; routes: number; bytes: number }> {
  const client = feedClient(ctx, routerDefaults);
  const w = new RouteWatcher(client, name, false, () => false);
  try {
    w.start();
    await poll(`${name}'s snapshot`, async () => w.snapshots.length > 0 || w.errors.length > 0, 10 * 60_000, 20);
    const s = w.snapshots[0];
    if (!s) throw new Error(`${name} got no snapshot: ${w.errors.join('; ')}`);
    return { ms: s.ms, routes: s.routes, bytes: s.bytes };
  } finally {
    w.stop();
    client.close();
  }
}

/** One timed access change: the key watchers record, when its answer came. */
interface Change {
  key: string;
  at: number;
}

function nextToggle(ctx: ScaleContext): { id: string; to: boolean; key: string } {
  const j = ctx.toggleCursor++ % ctx.o.togglePool;
  const to = !(ctx.access.get(j) ?? true);
  ctx.access.set(j, to);
  return { id: `t${j}`, to, key: `t${j}|${to}` };
}

export interface HostLossResult {
  host: string;
  tenants: number;
  /** Loss -> the first watcher's first route change (mostly the coordinator's detection: TTL + grace). */
  firstChangeMs: number;
  /** Loss -> every watcher has every tenant of the host unroutable. */
  allChangedMs: number;
  /** Last change applied minus first: the propagation part once detection is done. */
  spreadMs: number;
  complete: boolean;
}

async function hostLoss(ctx: ScaleContext, hostId: string): Promise<HostLossResult> {
  const tenants = await ctx.sim.instancesOf(hostId);
  await ctx.sim.watchHost(hostId);
  const t0 = wallMs();
  await ctx.sim.lose(hostId);
  let seen: Array<Record<string, number>> = [];
  const complete = await poll(
    `${hostId}'s ${tenants.length} routes changed at every watcher`,
    async () => {
      seen = await ctx.sim.hostLoss();
      return seen.every((w) => tenants.every((t) => w[t] !== undefined));
    },
    120_000,
    250,
  ).then(
    () => true,
    () => false,
  );
  const times = seen.flatMap((w) => Object.values(w));
  await ctx.sim.bringBack(hostId);
  // A watcher per tenant of the host each: 100,000 values at 1,000,000 tenants.
  const first = times.length ? minOf(times) : Number.NaN;
  const last = times.length ? maxOf(times) : Number.NaN;
  return { host: hostId, tenants: tenants.length, firstChangeMs: first - t0, allChangedMs: last - t0, spreadMs: last - first, complete };
}

export interface DrainResult {
  host: string;
  tenants: number;
  moves: number;
  blocked: number;
  leftAfter: number;
  seconds: number;
}

async function drain(ctx: ScaleContext, hostId: string): Promise<DrainResult> {
  const count = async (): Promise<number> =>
    (await ctx.fleet.client.listTenants({ hostId, page: { pageSize: 1 } }, { timeoutMs: 60_000 })).page?.totalSize ?? 0;
  const tenants = await count();
  const t0 = performance.now();
  const res = await ctx.fleet.client.drainHost({ id: hostId }, { timeoutMs: 60_000 });
  let left = tenants;
  await poll(`${hostId} drained`, async () => (left = await count()) === 0, 60_000, 1000).catch(() => undefined);
  return { host: hostId, tenants, moves: res.moves.length, blocked: res.blocked.length, leftAfter: left, seconds: (performance.now() - t0) / 1000 };
}

export interface ChurnResult {
  seconds: number;
  api: Record<string, ReturnType<typeof summarize>>;
  apiFailures: Record<string, { count: number; samples: string[] }>;
  changes: number;
  /** Change answered -> applied, over every (watcher, change) pair. */
  propagation: ReturnType<typeof summarize>;
  /** Change answered -> applied by the last watcher. */
  propagationAll: ReturnType<typeof summarize>;
  /** The worst watcher's p99. */
  worstWatcherP99: number;
  missing: number;
  hostLoss: HostLossResult;
  drain: DrainResult | { error: string };
  coordinatorCores: number;
}

/** Two different hosts that run tenants: those of the middle and the last tenant (or the next ones along). */
async function hostsOfTenants(ctx: ScaleContext, hosts: number): Promise<[string, string]> {
  const found: string[] = [];
  for (let i = Math.floor(ctx.created / 2); found.length < 2 && i < ctx.created; i += Math.max(1, Math.floor(ctx.created / 50))) {
    const t = await ctx.fleet.client.getTenant({ id: `t${i}` }, { timeoutMs: 60_000 });
    const host = t.tenant?.placements.find((p) => p.hostId !== '')?.hostId;
    if (host && !found.includes(host)) found.push(host);
  }
  return [found[0] ?? `sim${hosts - 1}`, found[1] ?? `sim${hosts - 2}`];
}

/** Creates, deletes, gets, lists and access toggles at steady rates, a host lost and back, a drain. */
export async function churn(ctx: ScaleContext, stepIndex: number, hosts: number): Promise<ChurnResult> {
  await ctx.sim.resetToggles();
  const lat = new Latencies();
  const changes: Change[] = [];
  const churned: string[] = [];
  let done = false;
  const until = (): boolean => done;
  const cpu = cpuWindow(pid(ctx));
  const t0 = performance.now();
  const loads = [
    atRate(
      10,
      16,
      async (i) => {
        const id = `c${stepIndex}x${i}`;
        if ((await lat.time('create', () => createTenant(ctx, id))) !== undefined) churned.push(id);
      },
      { until },
    ),
    atRate(
      5,
      16,
      async () => {
        const id = churned.shift();
        if (id) await lat.time('delete', () => ctx.fleet.client.deleteTenant({ id }, { timeoutMs: 60_000 }));
      },
      { until },
    ),
    atRate(
      20,
      16,
      async () => {
        await lat.time('get', () => ctx.fleet.client.getTenant({ id: `t${Math.floor(Math.random() * ctx.created)}` }, { timeoutMs: 60_000 }));
      },
      { until },
    ),
    atRate(
      5,
      8,
      async () => {
        await lat.time('list', () => ctx.fleet.client.listTenants({ page: { pageSize: 100 } }, { timeoutMs: 60_000 }));
      },
      { until },
    ),
    atRate(
      10,
      8,
      async () => {
        const t = nextToggle(ctx);
        if ((await lat.time('setAccess', () => ctx.fleet.client.setTenantAccess({ id: t.id, externalAccess: t.to }, { timeoutMs: 60_000 }))) !== undefined)
          changes.push({ key: t.key, at: wallMs() });
      },
      { until },
    ),
  ];
  // The host events run inside the churn: a loss (and return) first, then a drain of another host.
  // Placement packs tenants onto few hosts, so the hosts are those of two tenants, not picked by number.
  const [lost, drained] = await hostsOfTenants(ctx, hosts);
  await new Promise((r) => setTimeout(r, (ctx.o.churnSeconds * 1000) / 4));
  const loss = await hostLoss(ctx, lost);
  const drainResult = await drain(ctx, drained).catch((err: unknown) => ({ error: (err as Error).message }));
  const left = ctx.o.churnSeconds * 1000 - (performance.now() - t0);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  done = true;
  await Promise.all(loads);
  const seconds = (performance.now() - t0) / 1000;
  const usage = cpu();
  // Let the last changes arrive before asking where they got to.
  await new Promise((r) => setTimeout(r, 2000));
  const perWatcher = await ctx.sim.toggles();
  const pairs: number[] = [];
  const all: number[] = [];
  let missing = 0;
  const watcherP99: number[] = [];
  const byWatcher: number[][] = perWatcher.map(() => []);
  for (const c of changes) {
    let worst = 0;
    let seen = 0;
    perWatcher.forEach((w, i) => {
      const t = w[c.key];
      if (t === undefined) {
        missing += 1;
        return;
      }
      seen += 1;
      const ms = Math.max(0, t - c.at);
      pairs.push(ms);
      byWatcher[i]?.push(ms);
      worst = Math.max(worst, ms);
    });
    // "Applied by all" only for the changes every watcher got; the others are counted as missing.
    if (seen === perWatcher.length) all.push(worst);
  }
  for (const v of byWatcher) if (v.length) watcherP99.push(summarize(v).p99);
  return {
    seconds,
    api: Object.fromEntries([...lat.byKind].map(([k, v]) => [k, summarize(v)])),
    apiFailures: Object.fromEntries(lat.failures),
    changes: changes.length,
    propagation: summarize(pairs),
    propagationAll: summarize(all),
    worstWatcherP99: watcherP99.length ? Math.max(...watcherP99) : Number.NaN,
    missing,
    hostLoss: loss,
    drain: drainResult,
    coordinatorCores: usage.cores,
  };
}

/** Change answered -> a real router's /healthz shows a revision at least the change's (its SQLite cache applied it). */
export async function realRouterPropagation(ctx: ScaleContext, changes: number): Promise<ReturnType<typeof summarize> & { missed: number }> {
  if (ctx.fleet.routers.length === 0) return { ...summarize([]), missed: 0 };
  let missed = 0;
  const client = feedClient(ctx);
  const probe = new RouteWatcher(client, `probe${Date.now()}`, false, togglePool(ctx.o.togglePool), true);
  const out: number[] = [];
  try {
    probe.start();
    await poll('the probe watcher live', async () => probe.connected, 10 * 60_000, 20);
    for (let i = 0; i < changes; i++) {
      const t = nextToggle(ctx);
      delete probe.toggles[t.key];
      await ctx.fleet.client.setTenantAccess({ id: t.id, externalAccess: t.to }, { timeoutMs: 60_000 });
      const at = performance.now();
      await poll(`the probe saw ${t.key}`, async () => probe.toggleRevisions.has(t.key), 30_000, 1);
      const target = Number(probe.toggleRevisions.get(t.key));
      probe.toggleRevisions.delete(t.key);
      // A router that does not get there in 10 s is counted as missed, not waited for.
      const applied = await Promise.all(
        ctx.fleet.routers.map(async (_, r) => {
          await poll(`router ${r} at revision ${target}`, async () => (await ctx.fleet.routerRevision(r)) >= target, 10_000, 2);
          return performance.now();
        }),
      ).catch(() => undefined);
      if (applied) out.push(Math.max(...applied) - at);
      else missed += 1;
    }
  } finally {
    probe.stop();
    client.close();
  }
  return { ...summarize(out), missed };
}

export interface RestartResult {
  /** SIGTERM -> /healthz answers (the launcher polls it every 50 ms). */
  healthzMs: number;
  /** SIGTERM -> an API call answered (ListTenants, one page). */
  servingMs: number;
  /** SIGTERM -> every fake host and watcher back on its stream. */
  fleetBackMs: number;
  /** CPU seconds the new coordinator process used until the API served / until the fleet was back. */
  servingCpuSeconds: number;
  fleetBackCpuSeconds: number;
  rssAfterBytes: number;
}

/**
 * The coordinator stopped (SIGTERM) and started again on its store. Each mark goes into `marks` as
 * it is reached, so a restart whose fleet never comes back still reports how far it got.
 */
export async function restart(ctx: ScaleContext, hosts: number, marks: Partial<RestartResult> = {}): Promise<RestartResult> {
  const t0 = performance.now();
  await ctx.fleet.restartCoordinator(ctx.coordinatorArgs);
  marks.healthzMs = performance.now() - t0;
  await poll(
    'the API serving',
    async () => {
      await ctx.fleet.client.listTenants({ page: { pageSize: 1 } }, { timeoutMs: 5000 });
      return true;
    },
    10 * 60_000,
    50,
  );
  marks.servingMs = performance.now() - t0;
  marks.servingCpuSeconds = cpuSeconds(pid(ctx));
  await poll(
    'hosts and watchers back',
    async () => {
      const s = await ctx.sim.stats();
      return s.hostsConnected >= hosts && s.watchersConnected >= ctx.sim.watchers;
    },
    15 * 60_000,
    250,
  );
  marks.fleetBackMs = performance.now() - t0;
  marks.fleetBackCpuSeconds = cpuSeconds(pid(ctx));
  marks.rssAfterBytes = memory(pid(ctx)).rss;
  return marks as RestartResult;
}
