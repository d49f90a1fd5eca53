// Wires the router's parts together (main.ts calls this; tests run it in-process).
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { RouteFeedService } from '@pgs/proto';
import { createClient } from '@pgs/rpc';
import { createRegistry, startOpsServer, type Logger, type OpsServer } from '@pgs/service-kit';
import { CancelKeys } from './cancel-keys.js';
import { CancelRouter } from './cancel-routing.js';
import type { RouterConfig } from './config.js';
import { connectFleetIdentity } from '@pgs/security';
import { formatHostPort, type HostPort } from './listen-address.js';
import { countCancel, createRouterMetrics } from './metrics.js';
import type { RouterPeerEntry } from './route.js';
import { RouteCache } from './route-cache.js';
import { RouteSync } from './route-sync.js';
import { RouterServer } from './router-server.js';
import { Gate, TenantConnections } from './tenant-connections.js';
import { TlsCredentials } from './tls-credentials.js';

/** A started router. */
export interface RunningRouter {
  readonly listen: HostPort;
  readonly cancelAddress: string;
  readonly ops: OpsServer;
  readonly cache: RouteCache;
  readonly sync: RouteSync;
  readonly server: RouterServer;
  /** Re-reads the TLS files (what SIGHUP does); throws when they are bad (the old pair stays). */
  reloadTls(): void;
  /** Graceful stop: stop accepting, let connections finish up to the configured deadline. */
  stop(): Promise<void>;
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
  const cache = new RouteCache(config.cachePath);
  log.info({ cachePath: config.cachePath, revision: cache.revision, routes: cache.size }, 'route cache opened');
  const tls = config.tlsCert && config.tlsKey ? new TlsCredentials(config.tlsCert, config.tlsKey) : undefined;
  const sharedSecret = config.cancelSecret !== undefined;
  const keys = new CancelKeys({ routerId: config.routerId, secret: sharedSecret ? Buffer.from(config.cancelSecret ?? '', 'utf8') : randomBytes(32) });
  let peers: RouterPeerEntry[] = cache.peers();

  // The cancel address is known once the cancel listener is bound, before the feed starts.
  let cancelAddress = '';
  const client = createClient(RouteFeedService, config.coordinator, link.credentials);
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
    },
  });

  const registry = createRegistry('router');
  const metrics = createRouterMetrics(registry, () => {
    const s = sync.status();
    return { revision: cache.revision, staleSeconds: s.staleSeconds, routes: cache.size, connected: s.connected };
  });
  const cancels = new CancelRouter({
    keys,
    routerId: config.routerId,
    sharedSecret,
    peers: () => peers,
    log: log.child({ component: 'cancel' }),
    timeoutMs: config.backendConnectTimeout,
    onOutcome: (o) => countCancel(metrics, o),
  });
  const server = new RouterServer({
    log: log.child({ component: 'connection' }),
    metrics,
    handshake: { tls, tlsRequire: config.tlsRequire },
    routing: { lookup: (id) => cache.lookup(id), order: config.routingOrder, sniDomain: config.sniDomain },
    backend: { timeoutMs: config.backendConnectTimeout, retries: config.backendRetries, routeChangeWaitMs: config.routeChangeWait },
    keys,
    cancels,
    tenants: new TenantConnections(),
    startups: new Gate(config.maxStartups),
    startupTimeoutMs: config.startupTimeout,
    authTimeoutMs: config.authTimeout,
  });

  const cancelBound = await server.listenForCancels(config.cancelListen, cancels);
  cancelAddress = config.cancelAdvertise ?? formatHostPort(cancelBound);
  const listen = await server.listen(config.listen);
  log.info({ listen: formatHostPort(listen), cancelAddress, tls: tls !== undefined, tlsRequire: config.tlsRequire }, 'router listening');

  sync.start();

  const ops = await startOpsServer({
    host: config.opsListen.host,
    port: config.opsListen.port,
    registry,
    health: () => {
      const s = sync.status();
      // Routable when the cache holds a table (even a stale one) or the feed is live.
      return {
        ok: cache.revision > 0 || s.connected,
        routerId: config.routerId,
        routes: cache.size,
        cache: { revision: s.revision, connected: s.connected, staleSeconds: Number.isFinite(s.staleSeconds) ? Math.round(s.staleSeconds * 10) / 10 : null, syncedAt: s.syncedAt ? new Date(s.syncedAt).toISOString() : null, lastError: s.lastError ?? null },
        connections: server.open,
        cancelKeys: keys.size,
        tls: tls ? { loadedAt: new Date(tls.loadedAt).toISOString() } : null,
      };
    },
  });
  log.info({ ops: ops.address }, 'ops endpoint listening');

  return {
    listen,
    cancelAddress,
    ops,
    cache,
    sync,
    server,
    reloadTls() {
      if (!tls) return;
      try {
        tls.reload();
        metrics.tlsReloads.inc({ result: 'ok' });
        log.info({ cert: config.tlsCert }, 'TLS certificate reloaded');
      } catch (err) {
        metrics.tlsReloads.inc({ result: 'error' });
        log.error({ err, cert: config.tlsCert }, 'TLS certificate reload failed; keeping the previous one');
        throw err;
      }
    },
    async stop() {
      await server.stop(config.shutdownTimeout);
      await sync.stop();
      client.close();
      link.stop();
      await ops.close();
      cache.close();
    },
  };
}
