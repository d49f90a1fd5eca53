// The client-serving half of a router: cancel routing, the connection server and its two
// listeners. One process runs it (the default), or each --workers worker does.
import type { Logger } from '@pgs/service-kit';
import type { CancelKeys } from './cancel-keys.js';
import { CancelRouter, type CancelOutcome } from './cancel-routing.js';
import type { RouterConfig } from './config.js';
import type { HostPort } from './listen-address.js';
import { countCancel, type RouterMetrics } from './metrics.js';
import type { RouteEntry, RouterPeerEntry } from './route.js';
import { AuthThrottle } from './auth-throttle.js';
import type { BackendTlsPolicy } from './backend-tls.js';
import { RouterServer } from './router-server.js';
import { SessionPool } from './session-pool.js';
import { Gate, type TenantSlots } from './tenant-connections.js';
import type { BackendFailureNote } from './backend-failure-report.js';
import type { TenantWaker } from './tenant-waker.js';
import { TlsCredentials } from './tls-credentials.js';

/** What the data plane is built from. */
export interface DataPlaneOptions {
  config: RouterConfig;
  log: Logger;
  metrics: RouterMetrics;
  keys: CancelKeys;
  lookup(tenantId: string): RouteEntry | undefined;
  /** The SCRAM verifier of a tenant's user (route cache). */
  verifierOf(tenantId: string, user: string): string | undefined;
  /** TLS to instances: whether the fleet wants it, and the CA to verify them with. */
  instanceTls?: BackendTlsPolicy;
  /** Secret for the mock salts of unknown users: derived from the cancel secret, the same in every worker. */
  mockSecret: Buffer;
  peers(): readonly RouterPeerEntry[];
  tenants: TenantSlots;
  /** Startups allowed at once in this process. */
  maxStartups: number;
  /** Pooled server connections allowed in this process. */
  poolMaxBackends: number;
  relayToWorker?: (worker: number, processId: number, secretKey: Buffer) => Promise<CancelOutcome>;
  /** Wakes suspended tenants for held clients; undefined = their clients are refused at once. */
  waker?: TenantWaker;
  /** Told of refused or timed-out connects to instances (reported to the coordinator). */
  onBackendFailure?: (failure: BackendFailureNote) => void;
}

/** A listening data plane. */
export interface DataPlane {
  readonly server: RouterServer;
  readonly cancels: CancelRouter;
  readonly listen: HostPort;
  readonly cancelBound: HostPort;
  readonly pool: SessionPool;
  /** The certificate in use, when TLS is configured. */
  readonly tls: TlsCredentials | undefined;
  /**
   * Re-reads the certificate files for new handshakes (open connections keep theirs). A bad file
   * keeps the previous certificate; the outcome is counted and logged either way.
   */
  reloadTls(): 'ok' | 'error' | 'no-tls';
}

/** Builds the data plane and starts its listeners (cancel listener first, as peers learn it from the feed). */
export async function startDataPlane(o: DataPlaneOptions): Promise<DataPlane> {
  const { config, log, metrics, keys } = o;
  const tls = config.tlsCert && config.tlsKey ? new TlsCredentials(config.tlsCert, config.tlsKey) : undefined;
  const cancels = new CancelRouter({
    keys,
    routerId: config.routerId,
    sharedSecret: config.cancelSecret !== undefined,
    peers: o.peers,
    log: log.child({ component: 'cancel' }),
    timeoutMs: config.backendConnectTimeout,
    onOutcome: (outcome) => countCancel(metrics, outcome),
    ...(o.relayToWorker ? { relayToWorker: o.relayToWorker } : {}),
  });
  const pool = new SessionPool({
    perKey: config.poolSize,
    maxTotal: o.poolMaxBackends,
    idleTimeoutMs: config.poolIdleTimeout,
    waitTimeoutMs: config.poolWaitTimeout,
    resetTimeoutMs: config.poolResetTimeout,
    lookup: o.lookup,
    verifierOf: (tenantId, user) => o.verifierOf(tenantId, user),
    metrics,
  });
  const server = new RouterServer({
    // The per-connection line has fixed fields, none of them a secret (the router never sees a
    // password: authentication passes through as bytes), so it skips the redaction walk that
    // measured 4% of the router's work per connection.
    log: log.child({ component: 'connection' }, { redact: [] }),
    metrics,
    handshake: { tls, tlsRequire: config.tlsRequire },
    routing: { lookup: o.lookup, order: config.routingOrder, sniDomain: config.sniDomain, wakes: o.waker !== undefined },
    ...(o.waker ? { wake: { waker: o.waker, lookup: o.lookup, timeoutMs: config.wakeTimeout } } : {}),
    backend: {
      timeoutMs: config.backendConnectTimeout,
      retries: config.backendRetries,
      routeChangeWaitMs: config.routeChangeWait,
      holdTimeoutMs: config.holdTimeout,
      ...(o.instanceTls ? { tls: o.instanceTls } : {}),
      onTls: (result) => metrics.backendTls.inc({ result }),
      ...(o.onBackendFailure ? { onConnectFailed: o.onBackendFailure } : {}),
    },
    keys,
    cancels,
    tenants: o.tenants,
    startups: new Gate(o.maxStartups),
    startupTimeoutMs: config.startupTimeout,
    authTimeoutMs: config.authTimeout,
    holdTimeoutMs: config.holdTimeout,
    pooled: {
      pool,
      verifierOf: (tenantId, user) => o.verifierOf(tenantId, user),
      mockSecret: o.mockSecret,
      throttle: new AuthThrottle({ limit: config.authFailureLimit, windowMs: config.authFailureWindow }),
      waitTimeoutMs: config.poolWaitTimeout,
      loginTimeoutMs: config.authTimeout,
      statementsPerServer: config.poolPreparedStatements,
    },
  });
  const cancelBound = await server.listenForCancels(config.cancelListen, cancels);
  const listen = await server.listen(config.listen);
  const reloadTls = (): 'ok' | 'error' | 'no-tls' => {
    if (!tls) return 'no-tls';
    try {
      tls.reload();
      metrics.tlsReloads.inc({ result: 'ok' });
      log.info({ cert: config.tlsCert }, 'TLS certificate reloaded');
      return 'ok';
    } catch (err) {
      metrics.tlsReloads.inc({ result: 'error' });
      log.error({ err, cert: config.tlsCert }, 'TLS certificate reload failed; keeping the previous one');
      return 'error';
    }
  };
  return { server, cancels, listen, cancelBound, pool, tls, reloadTls };
}
