// The router's Prometheus metrics. Counted at connection milestones and at close, never per chunk.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CancelOutcome } from './cancel-routing.js';
import { CountedHistogram } from './counted-histogram.js';
import type { RefusalReason } from './refusal.js';

/** Every metric the router exports. */
export interface RouterMetrics {
  accepted: Counter;
  active: Gauge;
  refused: Counter<'reason'>;
  /** The connection histograms are observed at every login: histograms cheap to observe. */
  handshakeSeconds: CountedHistogram;
  routingSeconds: CountedHistogram;
  backendConnectSeconds: CountedHistogram;
  startupSeconds: CountedHistogram;
  bytes: Counter<'direction'>;
  cancels: Counter<'outcome'>;
  tlsReloads: Counter<'result'>;
  backendTls: Counter<'result'>;
  authFailures: Counter<'reason'>;
  poolClients: Gauge<'state'>;
  poolBackends: Gauge<'state'>;
  poolClientsPinned: Gauge;
  /** Observed on every acquire (once per transaction in transaction mode): a histogram cheap to observe. */
  poolWaitSeconds: CountedHistogram;
  poolLeases: Counter<'kind'>;
  /** The pool's lease counts so far, read at scrape time into poolLeases (set by the pool). */
  poolLeaseCounts: { read?: () => { reuse: number; create: number } };
  poolBackendsClosed: Counter<'reason'>;
  /** Session-mode clients whose tenant moved: carried to the new primary, not carried (session state), or failed. */
  sessionsCarried: Counter<'result'>;
  /** The pool's counts, read at scrape time for the pool gauges (set by the pool; none: gauges stay 0). */
  poolCounts: { read?: () => PoolCounts };
  wakeWaits: Counter<'outcome'>;
  wakeWaitSeconds: Histogram;
  wakeRequests: Counter<'outcome'>;
}

/** What the pool gauges show. */
export interface PoolCounts {
  clientsActive: number;
  clientsWaiting: number;
  backendsActive: number;
  backendsIdle: number;
}

/** For work the router does on its own, without waiting on a peer: tens of microseconds. */
const CPU_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01];
const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The route cache's state at scrape time. */
export type CacheState = () => { revision: number; staleSeconds: number; routes: number; connected: boolean };

/**
 * Registers the connection metrics; with `cache`, also the route-cache gauges (a --workers primary
 * registers only those, with registerCacheGauges; its workers only the connection metrics).
 */
export function createRouterMetrics(registry: Registry, cache?: CacheState): RouterMetrics {
  const poolCounts: RouterMetrics['poolCounts'] = {};
  const poolLeaseCounts: RouterMetrics['poolLeaseCounts'] = {};
  // What poolLeases has been told of the pool's counts so far (it only adds the difference).
  const leasesTold = { reuse: 0, create: 0 };
  const m: RouterMetrics = {
    accepted: new Counter({ name: 'pgs_router_connections_accepted_total', help: 'Client connections accepted', registers: [registry] }),
    active: new Gauge({ name: 'pgs_router_connections_active', help: 'Client connections open now', registers: [registry] }),
    refused: new Counter({
      name: 'pgs_router_connections_refused_total',
      help: 'Client connections refused, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    handshakeSeconds: new CountedHistogram({
      name: 'pgs_router_handshake_seconds',
      help: 'Accept to routing decision (TLS, startup packet, cache lookup)',
      buckets: FAST_BUCKETS,
      registers: [registry],
    }),
    routingSeconds: new CountedHistogram({
      name: 'pgs_router_routing_seconds',
      help: "Startup packet received to routing decision (routing key, cache lookup, checks): the router's own time, no client or network wait",
      buckets: CPU_BUCKETS,
      registers: [registry],
    }),
    backendConnectSeconds: new CountedHistogram({
      name: 'pgs_router_backend_connect_seconds',
      help: 'TCP connect to the tenant instance',
      buckets: FAST_BUCKETS,
      registers: [registry],
    }),
    startupSeconds: new CountedHistogram({
      name: 'pgs_router_startup_seconds',
      help: 'Accept to ReadyForQuery (authentication included)',
      buckets: FAST_BUCKETS,
      registers: [registry],
    }),
    bytes: new Counter({ name: 'pgs_router_bytes_total', help: 'Protocol bytes relayed, by direction', labelNames: ['direction'], registers: [registry] }),
    cancels: new Counter({
      name: 'pgs_router_cancel_requests_total',
      help: 'CancelRequests handled, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    backendTls: new Counter({
      name: 'pgs_router_backend_tls_total',
      help: 'Connects to instances by how the leg ended up: tls (verified), plaintext (TLS to instances is off in the fleet), not_offered and failed (refused)',
      labelNames: ['result'],
      registers: [registry],
    }),
    tlsReloads: new Counter({
      name: 'pgs_router_tls_reloads_total',
      help: 'Certificate reloads (SIGHUP), by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'pgs_router_auth_failures_total',
      help: 'Logins refused by the router (pool modes), by reason: wrong_password, unknown_user, throttled, protocol',
      labelNames: ['reason'],
      registers: [registry],
    }),
    // Read when scraped: the pool changes them at every transaction, a scrape comes every few seconds.
    poolClients: new Gauge({
      name: 'pgs_router_pool_clients',
      help: 'Pooled-mode clients holding a server connection (active) or waiting for one (waiting)',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const c = poolCounts.read?.();
        if (!c) return;
        this.set({ state: 'active' }, c.clientsActive);
        this.set({ state: 'waiting' }, c.clientsWaiting);
      },
    }),
    poolClientsPinned: new Gauge({
      name: 'pgs_router_pool_clients_pinned',
      help: 'Transaction-mode clients keeping their server connection between transactions because they hold session state',
      registers: [registry],
    }),
    poolBackends: new Gauge({
      name: 'pgs_router_pool_backends',
      help: 'Pooled server connections lent to a client or being opened (active), or idle',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const c = poolCounts.read?.();
        if (!c) return;
        this.set({ state: 'active' }, c.backendsActive);
        this.set({ state: 'idle' }, c.backendsIdle);
      },
    }),
    poolWaitSeconds: new CountedHistogram({
      name: 'pgs_router_pool_wait_seconds',
      help: 'Time a client waited for a pooled server connection (login of a new one included)',
      buckets: FAST_BUCKETS,
      registers: [registry],
    }),
    poolLeases: new Counter({
      name: 'pgs_router_pool_leases_total',
      help: 'Server connections given to clients: reused from the pool or newly opened',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        const c = poolLeaseCounts.read?.();
        if (!c) return;
        for (const kind of ['reuse', 'create'] as const) {
          if (c[kind] > leasesTold[kind]) this.inc({ kind }, c[kind] - leasesTold[kind]);
          leasesTold[kind] = c[kind];
        }
      },
    }),
    poolBackendsClosed: new Counter({
      name: 'pgs_router_pool_backends_closed_total',
      help: 'Pooled server connections closed, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    sessionsCarried: new Counter({
      name: 'pgs_router_sessions_carried_total',
      help: 'Session-mode clients whose tenant moved to another instance: carried there, not carried (session state), or failed',
      labelNames: ['result'],
      registers: [registry],
    }),
    poolCounts,
    poolLeaseCounts,
    wakeWaits: new Counter({
      name: 'pgs_router_wake_waits_total',
      help: 'Clients held for a suspended tenant, by how the wait ended: served, gave_up (deadline), refused (wake refused or the tenant failed), client_closed',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    wakeWaitSeconds: new Histogram({
      name: 'pgs_router_wake_wait_seconds',
      help: 'How long a client was held while its suspended tenant woke',
      buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
      registers: [registry],
    }),
    wakeRequests: new Counter({
      name: 'pgs_router_wake_requests_total',
      help: 'Wake requests sent to the coordinator, by its answer (or error)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
  if (cache) registerCacheGauges(registry, cache);
  return m;
}

/** Registers the route-cache gauges; `cache` feeds them at scrape time. */
export function registerCacheGauges(registry: Registry, cache: CacheState): void {
  new Gauge({
    name: 'pgs_router_route_cache_revision',
    help: 'Route-table revision the cache is at',
    registers: [registry],
    collect() {
      this.set(cache().revision);
    },
  });
  new Gauge({
    name: 'pgs_router_route_cache_age_seconds',
    help: 'Seconds since the cache was last known in sync with the coordinator (0 while the feed is live, -1 never synced)',
    registers: [registry],
    collect() {
      const s = cache().staleSeconds;
      this.set(Number.isFinite(s) ? s : -1);
    },
  });
  new Gauge({
    name: 'pgs_router_route_cache_routes',
    help: 'Routes in the cache',
    registers: [registry],
    collect() {
      this.set(cache().routes);
    },
  });
  new Gauge({
    name: 'pgs_router_route_feed_connected',
    help: '1 while the route feed from the coordinator is live',
    registers: [registry],
    collect() {
      this.set(cache().connected ? 1 : 0);
    },
  });
}

/** Counts a refusal. */
export function countRefusal(m: RouterMetrics, reason: RefusalReason): void {
  m.refused.inc({ reason });
}

/** Counts a cancel outcome. */
export function countCancel(m: RouterMetrics, outcome: CancelOutcome): void {
  m.cancels.inc({ outcome });
}
