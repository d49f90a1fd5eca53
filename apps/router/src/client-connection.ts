// One client connection from accept to close: handshake, routing, backend connect, startup relay,
// passthrough, and the one summary log line. Nothing here may throw out: every failure becomes a
// refusal the client can read, or a closed socket, and a log line.
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type tls from 'node:tls';
import type { Logger } from '@pgs/service-kit';
import { PgError, SqlState, startupError } from '@pgs/wire-protocol';
import { serveAuthenticatedPassthrough } from './authenticated-passthrough.js';
import { connectBackend, type BackendConnectOptions } from './backend-connect.js';
import type { CancelKeys, IssuedKey } from './cancel-keys.js';
import type { CancelRouter } from './cancel-routing.js';
import { Handshake, type HandshakeOptions } from './handshake.js';
import { countRefusal, type RouterMetrics } from './metrics.js';
import { Link } from './passthrough.js';
import { servePooled, type PooledDeps } from './pooled-session.js';
import { refuse, RouterRefusal } from './refusal.js';
import { holdUntilServed, isHeld } from './route-hold.js';
import { checkRoutable, routeStartup, startupForBackend, type RoutingContext } from './routing.js';
import { relayStartup } from './startup-relay.js';
import type { Gate, TenantSlots } from './tenant-connections.js';
import { holdForWake, type WakeHoldDeps } from './wake-hold.js';

/** What every connection shares. */
export interface ConnectionDeps {
  log: Logger;
  metrics: RouterMetrics;
  handshake: HandshakeOptions;
  routing: RoutingContext;
  backend: Omit<BackendConnectOptions, 'lookup'>;
  keys: CancelKeys;
  cancels: CancelRouter;
  tenants: TenantSlots;
  /** Bounds connections that are not yet authenticated. */
  startups: Gate;
  startupTimeoutMs: number;
  authTimeoutMs: number;
  /** How long a client waits while its tenant switches to another instance (then 57P03). */
  holdTimeoutMs: number;
  /** Authentication and pooling at the router, for routes whose pool mode is not NONE. */
  pooled: Omit<PooledDeps, 'keys' | 'metrics' | 'connect' | 'holdTimeoutMs'>;
  /** Waking suspended tenants; undefined = their clients are refused (57P03, retry). */
  wake?: Omit<WakeHoldDeps, 'metrics'>;
}

/** The fields of the per-connection summary line. */
interface Summary {
  connId: number;
  client: string;
  tls: boolean;
  sni?: string;
  tenantId?: string;
  source?: string;
  user?: string;
  applicationName?: string;
  backend?: string;
  /** Pooled modes: the server process lent (first, in transaction mode), whether it was reused, transactions served. */
  backendPid?: number;
  reused?: boolean;
  transactions?: number;
  /** Session mode: times the client was carried to its tenant's new instance. */
  carried?: number;
  outcome: string;
  sqlstate?: string;
  reason?: string;
  /** The message of a refusal the client was not told (PostgreSQL only logs those). */
  error?: string;
  cancel?: string;
  /** How long the client was held while its tenant switched instances. */
  heldMs?: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
}

/** A handle the server keeps to cut a connection at the shutdown deadline. */
export interface ConnectionHandle {
  destroy(): void;
}

/**
 * What pooled connections need, made once per ConnectionDeps: a copy per connection would be
 * work at every login and memory every open client's closures keep.
 */
const pooledDeps = new WeakMap<ConnectionDeps, PooledDeps>();
function pooledDepsOf(deps: ConnectionDeps): PooledDeps {
  let made = pooledDeps.get(deps);
  if (!made) {
    made = {
      ...deps.pooled,
      keys: deps.keys,
      metrics: deps.metrics,
      connect: { ...deps.backend, lookup: deps.routing.lookup },
      holdTimeoutMs: deps.holdTimeoutMs,
    };
    pooledDeps.set(deps, made);
  }
  return made;
}

/** Sends the refusal bytes (null: close without a word, as PostgreSQL does in some cases) and closes; never throws. */
function sendRefusal(socket: net.Socket, reply: Buffer | null): void {
  if (socket.destroyed) return;
  if (reply && socket.writable) socket.end(reply);
  else socket.destroy();
  // A client that never reads our error must not hold the socket open.
  setTimeout(() => socket.destroy(), 2000).unref();
}

/**
 * Serves one accepted socket to completion. `track` receives a handle to cut the connection
 * (graceful shutdown); the returned promise resolves when the connection is fully closed.
 */
export async function serveConnection(socket: net.Socket, connId: number, deps: ConnectionDeps, track: (h: ConnectionHandle) => void): Promise<void> {
  const started = performance.now();
  const { metrics, log } = deps;
  metrics.accepted.inc();
  metrics.active.inc();
  const summary: Summary = {
    connId,
    client: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
    tls: false,
    outcome: 'closed',
    bytesIn: 0,
    bytesOut: 0,
    durationMs: 0,
  };
  socket.setNoDelay(true);
  // Errors on the client socket end the connection; they must never reach the process.
  socket.on('error', (err) => {
    summary.reason ??= `client socket: ${err.message}`;
  });

  const handshake = new Handshake(socket, deps.handshake);
  let link: Link | undefined;
  let lent: { destroy(): void } | undefined;
  let issued: IssuedKey | undefined;
  let tenantHeld: string | undefined;
  let startupHeld = false;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;

  track({ destroy: () => (lent ? lent.destroy() : link ? link.destroy() : handshake.socket.destroy()) });

  const refuseWith = (r: RouterRefusal): void => {
    countRefusal(metrics, r.reason);
    summary.outcome = 'refused';
    summary.reason = r.reason;
    summary.sqlstate = r.code;
    // Told or not, the log line has what PostgreSQL would have logged.
    if (!r.tellClient) summary.error = r.message;
    sendRefusal(handshake.socket, r.tellClient ? r.replyBytes() : null);
  };

  try {
    if (!deps.startups.tryAcquire()) {
      refuseWith(refuse.tooManyStartups(deps.startups.limit));
      return;
    }
    startupHeld = true;
    const cutOff = (r: RouterRefusal): void => {
      timedOut = true;
      refuseWith(r);
      link?.destroyServer();
    };
    // Before the startup packet PostgreSQL's authentication_timeout just exits: no word to the client.
    timer = setTimeout(() => cutOff(refuse.startupTimeout(deps.startupTimeoutMs, false)), deps.startupTimeoutMs);

    const result = await handshake.run();
    summary.tls = handshake.tls !== undefined;
    if (handshake.tls?.servername) summary.sni = handshake.tls.servername;
    if (timedOut) return;
    if (result.kind === 'closed') {
      summary.outcome = 'client_closed_during_startup';
      // PostgreSQL logs this one (COMMERROR); a close before any byte it does not.
      if (result.incomplete) summary.error = startupError.incomplete().message;
      handshake.socket.destroy();
      return;
    }
    if (result.kind === 'cancel') {
      clearTimeout(timer);
      summary.outcome = 'cancel_request';
      // PostgreSQL answers a CancelRequest by closing the connection, whatever became of it.
      handshake.socket.destroy();
      summary.cancel = await deps.cancels.handle(result.processId, result.secretKey, false);
      return;
    }

    let routed;
    try {
      routed = routeStartup(result.packet, handshake.tls?.servername, deps.routing);
    } finally {
      // The router's own part of the handshake, refusals included: no client or network time in it.
      metrics.routingSeconds.observe((performance.now() - result.receivedAt) / 1000);
    }
    const { decision } = routed;
    let route = routed.route;
    metrics.handshakeSeconds.observe((performance.now() - started) / 1000);
    summary.tenantId = decision.tenantId;
    summary.source = decision.source;
    summary.user = decision.user;
    const appName = result.packet.parameters.get('application_name');
    if (appName) summary.applicationName = appName.slice(0, 64);
    // Synchronous in one process; with --workers a limited tenant's slot is asked of the primary.
    const slot = deps.tenants.acquire(route.tenantId, route.connectionLimit);
    if (!(typeof slot === 'boolean' ? slot : await slot)) throw refuse.connectionLimit(route.tenantId, route.connectionLimit);
    tenantHeld = route.tenantId;

    // From here the whole start (connect + authentication) must finish within the auth timeout.
    clearTimeout(timer);
    const remaining = Math.max(1, deps.authTimeoutMs - (performance.now() - started));
    timer = setTimeout(() => cutOff(refuse.startupTimeout(deps.authTimeoutMs)), remaining);

    if (isHeld(route)) {
      // A switch in progress: the client waits for the new instance instead of failing.
      const heldAt = performance.now();
      route = await holdUntilServed(route, {
        lookup: deps.routing.lookup,
        timeoutMs: deps.holdTimeoutMs,
        abandoned: () => timedOut || handshake.socket.destroyed,
      });
      summary.heldMs = Math.round(performance.now() - heldAt);
      if (timedOut) return;
      checkRoutable(route);
    }
    // A suspended tenant is woken for the client, which is held meanwhile: after authentication
    // where the router authenticates (an unauthenticated client wakes nothing), else right here.
    const wake = deps.wake;
    const holdIfSuspended = async (r: typeof route): Promise<typeof route> =>
      r.state === 'SUSPENDED' && wake ? holdForWake(r, { ...wake, metrics }, () => timedOut || handshake.socket.destroyed) : r;

    // Pooled modes: the router authenticates and lends a pooled server connection. Replication
    // connections are never pooled: they pass through to a server of their own.
    if (route.poolMode !== 'NONE' && !result.packet.parameters.has('replication')) {
      const out = await servePooled(
        {
          socket: handshake.socket,
          tlsSocket: handshake.tls ? (handshake.socket as tls.TLSSocket) : undefined,
          pipelined: result.pipelined,
          packet: result.packet,
          decision,
          route,
          awaitRoutable: route.state === 'SUSPENDED' ? () => holdIfSuspended(route) : undefined,
          expired: () => timedOut,
          ready: () => {
            clearTimeout(timer);
            // The cleared timer (and the closure it holds) is not kept for the client's lifetime.
            timer = undefined;
            deps.startups.release();
            startupHeld = false;
            metrics.startupSeconds.observe((performance.now() - started) / 1000);
          },
          lent: (session) => (lent = session),
        },
        pooledDepsOf(deps),
      );
      if (!timedOut) Object.assign(summary, out);
      return;
    }

    route = await holdIfSuspended(route);
    if (timedOut) return;

    // A TLS client of a passthrough tenant whose instance is reached over TLS too: its SCRAM cannot
    // pass through (channel binding names the router's certificate), so the router authenticates it
    // (authenticated-passthrough.ts). Users the router does not know still pass through as bytes.
    if (
      handshake.tls &&
      deps.backend.tls?.enabled() &&
      !result.packet.parameters.has('replication') &&
      deps.pooled.verifierOf(route.tenantId, decision.user) !== undefined
    ) {
      const out = await serveAuthenticatedPassthrough(
        {
          socket: handshake.socket,
          tlsSocket: handshake.socket as tls.TLSSocket,
          pipelined: result.pipelined,
          packet: result.packet,
          decision,
          route,
          // A suspended tenant was woken above, before this path's authentication.
          awaitRoutable: undefined,
          expired: () => timedOut,
          ready: () => {
            clearTimeout(timer);
            deps.startups.release();
            startupHeld = false;
            metrics.startupSeconds.observe((performance.now() - started) / 1000);
          },
          lent: (session) => (lent = session),
        },
        pooledDepsOf(deps),
      );
      if (!timedOut) Object.assign(summary, out);
      return;
    }

    const connectStart = performance.now();
    const backend = await connectBackend(route, { ...deps.backend, lookup: deps.routing.lookup });
    metrics.backendConnectSeconds.observe((performance.now() - connectStart) / 1000);
    summary.backend = `${backend.route.address}:${backend.route.port}`;
    if (timedOut || handshake.socket.destroyed) {
      backend.socket.destroy();
      if (!timedOut) summary.outcome = 'client_closed_during_startup';
      return;
    }
    const server = backend.socket;
    server.write(startupForBackend(result.packet, decision));
    if (result.pipelined.length > 0) server.write(result.pipelined);
    link = new Link(handshake.socket, server);
    const tenantId = backend.route.tenantId;
    let relay;
    try {
      relay = await relayStartup(
        handshake.socket,
        server,
        (processId, secretKey) => {
          issued = deps.keys.issue({ processId, secretKey, host: backend.route.address, port: backend.route.port, tenantId });
          return issued;
        },
        // A plaintext client must not be offered the channel binding of the router's TLS leg.
        { withoutChannelBinding: handshake.tls === undefined },
      );
    } catch (err) {
      // The server broke the protocol during startup: not the client's fault, tell it so.
      summary.outcome = 'server_protocol_error';
      summary.reason = (err as Error).message;
      link.destroy();
      await link.closed;
      return;
    }
    clearTimeout(timer);
    deps.startups.release();
    startupHeld = false;
    if (timedOut) {
      await link.closed;
      return;
    }
    if (relay.kind === 'ready') {
      metrics.startupSeconds.observe((performance.now() - started) / 1000);
      link.open(relay.leftover);
      summary.outcome = 'closed';
    } else if (relay.kind === 'server_error') {
      summary.outcome = 'server_refused';
      summary.sqlstate = relay.error.code;
    } else {
      summary.outcome = 'server_closed_during_startup';
    }
    const end = await link.closed;
    if (summary.outcome === 'closed') summary.outcome = `closed_by_${end.closedBy}`;
    if (end.serverError) summary.reason ??= `server socket: ${end.serverError.message}`;
    summary.bytesIn = server.bytesWritten;
    summary.bytesOut = server.bytesRead;
  } catch (err) {
    if (err instanceof RouterRefusal) {
      if (!timedOut) refuseWith(err);
      if (err.reason === 'backend_unreachable') summary.reason = `backend_unreachable: ${(err.cause as Error | undefined)?.message ?? ''}`;
    } else {
      // A bug: the client gets XX000 with the connection id the log line also has.
      log.error({ err, connId }, 'internal error while serving a connection');
      summary.outcome = 'internal_error';
      summary.sqlstate = SqlState.InternalError;
      sendRefusal(handshake.socket, new PgError({ code: SqlState.InternalError, message: `internal error (connection ${connId})` }).toErrorResponse());
    }
  } finally {
    clearTimeout(timer);
    if (startupHeld) deps.startups.release();
    if (tenantHeld !== undefined) deps.tenants.release(tenantHeld);
    if (issued) deps.keys.release(issued);
    metrics.active.dec();
    if (summary.bytesIn > 0) metrics.bytes.inc({ direction: 'client_to_server' }, summary.bytesIn);
    if (summary.bytesOut > 0) metrics.bytes.inc({ direction: 'server_to_client' }, summary.bytesOut);
    summary.durationMs = Math.round(performance.now() - started);
    log.info(summary, 'connection closed');
  }
}
