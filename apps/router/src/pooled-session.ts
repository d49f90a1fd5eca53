// One client in a pooled mode: authenticated by the router (SCRAM against the route's verifier),
// then served by a pooled server connection logged in with the client's ClientKey. The client
// sees what a direct connection shows: AuthenticationOk, the server's ParameterStatus set, a
// cancel key (the router's, standing for the lent connection's own), ReadyForQuery.
import type net from 'node:net';
import type tls from 'node:tls';
import type { RoutingDecision } from '@pgs/tenancy';
import { encodeBackendKeyData, encodeErrorResponse, encodeParameterStatus, encodeReadyForQuery, PgError, SqlState, type ErrorFields } from '@pgs/wire-protocol';
import type { BackendConnectOptions } from './backend-connect.js';
import type { BackendSession } from './backend-login.js';
import { PoolTimeoutError } from './backend-pool.js';
import type { AuthThrottle } from './auth-throttle.js';
import type { CancelKeys, IssuedKey, RealCancelTarget } from './cancel-keys.js';
import { loginAtEdge } from './edge-login.js';
import type { RouterMetrics } from './metrics.js';
import { refuse } from './refusal.js';
import { holdUntilServed, isHeld } from './route-hold.js';
import type { RouteEntry } from './route.js';
import { checkRoutable, startupParametersForBackend, type StartupMessage } from './routing.js';
import { ServerLogin } from './server-login.js';
import { lendCarriedSession } from './carried-session.js';
import { sessionCarrier, type CarrierDeps } from './session-carry.js';
import { SessionPool, type Acquired } from './session-pool.js';
import { serveTransactions, type TransactionEnd, type TransactionPool, type TransactionSession } from './transaction-link.js';

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
  /** How long a client's next transaction (or login) waits while its tenant switches instances. */
  holdTimeoutMs: number;
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
  /** Session mode: times the client went on on another server (its tenant moved). */
  carried?: number;
  sqlstate?: string;
  bytesIn: number;
  bytesOut: number;
}

/**
 * A transaction-mode client once it is served: its session goes on without any frame of the
 * login, and the caller listens for the session's end itself (`whenEnded`: no promise kept per
 * idle client, nor a chain of them through the login's async functions).
 */
export class TransactionHandOff {
  readonly session: TransactionSession;
  readonly #keys: CancelKeys;
  readonly #issued: IssuedKey;
  // The log line's fields, kept as fields (not an object of their own) for the client's lifetime.
  readonly #backend: string;
  readonly #backendPid: number;
  readonly #reused: boolean;

  constructor(session: TransactionSession, keys: CancelKeys, issued: IssuedKey, where: Required<Pick<PooledOutcome, 'backend' | 'backendPid' | 'reused'>>) {
    this.session = session;
    this.#keys = keys;
    this.#issued = issued;
    this.#backend = where.backend;
    this.#backendPid = where.backendPid;
    this.#reused = where.reused;
  }

  /** The outcome for the log line once the session ended; its cancel key is released. */
  outcome(end: TransactionEnd): PooledOutcome {
    this.#keys.release(this.#issued);
    return {
      outcome: `closed_by_${end.closedBy}`,
      backend: this.#backend,
      backendPid: this.#backendPid,
      reused: this.#reused,
      transactions: end.transactions,
      bytesIn: end.bytesIn,
      bytesOut: end.bytesOut,
    };
  }
}

/**
 * Serves one client: to its end (session mode, refusals, a client gone during its login), or until
 * a transaction-mode client is served (then the hand-off). Throws RouterRefusal for refusals (the
 * caller tells the client).
 */
export async function servePooled(c: PooledClient, deps: PooledDeps): Promise<PooledOutcome | TransactionHandOff> {
  const { decision, packet } = c;
  let route = c.route;
  const user = decision.user;
  const edge = await loginAtEdge(c, deps);
  if (!('reader' in edge)) return edge;
  const { reader, clientKey, verifier } = edge;
  if (c.awaitRoutable) {
    route = await c.awaitRoutable();
    if (c.expired()) return { outcome: 'startup_timeout', bytesIn: 0, bytesOut: 0 };
  }

  // libpq's rule: no database means the user's name.
  const database = decision.database ?? packet.parameters.get('database') ?? user;
  const key = deps.pool.sharedKey(
    SessionPool.key(
      route.tenantId,
      user,
      database,
      packet.parameters,
      packet.protocol.major * 65536 + packet.protocol.minor,
      route.poolMode,
      verifier.storedKey,
    ),
  );
  const appName = packet.parameters.get('application_name') ?? '';
  const tenantId = route.tenantId;
  const login = deps.pool.logins.of(
    key,
    () =>
      new ServerLogin(
        { connect: deps.connect, timeoutMs: deps.loginTimeoutMs },
        tenantId,
        packet.protocol,
        startupParametersForBackend(packet, decision),
        clientKey,
        verifier,
      ),
  );
  const acquire = async (): Promise<Acquired> => {
    await servedAfterSwitch(deps, route.tenantId, c.socket);
    return deps.pool.acquire(key, appName, login);
  };
  // Transaction mode lends a server only for a query: when a connection of the same key has
  // logged in by the same route, its hello (ParameterStatus set, key length) is the client's too.
  const known = route.poolMode === 'TRANSACTION' ? deps.pool.helloOf(key) : undefined;
  let got: { backend: BackendSession; reused: boolean } | undefined;
  if (!known) {
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
    got = acquired;
  }
  const backend = got?.backend ?? known!;
  const where = { backend: `${backend.route.address}:${backend.route.port}`, backendPid: backend.processId, reused: got?.reused ?? true };
  let returned = got === undefined;
  // Reset and return in the background: the client is gone, nothing of it waits on the reset.
  const giveBack = (reusable: boolean): void => {
    if (returned) return;
    returned = true;
    void deps.pool.release(key, backend, reusable);
  };
  if (c.expired() || c.socket.destroyed) {
    giveBack(true);
    return { outcome: c.expired() ? 'startup_timeout' : 'client_closed_during_startup', ...where, bytesIn: 0, bytesOut: 0 };
  }

  let issued;
  try {
    // The cancel target follows the server the client holds (transaction mode changes it).
    const target: RealCancelTarget = {
      processId: backend.processId,
      secretKey: backend.secretKey,
      host: backend.route.address,
      port: backend.route.port,
      tenantId: route.tenantId,
    };
    issued = deps.keys.issue(target);
    c.socket.write(helloBytes(backend, known ? appName : undefined, issued));
    c.ready();
    if (route.poolMode === 'TRANSACTION') {
      // The connection that answered the login goes back at once; each transaction takes one.
      target.idle = true;
      if (!returned) {
        returned = true;
        void deps.pool.release(key, backend, true, false);
      }
      const txn = serveTransactions(c.socket, reader.takeRemainder(), new ClientTransactionPool(deps, key, appName, login, target, c.socket), refusalBytes, {
        statementsPerServer: deps.statementsPerServer,
      });
      c.lent(txn);
      // Not awaited here: a transaction-mode client may stay idle for hours, and a suspended async
      // function keeps its whole frame. Its cancel key is released when the session ends.
      const held = issued;
      issued = undefined;
      return new TransactionHandOff(txn, deps.keys, held, where);
    }
    // The link owns the server from here: it may carry the client to another when the tenant moves.
    returned = true;
    const carrier = sessionCarrier(new ClientCarrierDeps(deps, key, appName, login, target, c.socket));
    const session = lendCarriedSession(c.socket, backend, reader.takeRemainder(), carrier);
    c.lent(session);
    const end = await session.ended;
    if (end.backend) void deps.pool.release(key, end.backend, end.reusable);
    return {
      outcome: `closed_by_${end.closedBy}`,
      ...where,
      ...(end.carried > 0 ? { carried: end.carried } : {}),
      bytesIn: end.bytesIn,
      bytesOut: end.bytesOut,
    };
  } finally {
    // Anything that went wrong before the client had the connection: the session is not trusted.
    giveBack(false);
    if (issued) deps.keys.release(issued);
  }
}

/**
 * What a client sees after AuthenticationOk: the server's NegotiateProtocolVersion and
 * ParameterStatus set (`applicationName`: in place of the server's, which belongs to another
 * client), the router's cancel key, ReadyForQuery. One write.
 */
function helloBytes(backend: BackendSession, applicationName: string | undefined, issued: { processId: number; secretKey: Buffer }): Buffer {
  const hello: Buffer[] = [];
  if (backend.negotiate) hello.push(backend.negotiate);
  hello.push((backend.helloParams ??= encodedParams(backend.params)));
  const ownName = backend.params.get('application_name');
  if (ownName !== undefined) hello.push(encodeParameterStatus('application_name', applicationName ?? ownName));
  hello.push(encodeBackendKeyData(issued.processId, issued.secretKey), READY_IDLE);
  return Buffer.concat(hello);
}

const READY_IDLE = encodeReadyForQuery('I');

/** A server's ParameterStatus set but application_name (each client's own), in memory of its own: it lives as long as the connection. */
function encodedParams(params: ReadonlyMap<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of params) if (name !== 'application_name') parts.push(encodeParameterStatus(name, value));
  const joined = Buffer.concat(parts);
  const own = Buffer.allocUnsafeSlow(joined.length);
  joined.copy(own);
  return own;
}

/**
 * Waits while the tenant's route is switching to another instance, so the next server comes from
 * the new primary (a transaction-mode client moves between its transactions unnoticed).
 */
async function servedAfterSwitch(deps: PooledDeps, tenantId: string, client: net.Socket): Promise<void> {
  const now = deps.connect.lookup(tenantId);
  if (now && isHeld(now))
    checkRoutable(await holdUntilServed(now, { lookup: deps.connect.lookup, timeoutMs: deps.holdTimeoutMs, abandoned: () => client.destroyed }));
}

/**
 * The pool as one transaction-mode client uses it; `target` (the client's cancel target) follows
 * the server held. One object with its methods on the prototype: the closures it replaces were
 * kept by every idle client.
 */
const ignore = (): void => undefined;

class ClientTransactionPool implements TransactionPool {
  readonly #deps: PooledDeps;
  readonly #key: string;
  readonly #appName: string;
  readonly #login: ServerLogin;
  readonly #target: RealCancelTarget;
  readonly #client: net.Socket;
  // A client has one acquire at a time: one callback serves all of its transactions.
  #done: (err: unknown, backend?: BackendSession) => void = ignore;
  #onAcquired: ((err: unknown, got?: Acquired) => void) | undefined;

  constructor(deps: PooledDeps, key: string, appName: string, login: ServerLogin, target: RealCancelTarget, client: net.Socket) {
    this.#deps = deps;
    this.#key = key;
    this.#appName = appName;
    this.#login = login;
    this.#target = target;
    this.#client = client;
  }

  /** True while the tenant's route is switching: nothing is free at once then. */
  #holding(): boolean {
    const now = this.#deps.connect.lookup(this.#target.tenantId);
    return now !== undefined && isHeld(now);
  }

  /** The server the client now holds (its cancel target follows), or the refusal to tell it. */
  #held(err: unknown, got: Acquired | undefined): BackendSession | Error | undefined {
    if (err !== undefined) return err instanceof PoolTimeoutError ? refuse.poolWaitTimeout(this.#target.tenantId, this.#deps.waitTimeoutMs) : (err as Error);
    if (!got) return undefined;
    if (got.kind === 'server_error') return new PgError(got.fields);
    const b = got.backend;
    const target = this.#target;
    target.processId = b.processId;
    target.secretKey = b.secretKey;
    target.host = b.route.address;
    target.port = b.route.port;
    target.idle = false;
    return b;
  }

  acquire(callback: (err: unknown, backend?: BackendSession) => void): void {
    this.#done = callback;
    const onAcquired = (this.#onAcquired ??= (err, got) => {
      const r = this.#held(err, got);
      if (r instanceof Error || r === undefined) this.#done(r ?? new Error('no server connection'));
      else this.#done(undefined, r);
    });
    const { pool } = this.#deps;
    if (!this.#holding()) return pool.acquireWith(this.#key, this.#appName, this.#login, onAcquired);
    servedAfterSwitch(this.#deps, this.#target.tenantId, this.#client).then(
      () => pool.acquireWith(this.#key, this.#appName, this.#login, onAcquired),
      (err: unknown) => onAcquired(err),
    );
  }

  async tryAcquire(): Promise<BackendSession | undefined> {
    let got;
    try {
      got = this.#holding() ? undefined : await this.#deps.pool.tryAcquire(this.#key, this.#appName, this.#login);
    } catch (err) {
      throw this.#held(err, undefined);
    }
    const r = this.#held(undefined, got);
    if (r instanceof Error) throw r;
    return r;
  }

  releaseIdle(b: BackendSession): void {
    this.#target.idle = true;
    this.#deps.pool.releaseKept(this.#key, b);
  }

  releaseDirty(b: BackendSession, reusable: boolean): void {
    this.#target.idle = true;
    void this.#deps.pool.release(this.#key, b, reusable);
  }

  pinChanged(pinned: boolean): void {
    if (pinned) this.#deps.metrics.poolClientsPinned.inc();
    else this.#deps.metrics.poolClientsPinned.dec();
  }
}

/**
 * What carrying one session-mode client to its tenant's new primary needs, as one object with its
 * methods on the prototype (an object of closures was made at every session-mode login).
 */
class ClientCarrierDeps implements CarrierDeps {
  readonly #deps: PooledDeps;
  readonly #key: string;
  readonly #appName: string;
  readonly #login: ServerLogin;
  readonly #target: RealCancelTarget;
  readonly #client: net.Socket;

  constructor(deps: PooledDeps, key: string, appName: string, login: ServerLogin, target: RealCancelTarget, client: net.Socket) {
    this.#deps = deps;
    this.#key = key;
    this.#appName = appName;
    this.#login = login;
    this.#target = target;
    this.#client = client;
  }

  get tenantId(): string {
    return this.#target.tenantId;
  }

  get holdTimeoutMs(): number {
    return this.#deps.holdTimeoutMs;
  }

  get routeChangeWaitMs(): number {
    return this.#deps.connect.routeChangeWaitMs;
  }

  get replayTimeoutMs(): number {
    return this.#deps.loginTimeoutMs;
  }

  lookup(tenantId: string): RouteEntry | undefined {
    return this.#deps.connect.lookup(tenantId);
  }

  acquire(): Promise<Acquired> {
    return this.#deps.pool.acquire(this.#key, this.#appName, this.#login);
  }

  discard(b: BackendSession): void {
    void this.#deps.pool.release(this.#key, b, false);
  }

  retarget(b: BackendSession): void {
    const target = this.#target;
    target.processId = b.processId;
    target.secretKey = b.secretKey;
    target.host = b.route.address;
    target.port = b.route.port;
  }

  clientGone(): boolean {
    return this.#client.destroyed;
  }

  counted(result: 'carried' | 'not_carried' | 'failed'): void {
    this.#deps.metrics.sessionsCarried.inc({ result });
  }
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
