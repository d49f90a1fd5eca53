// Wires the router's parts together (main.ts calls this; tests run it in-process).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { BackendFailureKind, RouteFeedService, WakeOutcome } from '@pgs/proto';
import { createLeaderClient, PATIENT_KEEPALIVE, splitAddresses } from '@pgs/rpc';
import { ConfigError, createRegistry, startOpsServer, type HealthReport, type Logger, type OpsServer } from '@pgs/service-kit';
import { AggregatorRegistry, Registry } from 'prom-client';
import { BackendFailureReporter } from './backend-failure-report.js';
import { CancelKeys } from './cancel-keys.js';
import type { RouterConfig } from './config.js';
import { mockSecretOf } from './edge-auth.js';
import { startDataPlane } from './data-plane.js';
import { connectFleetIdentity } from '@pgs/security';
import { formatHostPort, type HostPort } from './listen-address.js';
import { createRouterMetrics, registerCacheGauges } from './metrics.js';
import type { RouterPeerEntry } from './route.js';
import { RouteCache } from './route-cache.js';
import { RouteSync } from './route-sync.js';
import type { RouterServer } from './router-server.js';
import { ClientReporter } from './client-report.js';
import { TenantConnections } from './tenant-connections.js';
import { TenantWaker, type WakeAnswer } from './tenant-waker.js';
import { WorkerPool } from './worker-pool.js';

/** A started router. */
export interface RunningRouter {
  readonly listen: HostPort;
  readonly cancelAddress: string;
  readonly ops: OpsServer;
  readonly cache: RouteCache;
  readonly sync: RouteSync;
  /** The in-process connection server; undefined with --workers (the workers serve). */
  readonly server: RouterServer | undefined;
  /** The worker processes with --workers; undefined for a single process. */
  readonly workers: WorkerPool | undefined;
  /** Re-reads the TLS files (what SIGHUP does); throws when they are bad (the old pair stays). */
  reloadTls(): void | Promise<void>;
  /** Graceful stop: stop accepting, let connections finish up to the configured deadline. */
  stop(): Promise<void>;
}

/** The --instance-ca file, or a ConfigError that says what is wrong with it. */
function readCaFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--instance-ca: cannot read ${file}: ${(err as Error).message}`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`--instance-ca: ${file} holds no PEM certificate`);
  return text;
}

/** Starts the router: cache first (serves at once), listeners, then the route feed and ops endpoint. */
export async function startRouter(config: RouterConfig, log: Logger): Promise<RunningRouter> {
  // The one place the router's gRPC credentials come from: mTLS with its fleet certificate (or
  // --insecure). Instant from saved files; only a first start joins, before anything is opened.
  const link = await connectFleetIdentity({
    routerId: config.routerId,
    coordinator: config.coordinator,
    insecure: config.insecure,
    joinToken: config.joinToken,
    identityDir: config.identityDir ?? path.join(path.dirname(path.resolve(config.cachePath)), `identity-${config.routerId}`),
    files: { caFile: config.coordinatorCa, certFile: config.identityCert, keyFile: config.identityKey },
    log,
  });
  // The CA instances are verified against: an operator's file, else the fleet CA (it may be renewed).
  const instanceCaFile = config.instanceCa ? readCaFile(config.instanceCa) : undefined;
  const instanceCaPem = (): string | undefined => instanceCaFile ?? link.caPem();
  const cache = new RouteCache(config.cachePath);
  log.info({ cachePath: config.cachePath, revision: cache.revision, routes: cache.size }, 'route cache opened');
  const sharedSecret = config.cancelSecret !== undefined;
  const cancelSecret = sharedSecret ? Buffer.from(config.cancelSecret ?? '', 'utf8') : randomBytes(32);
  let peers: RouterPeerEntry[] = cache.peers();
  let instanceTls = cache.instanceTls;
  if (!instanceTls && cache.revision > 0) log.warn({}, 'TLS to instances OFF (as the route cache holds it): tenant traffic to instances is plaintext');

  // The cancel address is known once the cancel listener is bound, before the feed starts.
  let cancelAddress = '';
  // Several coordinators (comma-separated): the client finds the leader and follows it after a failover.
  const client = createLeaderClient(RouteFeedService, splitAddresses(config.coordinator), link.credentials, PATIENT_KEEPALIVE);
  const callOptions = (timeoutMs: number) => ({ timeoutMs, ...(link.metadata ? { metadata: link.metadata } : {}) });
  // Wakes go to the coordinator from this process (a --workers primary forwards its workers' asks).
  const wake = async (tenantId: string, waitingClients: number): Promise<WakeAnswer> => {
    const r = await client.wakeTenant({ tenantId, routerId: config.routerId, waitingClients }, callOptions(5000));
    return { outcome: (WakeOutcome[r.outcome] ?? 'UNSPECIFIED') as WakeAnswer['outcome'], message: r.message, retryAfterMs: r.retryAfterMs };
  };
  // Refused connects to instances go to the coordinator at once (one of its lost-host signals).
  const failures = new BackendFailureReporter({
    send: async (batch) => {
      await client.reportBackendFailures(
        {
          routerId: config.routerId,
          failures: batch.map((f) => ({
            tenantId: f.tenantId,
            address: f.address,
            port: f.port,
            kind: f.kind === 'refused' ? BackendFailureKind.REFUSED : BackendFailureKind.TIMEOUT,
            observedAt: timestampFromMs(f.at),
          })),
        },
        callOptions(2000),
      );
    },
    log: log.child({ component: 'backend-failures' }),
  });
  const sync = new RouteSync({
    client,
    callMetadata: link.metadata,
    cache,
    routerId: config.routerId,
    cancelAddress: () => cancelAddress,
    log: log.child({ component: 'route-sync' }),
    backoffMinMs: config.syncBackoffMin,
    backoffMaxMs: config.syncBackoffMax,
    onBatch: (b) => {
      if (b.peersChanged) peers = cache.peers();
      if (cache.instanceTls !== instanceTls) {
        instanceTls = cache.instanceTls;
        if (instanceTls) log.info({}, 'TLS to instances on: verified against the fleet CA (verify-full on the host address)');
        else log.warn({}, 'TLS to instances OFF (the coordinator runs with it off): tenant traffic to instances is plaintext');
      }
    },
  });
  const cacheState = (): { revision: number; staleSeconds: number; routes: number; connected: boolean } => {
    const s = sync.status();
    return { revision: cache.revision, staleSeconds: s.staleSeconds, routes: cache.size, connected: s.connected };
  };
  const syncHealth = (): HealthReport => {
    const s = sync.status();
    return {
      // Routable when the cache holds a table (even a stale one) or the feed is live.
      ok: cache.revision > 0 || s.connected,
      routerId: config.routerId,
      routes: cache.size,
      // What the fleet said about the leg to instances: verify-full TLS, or off (plaintext).
      instanceTls: cache.instanceTls ? 'verify-full' : 'off',
      cache: {
        revision: s.revision,
        connected: s.connected,
        staleSeconds: Number.isFinite(s.staleSeconds) ? Math.round(s.staleSeconds * 10) / 10 : null,
        syncedAt: s.syncedAt ? new Date(s.syncedAt).toISOString() : null,
        lastError: s.lastError ?? null,
      },
    };
  };

  let listen: HostPort;
  let counts: () => ReadonlyMap<string, number> = () => new Map();
  let registry: Registry;
  let health: () => Promise<HealthReport> | HealthReport;
  let server: RouterServer | undefined;
  let closePool: () => void = () => undefined;
  let workers: WorkerPool | undefined;
  let reloadTls: () => void | Promise<void>;
  if (config.workers > 1) {
    // The primary keeps the feed, the cache writes and the ops endpoint; the workers serve clients.
    workers = await WorkerPool.start({ config, log, cancelSecret, instanceCaPem, wake, backendFailure: (f) => failures.note(f) });
    cancelAddress = config.cancelAdvertise ?? formatHostPort(workers.cancelBound);
    listen = workers.listen;
    const own = createRegistry('router');
    registerCacheGauges(own, cacheState);
    registry = new WorkersRegistry(own, workers);
    const pool = workers;
    // Each worker keeps its reads of the cache file in memory; a committed batch tells it to look again.
    cache.onApplied(() => pool.routesChanged());
    counts = () => pool.tenantCounts();
    health = async () => {
      const status = await pool.status();
      return {
        ...syncHealth(),
        connections: status.reduce((n, w) => n + w.connections, 0),
        cancelKeys: status.reduce((n, w) => n + w.cancelKeys, 0),
        workers: status,
        tls: config.tlsCert ? { cert: config.tlsCert } : null,
      };
    };
    reloadTls = async () => {
      if (!config.tlsCert) return;
      await pool.reloadTls();
      log.info({ cert: config.tlsCert }, 'TLS certificate reloaded in every worker');
    };
    log.info(
      { listen: formatHostPort(listen), cancelAddress, workers: config.workers, tls: config.tlsCert !== undefined, tlsRequire: config.tlsRequire },
      'router listening',
    );
  } else {
    const keys = new CancelKeys({ routerId: config.routerId, secret: cancelSecret });
    const tenants = new TenantConnections();
    counts = () => tenants.all();
    registry = createRegistry('router');
    const metrics = createRouterMetrics(registry, cacheState);
    const plane = await startDataPlane({
      config,
      log,
      metrics,
      keys,
      lookup: (id) => cache.lookup(id),
      verifierOf: (id, user) => cache.verifierOf(id, user),
      instanceTls: { enabled: () => cache.instanceTls, caPem: instanceCaPem },
      mockSecret: mockSecretOf(cancelSecret),
      peers: () => peers,
      tenants,
      maxStartups: config.maxStartups,
      poolMaxBackends: config.poolMaxBackends,
      waker: new TenantWaker(wake, log.child({ component: 'wake' }), metrics),
      onBackendFailure: (f) => failures.note(f),
    });
    server = plane.server;
    closePool = () => plane.pool.close();
    cancelAddress = config.cancelAdvertise ?? formatHostPort(plane.cancelBound);
    listen = plane.listen;
    const open = plane.server;
    health = () => ({
      ...syncHealth(),
      connections: open.open,
      cancelKeys: keys.size,
      tls: plane.tls ? { loadedAt: new Date(plane.tls.loadedAt).toISOString() } : null,
    });
    reloadTls = () => {
      if (plane.reloadTls() === 'error') throw new Error(`TLS certificate reload failed (${config.tlsCert ?? ''}); the previous certificate stays in use`);
    };
    log.info({ listen: formatHostPort(listen), cancelAddress, tls: plane.tls !== undefined, tlsRequire: config.tlsRequire }, 'router listening');
  }

  sync.start();
  const reporter = new ClientReporter({
    counts: () => counts(),
    send: async (tenants, complete) => {
      await client.reportClients({ routerId: config.routerId, tenants, complete }, callOptions(5000));
    },
    intervalMs: config.clientReportInterval,
    log: log.child({ component: 'client-report' }),
  });
  reporter.start();

  const ops = await startOpsServer({
    host: config.opsListen.host,
    port: config.opsListen.port,
    registry,
    health: () => health(),
  });
  log.info({ ops: ops.address }, 'ops endpoint listening');

  return {
    listen,
    cancelAddress,
    ops,
    cache,
    sync,
    server,
    workers,
    reloadTls,
    async stop() {
      reporter.stop();
      if (workers) await workers.stop(config.shutdownTimeout);
      else await server?.stop(config.shutdownTimeout);
      closePool();
      await sync.stop();
      client.close();
      link.stop();
      await ops.close();
      cache.close();
    },
  };
}

/** /metrics of a --workers router: the primary's own metrics (cache gauges, process) summed with every worker's. */
class WorkersRegistry extends Registry {
  readonly #own: Registry;
  readonly #pool: WorkerPool;

  constructor(own: Registry, pool: WorkerPool) {
    super();
    this.#own = own;
    this.#pool = pool;
  }

  override async metrics(): Promise<string> {
    const parts = [await this.#own.getMetricsAsJSON(), ...(await this.#pool.metrics())];
    return AggregatorRegistry.aggregate(parts).metrics();
  }
}
