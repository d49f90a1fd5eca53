// One client connection from accept to close: handshake, routing, backend connect, startup relay,
// passthrough, and the one summary log line. Nothing here may throw out: every failure becomes a
// refusal the client can read, or a closed socket, and a log line.
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type tls from 'node:tls';
import type { Logger } from '@pgs/service-kit';
import type { RoutingDecision } from '@pgs/tenancy';
import { PgError, SqlState, startupError } from '@pgs/wire-protocol';
import { serveAuthenticatedPassthrough } from './authenticated-passthrough.js';
import { connectBackend, type BackendConnectOptions } from './backend-connect.js';
import type { CancelKeys, IssuedKey } from './cancel-keys.js';
import type { CancelRouter } from './cancel-routing.js';
import { Handshake, type HandshakeOptions, type HandshakeResult } from './handshake.js';
import { countRefusal, type RouterMetrics } from './metrics.js';
import { Link } from './passthrough.js';
import { servePooled, TransactionHandOff, type PooledClient, type PooledDeps, type PooledOutcome } from './pooled-session.js';
import { refuse, RouterRefusal } from './refusal.js';
import { holdUntilServed, isHeld } from './route-hold.js';
import type { RouteEntry } from './route.js';
import { checkRoutable, routeStartup, startupForBackend, type RoutingContext } from './routing.js';
import { relayStartup } from './startup-relay.js';
import type { TransactionEnd, TransactionEndListener } from './transaction-link.js';
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

/** Where a client socket's 'error' listener, one function for every connection, finds its connection. */
const CONNECTION = Symbol('client connection');
type OwnedSocket = net.Socket & { [CONNECTION]?: ClientConnection };

// Errors on the client socket end the connection; they must never reach the process.
function onClientSocketError(this: OwnedSocket, err: Error): void {
  this[CONNECTION]?.socketError(err);
}

/**
 * Serves one accepted socket to completion and returns the handle that cuts it (graceful
 * shutdown); `closed(connId)` runs once the connection is fully closed and logged.
 */
export function serveConnection(socket: net.Socket, connId: number, deps: ConnectionDeps, closed: (connId: number) => void): ConnectionHandle {
  const conn = new ClientConnection(socket, connId, deps, closed);
  conn.serve();
  return conn;
}

/**
 * One connection's state, in the fields of one object with its steps as methods: a pooled client
 * may stay idle for hours, and closures over a whole serving function's scope (its refusal and
 * timeout callbacks, the shutdown handle) kept that scope (startup packet, handshake, routing
 * decision...) for the client's lifetime. After a pooled client is handed to its session the
 * serving frame ends; what stays is this object (the log line's fields, the shutdown handle).
 */
class ClientConnection implements ConnectionHandle, TransactionEndListener {
  readonly #deps: ConnectionDeps;
  readonly #started = performance.now();
  readonly #summary: Summary;
  readonly #closed: (connId: number) => void;
  /** Until it has run: it names the client's transport (the TCP socket, then the TLS one). */
  #handshake: Handshake | undefined;
  /** The transport the handshake ended on: an idle client keeps this, not the handshake. */
  #transport: net.Socket;
  #link: Link | undefined;
  #lent: { destroy(): void } | undefined;
  #issued: IssuedKey | undefined;
  #tenantHeld: string | undefined;
  #startupHeld = false;
  #timedOut = false;
  #timer: NodeJS.Timeout | undefined;
  #handOff: TransactionHandOff | undefined;

  constructor(socket: net.Socket, connId: number, deps: ConnectionDeps, closed: (connId: number) => void) {
    this.#deps = deps;
    this.#closed = closed;
    this.#handshake = new Handshake(socket, deps.handshake);
    this.#transport = socket;
    this.#summary = {
      connId,
      client: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
      tls: false,
      outcome: 'closed',
      bytesIn: 0,
      bytesOut: 0,
      durationMs: 0,
    };
    deps.metrics.accepted.inc();
    deps.metrics.active.inc();
    socket.setNoDelay(true);
    (socket as OwnedSocket)[CONNECTION] = this;
    socket.on('error', onClientSocketError);
  }

  /** The client's transport now: the TCP socket, then the TLS socket once negotiated. */
  get #socket(): net.Socket {
    return this.#handshake?.socket ?? this.#transport;
  }

  destroy(): void {
    if (this.#lent) this.#lent.destroy();
    else if (this.#link) this.#link.destroy();
    else this.#socket.destroy();
  }

  socketError(err: Error): void {
    this.#summary.reason ??= `client socket: ${err.message}`;
  }

  /** Runs the connection; a pooled client's session goes on after #run returns (its end is awaited here, not in #run's frame). */
  serve(): void {
    this.#run().then(
      (handedOff) => {
        if (handedOff) this.#whenServed(handedOff.served);
        else this.#finish();
      },
      (err: unknown) => this.#finish(err),
    );
  }

  #whenServed(served: Promise<PooledOutcome | TransactionHandOff>): void {
    served.then(
      (out) => {
        if (out instanceof TransactionHandOff) this.#whenEnded(out);
        else this.#finishWith(out);
      },
      (err: unknown) => this.#finish(err),
    );
  }

  /** A transaction-mode client may stay idle for hours: what waits for its end is this object, as its session's listener. */
  #whenEnded(handOff: TransactionHandOff): void {
    this.#handOff = handOff;
    handOff.session.whenEnded(this);
  }

  transactionEnded(end: TransactionEnd): void {
    const handOff = this.#handOff!;
    this.#handOff = undefined;
    this.#finishWith(handOff.outcome(end));
  }

  #finishWith(out: PooledOutcome): void {
    if (!this.#timedOut) Object.assign(this.#summary, out);
    this.#finish();
  }

  #refuseWith(r: RouterRefusal): void {
    const summary = this.#summary;
    countRefusal(this.#deps.metrics, r.reason);
    summary.outcome = 'refused';
    summary.reason = r.reason;
    summary.sqlstate = r.code;
    // Told or not, the log line has what PostgreSQL would have logged.
    if (!r.tellClient) summary.error = r.message;
    sendRefusal(this.#socket, r.tellClient ? r.replyBytes() : null);
  }

  #cutOff(r: RouterRefusal): void {
    this.#timedOut = true;
    this.#refuseWith(r);
    this.#link?.destroyServer();
  }

  #startTimer(r: () => RouterRefusal, ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#cutOff(r()), ms);
  }

  /** True once the auth timeout cut the connection, or the client left. */
  #abandoned(): boolean {
    return this.#timedOut || this.#socket.destroyed;
  }

  /** The startup phase is over: the client is ready for queries. */
  #ready(): void {
    clearTimeout(this.#timer);
    // The cleared timer (and the closure it holds) is not kept for the client's lifetime.
    this.#timer = undefined;
    this.#deps.startups.release();
    this.#startupHeld = false;
    this.#deps.metrics.startupSeconds.observe((performance.now() - this.#started) / 1000);
  }

  /** A suspended tenant is woken for the client, which is held meanwhile. */
  async #holdIfSuspended(route: RouteEntry): Promise<RouteEntry> {
    const wake = this.#deps.wake;
    return route.state === 'SUSPENDED' && wake ? holdForWake(route, { ...wake, metrics: this.#deps.metrics }, () => this.#abandoned()) : route;
  }

  /**
   * The client as the pooled paths see it. Made here, not in #run: its callbacks keep this
   * connection only, not #run's locals.
   */
  #pooledClient(
    result: Extract<HandshakeResult, { kind: 'startup' }>,
    decision: RoutingDecision,
    route: RouteEntry,
    tlsSocket: tls.TLSSocket | undefined,
    wakes: boolean,
  ): PooledClient {
    return {
      socket: this.#socket,
      tlsSocket,
      pipelined: result.pipelined,
      packet: result.packet,
      decision,
      route,
      awaitRoutable: wakes ? () => this.#holdIfSuspended(route) : undefined,
      expired: () => this.#timedOut,
      ready: () => this.#ready(),
      lent: (session) => (this.#lent = session),
    };
  }

  /**
   * From the handshake to the end of a passthrough session; a pooled client is handed off (its
   * session's outcome, to await outside this frame) once it is served.
   */
  async #run(): Promise<{ served: Promise<PooledOutcome | TransactionHandOff> } | undefined> {
    const deps = this.#deps;
    const { metrics } = deps;
    const summary = this.#summary;
    if (!deps.startups.tryAcquire()) {
      this.#refuseWith(refuse.tooManyStartups(deps.startups.limit));
      return undefined;
    }
    this.#startupHeld = true;
    // Before the startup packet PostgreSQL's authentication_timeout just exits: no word to the client.
    this.#startTimer(() => refuse.startupTimeout(deps.startupTimeoutMs, false), deps.startupTimeoutMs);

    const handshake = this.#handshake!;
    const result = await handshake.run();
    this.#transport = handshake.socket;
    this.#handshake = undefined;
    summary.tls = handshake.tls !== undefined;
    if (handshake.tls?.servername) summary.sni = handshake.tls.servername;
    if (this.#timedOut) return undefined;
    if (result.kind === 'closed') {
      summary.outcome = 'client_closed_during_startup';
      // PostgreSQL logs this one (COMMERROR); a close before any byte it does not.
      if (result.incomplete) summary.error = startupError.incomplete().message;
      this.#socket.destroy();
      return undefined;
    }
    if (result.kind === 'cancel') {
      clearTimeout(this.#timer);
      summary.outcome = 'cancel_request';
      // PostgreSQL answers a CancelRequest by closing the connection, whatever became of it.
      this.#socket.destroy();
      summary.cancel = await deps.cancels.handle(result.processId, result.secretKey, false);
      return undefined;
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
    metrics.handshakeSeconds.observe((performance.now() - this.#started) / 1000);
    summary.tenantId = decision.tenantId;
    summary.source = decision.source;
    summary.user = decision.user;
    const appName = result.packet.parameters.get('application_name');
    if (appName) summary.applicationName = appName.slice(0, 64);
    // Synchronous in one process; with --workers a limited tenant's slot is asked of the primary.
    const slot = deps.tenants.acquire(route.tenantId, route.connectionLimit);
    if (!(typeof slot === 'boolean' ? slot : await slot)) throw refuse.connectionLimit(route.tenantId, route.connectionLimit);
    this.#tenantHeld = route.tenantId;

    // From here the whole start (connect + authentication) must finish within the auth timeout.
    const remaining = Math.max(1, deps.authTimeoutMs - (performance.now() - this.#started));
    this.#startTimer(() => refuse.startupTimeout(deps.authTimeoutMs), remaining);

    if (isHeld(route)) {
      // A switch in progress: the client waits for the new instance instead of failing.
      const heldAt = performance.now();
      route = await holdUntilServed(route, { lookup: deps.routing.lookup, timeoutMs: deps.holdTimeoutMs, abandoned: () => this.#abandoned() });
      summary.heldMs = Math.round(performance.now() - heldAt);
      if (this.#timedOut) return undefined;
      checkRoutable(route);
    }
    // A suspended tenant is woken for the client, which is held meanwhile: after authentication
    // where the router authenticates (an unauthenticated client wakes nothing), else right here.
    const tlsSocket = handshake.tls ? (this.#socket as tls.TLSSocket) : undefined;

    // Pooled modes: the router authenticates and lends a pooled server connection. Replication
    // connections are never pooled: they pass through to a server of their own.
    if (route.poolMode !== 'NONE' && !result.packet.parameters.has('replication')) {
      const c = this.#pooledClient(result, decision, route, tlsSocket, route.state === 'SUSPENDED');
      return { served: servePooled(c, pooledDepsOf(deps)) };
    }

    route = await this.#holdIfSuspended(route);
    if (this.#timedOut) return undefined;

    // A TLS client of a passthrough tenant whose instance is reached over TLS too: its SCRAM cannot
    // pass through (channel binding names the router's certificate), so the router authenticates it
    // (authenticated-passthrough.ts). Users the router does not know still pass through as bytes.
    if (
      tlsSocket &&
      deps.backend.tls?.enabled() &&
      !result.packet.parameters.has('replication') &&
      deps.pooled.verifierOf(route.tenantId, decision.user) !== undefined
    ) {
      // A suspended tenant was woken above, before this path's authentication.
      const c = this.#pooledClient(result, decision, route, tlsSocket, false);
      return { served: serveAuthenticatedPassthrough(c, pooledDepsOf(deps)) };
    }

    const connectStart = performance.now();
    const backend = await connectBackend(route, { ...deps.backend, lookup: deps.routing.lookup });
    metrics.backendConnectSeconds.observe((performance.now() - connectStart) / 1000);
    summary.backend = `${backend.route.address}:${backend.route.port}`;
    if (this.#abandoned()) {
      backend.socket.destroy();
      if (!this.#timedOut) summary.outcome = 'client_closed_during_startup';
      return undefined;
    }
    const server = backend.socket;
    server.write(startupForBackend(result.packet, decision));
    if (result.pipelined.length > 0) server.write(result.pipelined);
    const link = (this.#link = new Link(this.#socket, server));
    const tenantId = backend.route.tenantId;
    let relay;
    try {
      relay = await relayStartup(
        this.#socket,
        server,
        (processId, secretKey) => {
          this.#issued = deps.keys.issue({ processId, secretKey, host: backend.route.address, port: backend.route.port, tenantId });
          return this.#issued;
        },
        // A plaintext client must not be offered the channel binding of the router's TLS leg.
        { withoutChannelBinding: tlsSocket === undefined },
      );
    } catch (err) {
      // The server broke the protocol during startup: not the client's fault, tell it so.
      summary.outcome = 'server_protocol_error';
      summary.reason = (err as Error).message;
      link.destroy();
      await link.closed;
      return undefined;
    }
    clearTimeout(this.#timer);
    deps.startups.release();
    this.#startupHeld = false;
    if (this.#timedOut) {
      await link.closed;
      return undefined;
    }
    if (relay.kind === 'ready') {
      metrics.startupSeconds.observe((performance.now() - this.#started) / 1000);
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
    return undefined;
  }

  /** A refusal the client is told (unless the auth timeout already told it), or a bug: XX000. */
  #failed(err: unknown): void {
    const summary = this.#summary;
    if (err instanceof RouterRefusal) {
      if (!this.#timedOut) this.#refuseWith(err);
      if (err.reason === 'backend_unreachable') summary.reason = `backend_unreachable: ${(err.cause as Error | undefined)?.message ?? ''}`;
      return;
    }
    // A bug: the client gets XX000 with the connection id the log line also has.
    this.#deps.log.error({ err, connId: summary.connId }, 'internal error while serving a connection');
    summary.outcome = 'internal_error';
    summary.sqlstate = SqlState.InternalError;
    sendRefusal(this.#socket, new PgError({ code: SqlState.InternalError, message: `internal error (connection ${summary.connId})` }).toErrorResponse());
  }

  /** Gives back what the connection held, counts and logs it; `err`: it ended by a refusal or a bug. Never throws. */
  #finish(err?: unknown): void {
    const deps = this.#deps;
    const summary = this.#summary;
    try {
      if (err !== undefined) this.#failed(err);
      clearTimeout(this.#timer);
      if (this.#startupHeld) deps.startups.release();
      if (this.#tenantHeld !== undefined) deps.tenants.release(this.#tenantHeld);
      if (this.#issued) deps.keys.release(this.#issued);
      deps.metrics.active.dec();
      if (summary.bytesIn > 0) deps.metrics.bytes.inc({ direction: 'client_to_server' }, summary.bytesIn);
      if (summary.bytesOut > 0) deps.metrics.bytes.inc({ direction: 'server_to_client' }, summary.bytesOut);
      summary.durationMs = Math.round(performance.now() - this.#started);
      deps.log.info(summary, 'connection closed');
    } catch (bug) {
      // The last guard: nothing of a connection's end may reach the process.
      deps.log.error({ err: bug, connId: summary.connId }, 'connection handler failed');
      this.#socket.destroy();
    } finally {
      this.#closed(summary.connId);
    }
  }
}
