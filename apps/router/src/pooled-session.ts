// One client in a pooled mode: authenticated by the router (SCRAM against the route's verifier),
// then served by a pooled server connection logged in with the client's ClientKey. The client
// sees what a direct connection shows: AuthenticationOk, the server's ParameterStatus set, a
// cancel key (the router's, standing for the lent connection's own), ReadyForQuery.
import type net from 'node:net';
import type tls from 'node:tls';
import type { RoutingDecision } from '@pgs/tenancy';
import { encodeBackendKeyData, encodeErrorResponse, encodeParameterStatus, encodeReadyForQuery, PgError, SqlState, type ErrorFields } from '@pgs/wire-protocol';
import type { BackendConnectOptions } from './backend-connect.js';
import { loginBackend, verifierParts, type BackendSession } from './backend-login.js';
import { PoolTimeoutError } from './backend-pool.js';
import type { AuthThrottle } from './auth-throttle.js';
import type { CancelKeys, RealCancelTarget } from './cancel-keys.js';
import { ClientReader } from './client-reader.js';
import { authenticateClient } from './edge-auth.js';
import type { RouterMetrics } from './metrics.js';
import { refuse } from './refusal.js';
import type { RouteEntry } from './route.js';
import { startupForBackend, type StartupMessage } from './routing.js';
import { lendSession } from './session-link.js';
import { SessionPool, type Acquired } from './session-pool.js';
import { serveTransactions, type TransactionPool } from './transaction-link.js';

/** What every pooled connection shares. */
export interface PooledDeps {
  pool: SessionPool;
  /** The verifier of a tenant's user in the route cache. */
  verifierOf(tenantId: string, user: string): string | undefined;
  /** Secret the mock salts of unknown users derive from. */
  mockSecret: Buffer;
  throttle: AuthThrottle;
  keys: CancelKeys;
  metrics: RouterMetrics;
  connect: BackendConnectOptions;
  waitTimeoutMs: number;
  loginTimeoutMs: number;
  /** Transaction mode: named statements each server connection keeps prepared. */
  statementsPerServer: number;
}

/** One client's part. */
export interface PooledClient {
  socket: net.Socket;
  tlsSocket: tls.TLSSocket | undefined;
  pipelined: Buffer;
  packet: StartupMessage;
  decision: RoutingDecision;
  route: RouteEntry;
  /** Set for a suspended tenant: after authentication, waits until it is routable (its route then). */
  awaitRoutable: (() => Promise<RouteEntry>) | undefined;
  /** True once the auth timeout cut the connection. */
  expired(): boolean;
  /** The client is ready for queries: the startup phase is over. */
  ready(): void;
  /** Where to leave the handle that cuts the lent session at shutdown. */
  lent(session: { destroy(): void }): void;
}

/** For the connection's log line. */
export interface PooledOutcome {
  outcome: string;
  backend?: string;
  backendPid?: number;
  reused?: boolean;
  /** Transaction mode: transactions served. */
  transactions?: number;
  sqlstate?: string;
  bytesIn: number;
  bytesOut: number;
}

/** Serves one client to its end; throws RouterRefusal for refusals (the caller tells the client). */
export async function servePooled(c: PooledClient, deps: PooledDeps): Promise<PooledOutcome> {
  const { decision, packet } = c;
  let route = c.route;
  const user = decision.user;
  const throttleKey = `${route.tenantId}\0${user}`;
  const blocked = deps.throttle.blockedFor(throttleKey, Date.now());
  if (blocked > 0) {
    deps.metrics.authFailures.inc({ reason: 'throttled' });
    throw refuse.authThrottled(user, blocked);
  }
  const verifier = verifierParts(deps.verifierOf(route.tenantId, user));
  const reader = new ClientReader(c.socket, c.pipelined);
  let auth;
  try {
    auth = await authenticateClient(reader, (b) => c.socket.write(b), { user, verifier, mockSecret: deps.mockSecret, tlsSocket: c.tlsSocket });
  } catch (err) {
    deps.metrics.authFailures.inc({ reason: 'protocol' });
    throw err;
  }
  if (auth.kind === 'closed') return { outcome: 'client_closed_during_auth', bytesIn: 0, bytesOut: 0 };
  if (auth.kind === 'failed') {
    deps.throttle.fail(throttleKey, Date.now());
    deps.metrics.authFailures.inc({ reason: verifier ? 'wrong_password' : 'unknown_user' });
    throw refuse.authFailed(user);
  }
  if (c.expired()) return { outcome: 'startup_timeout', bytesIn: 0, bytesOut: 0 };
  if (c.awaitRoutable) {
    route = await c.awaitRoutable();
    if (c.expired()) return { outcome: 'startup_timeout', bytesIn: 0, bytesOut: 0 };
  }

  // libpq's rule: no database means the user's name.
  const database = decision.database ?? packet.parameters.get('database') ?? user;
  const key = SessionPool.key(route.tenantId, user, database, packet.parameters, packet.protocol.major * 65536 + packet.protocol.minor, route.poolMode);
  const appName = packet.parameters.get('application_name') ?? '';
  const clientKey = auth.clientKey;
  // The ClientKey stays in this closure, in memory, for the client's lifetime (new server logins).
  const acquire = (): Promise<Acquired> =>
    deps.pool.acquire(key, appName, () =>
      loginBackend(route, startupForBackend(packet, decision), appName, clientKey, verifier!, { connect: deps.connect, timeoutMs: deps.loginTimeoutMs }),
    );
  let acquired;
  try {
    acquired = await acquire();
  } catch (err) {
    if (err instanceof PoolTimeoutError) throw refuse.poolWaitTimeout(route.tenantId, deps.waitTimeoutMs);
    throw err;
  }
  if (acquired.kind === 'server_error') {
    // The server's own refusal at start (no such database, too many connections...), as it said it.
    tellServerError(c.socket, acquired.fields);
    return { outcome: 'server_refused', sqlstate: acquired.fields.code, bytesIn: 0, bytesOut: 0 };
  }
  const { backend, reused } = acquired;
  const where = { backend: `${backend.route.address}:${backend.route.port}`, backendPid: backend.processId, reused };
  if (c.expired() || c.socket.destroyed) {
    void deps.pool.release(key, backend, true);
    return { outcome: c.expired() ? 'startup_timeout' : 'client_closed_during_startup', ...where, bytesIn: 0, bytesOut: 0 };
  }

  let returned = false as boolean;
  // Reset and return in the background: the client is gone, nothing of it waits on the reset.
  const giveBack = (reusable: boolean): void => {
    if (returned) return;
    returned = true;
    void deps.pool.release(key, backend, reusable);
  };
  let issued;
  try {
    // The cancel target follows the server the client holds (transaction mode changes it).
    const target: RealCancelTarget = { processId: backend.processId, secretKey: backend.secretKey, host: backend.route.address, port: backend.route.port, tenantId: route.tenantId };
    issued = deps.keys.issue(target);
    const hello: Buffer[] = [];
    if (backend.negotiate) hello.push(backend.negotiate);
    for (const [name, value] of backend.params) hello.push(encodeParameterStatus(name, value));
    hello.push(encodeBackendKeyData(issued.processId, issued.secretKey), encodeReadyForQuery('I'));
    c.socket.write(Buffer.concat(hello));
    c.ready();
    if (route.poolMode === 'TRANSACTION') {
      // The connection that answered the login goes back at once; each transaction takes one.
      returned = true;
      target.idle = true;
      void deps.pool.release(key, backend, true, false);
      const txn = serveTransactions(c.socket, reader.takeRemainder(), transactionPool(deps, key, target, acquire, route.tenantId), refusalBytes, {
        statementsPerServer: deps.statementsPerServer,
      });
      c.lent(txn);
      const end = await txn.ended;
      return { outcome: `closed_by_${end.closedBy}`, ...where, transactions: end.transactions, bytesIn: end.bytesIn, bytesOut: end.bytesOut };
    }
    const session = lendSession(c.socket, backend.socket, reader.takeRemainder());
    c.lent(session);
    const end = await session.ended;
    giveBack(end.reusable);
    return { outcome: `closed_by_${end.closedBy}`, ...where, bytesIn: end.bytesIn, bytesOut: end.bytesOut };
  } finally {
    // Anything that went wrong before the client had the connection: the session is not trusted.
    giveBack(false);
    if (issued) deps.keys.release(issued);
  }
}

/** The pool as a transaction-mode client uses it; `target` (the client's cancel target) follows the server held. */
function transactionPool(deps: PooledDeps, key: string, target: RealCancelTarget, acquire: () => Promise<Acquired>, tenantId: string): TransactionPool {
  const hold = (b: BackendSession): void => {
    Object.assign(target, { processId: b.processId, secretKey: b.secretKey, host: b.route.address, port: b.route.port, idle: false });
  };
  return {
    acquire: async () => {
      let got;
      try {
        got = await acquire();
      } catch (err) {
        if (err instanceof PoolTimeoutError) throw refuse.poolWaitTimeout(tenantId, deps.waitTimeoutMs);
        throw err;
      }
      if (got.kind === 'server_error') throw new PgError(got.fields);
      hold(got.backend);
      return got.backend;
    },
    releaseIdle: (b) => {
      target.idle = true;
      void deps.pool.release(key, b, true, false);
    },
    releaseDirty: (b, reusable) => {
      target.idle = true;
      void deps.pool.release(key, b, reusable);
    },
    pinChanged: (pinned) => {
      if (pinned) deps.metrics.poolClientsPinned.inc();
      else deps.metrics.poolClientsPinned.dec();
    },
  };
}

/** What a transaction-mode client is told when no server could be had for its next transaction. */
function refusalBytes(err: unknown): Buffer {
  if (err instanceof PgError) return err.toErrorResponse();
  return new PgError({ code: SqlState.InternalError, message: 'internal error: no server connection for the transaction' }).toErrorResponse();
}

/** Ends the client's connection with the server's own ErrorResponse. */
function tellServerError(socket: net.Socket, fields: ErrorFields): void {
  if (!socket.destroyed) socket.end(encodeErrorResponse(fields));
}
