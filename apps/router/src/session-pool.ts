// Pool mode `session` (README "Pool modes"): logged-in server connections per tenant, user,
// database and startup options, lent to one client at a time and reset with DISCARD ALL when it
// leaves. A connection whose reset does not end cleanly (in a transaction, an error, no answer in
// time) is closed, never lent again. Idle connections go when idle too long or when their
// tenant's route moves (failover, stop): a client only ever gets a connection reached by the
// route it was routed by, for its own tenant, user and database.
import { performance } from 'node:perf_hooks';
import { decodeBackendMessage, encodeQuery, TERMINATE, type Frame } from '@pgs/wire-protocol';
import { readUntilReady } from './backend-reader.js';
import { verifierParts, type BackendSession, type LoginResult } from './backend-login.js';
import { BackendPool, type Lease, type PoolCloseReason } from './backend-pool.js';
import type { RouterMetrics } from './metrics.js';
import type { PoolModeName, RouteEntry } from './route.js';
import { ServerLogins } from './server-login.js';

/** Pool settings (config: --pool-*). */
export interface SessionPoolOptions {
  perKey: number;
  maxTotal: number;
  idleTimeoutMs: number;
  waitTimeoutMs: number;
  resetTimeoutMs: number;
  lookup(tenantId: string): RouteEntry | undefined;
  /** The user's verifier on the tenant's route now (undefined: dropped; a dropped user's or changed password's connections go). */
  verifierOf(tenantId: string, user: string): string | undefined;
  metrics: RouterMetrics;
}

/** How a key's new server connections log in (one object per key: server-login.ts). */
export interface PoolLogin {
  login(applicationName: string): Promise<LoginResult>;
}

/** What a client gets: a connection (reused or just logged in), or the server's refusal of the login. */
export type Acquired =
  { kind: 'ready'; backend: BackendSession; reused: boolean } | { kind: 'server_error'; fields: Extract<LoginResult, { kind: 'server_error' }>['fields'] };

/** True when a connection is gone or was reached by a route that no longer serves its tenant. */
function routeMoved(backend: BackendSession, now: RouteEntry | undefined): boolean {
  if (backend.socket.destroyed) return true;
  const was = backend.route;
  return !now || now.state !== 'ROUTABLE' || now.address !== was.address || now.port !== was.port || now.hostId !== was.hostId;
}

/** The tenant and user of a pool key (its first two fields). */
function keyParts(key: string): { tenantId: string; user: string } {
  const [tenantId = '', user = ''] = key.split('\0', 2);
  return { tenantId, user };
}

/** The tenant of a pool key (its first field; no split of the whole key, this runs per transaction). */
function tenantOfKey(key: string): string {
  const end = key.indexOf('\0');
  return end < 0 ? key : key.slice(0, end);
}

/** Marks a pooled connection's socket while the idle watch (closeOnIdleData) listens to it. */
const IDLE_WATCHED = Symbol('idle watched');
type WatchedSocket = BackendSession['socket'] & { [IDLE_WATCHED]?: boolean };

/** The idle watch's listener, shared by every connection: a server that speaks while idle is not trusted. */
function closeOnIdleData(this: WatchedSocket): void {
  this.destroy();
}

/** Quotes a string as an SQL literal (standard_conforming_strings is on in every supported version). */
function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * Runs one simple query the router sends itself, reading until its ReadyForQuery. Replies to
 * queries a departed client left in flight come first and are skipped. True when `tag` completed
 * and the session is idle, outside any transaction.
 */
async function runOwnQuery(backend: BackendSession, query: Buffer, want: Buffer, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  backend.socket.write(query);
  for (;;) {
    let done = false;
    const onFrame = (f: Frame): void => {
      if (f.type === 0x43 /* CommandComplete */ && f.body.equals(want)) done = true;
      else if (f.type === 0x53 /* ParameterStatus */) {
        const m = decodeBackendMessage(f);
        if (m.kind === 'parameter-status') {
          backend.params.set(m.name, m.value);
          backend.helloParams = undefined;
        }
      }
    };
    const { status, leftover } = await readUntilReady(backend.socket, onFrame, Math.max(1, deadline - Date.now()));
    if (done) return status === 'I' && leftover.length === 0;
    // In a transaction or a failed one (ours failed, or the client left one open): not reusable,
    // whichever query this ReadyForQuery answered.
    if (status !== 'I') return false;
    // An idle ReadyForQuery of a query the client left in flight; ours comes later.
    if (leftover.length > 0) backend.socket.unshift(leftover);
  }
}

/** The reset every departing session-mode client's connection gets, and the tag that says it completed. */
const DISCARD_ALL = encodeQuery('DISCARD ALL');
const DISCARD_ALL_DONE = Buffer.from('DISCARD ALL\0');
const SET_DONE = Buffer.from('SET\0');

/** Pooled server connections of one router process. */
export class SessionPool {
  readonly #o: SessionPoolOptions;
  readonly #pool: BackendPool<BackendSession>;
  readonly #sweeper: NodeJS.Timeout;
  /** Clients holding a connection now. */
  #lent = 0;
  /** Set by close(): nothing is pooled any more (connections returned after it are closed). */
  #closed = false;
  /** Per key, the connection that logged in last (its hello serves transaction-mode clients). */
  readonly #hellos = new Map<string, { key: string; backend: BackendSession }>();
  /** The server login of each key that has clients (shared by them). */
  readonly logins = new ServerLogins();
  /** Leases so far, read at scrape time (a labelled counter's inc per transaction costs a label hash). */
  readonly #leases = { reuse: 0, create: 0 };

  constructor(options: SessionPoolOptions) {
    this.#o = options;
    this.#pool = new BackendPool<BackendSession>({
      perKey: options.perKey,
      maxTotal: options.maxTotal,
      idleTimeoutMs: options.idleTimeoutMs,
      now: Date.now,
      close: (b, reason) => this.#close(b, reason),
    });
    options.metrics.poolLeaseCounts.read = () => this.#leases;
    options.metrics.poolCounts.read = () => {
      const s = this.#pool.stats();
      return { clientsActive: this.#lent, clientsWaiting: s.waiting, backendsActive: s.active, backendsIdle: s.idle };
    };
    // Route changes reach every process through the cache file; one look a second finds the moved ones.
    this.#sweeper = setInterval(() => this.sweep(), 1000);
    this.#sweeper.unref();
  }

  /** The pool key: a connection serves only clients that would have started the same session. */
  static key(
    tenantId: string,
    user: string,
    database: string,
    startup: ReadonlyMap<string, string>,
    protocol: number,
    mode: PoolModeName,
    storedKey: Buffer,
  ): string {
    const rest = [...startup].filter(([k]) => k !== 'user' && k !== 'database' && k !== 'application_name').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // The mode is part of the key: transaction mode hands connections on without a reset, and
    // those must never reach a session-mode client after the tenant's mode changed. So is the
    // verifier the client logged in with: after a password change, connections logged in with the
    // old one serve no new client and retire (sweep).
    return [tenantId, user, database, String(protocol), mode, JSON.stringify(rest), storedKey.toString('hex')].join('\0');
  }

  /**
   * A connection for `key`: an idle one (its application_name set to the client's), or a new one
   * from `login`; waits up to --pool-wait-timeout when the pool is full (PoolTimeoutError).
   */
  async acquire(key: string, applicationName: string, login: PoolLogin): Promise<Acquired> {
    return (await this.#acquire(key, applicationName, login, true))!;
  }

  /** As acquire, but undefined at once when no connection can be had without waiting for another client. */
  tryAcquire(key: string, applicationName: string, login: PoolLogin): Promise<Acquired | undefined> {
    return this.#acquire(key, applicationName, login, false);
  }

  async #acquire(key: string, applicationName: string, login: PoolLogin, wait: boolean): Promise<Acquired | undefined> {
    const started = performance.now();
    const stale = this.#stale;
    try {
      for (;;) {
        let lease;
        if (wait) {
          lease = await this.#pool.lease(key, stale, this.#o.waitTimeoutMs);
        } else {
          lease = this.#pool.leaseNow(key, stale);
          if (!lease) return undefined;
        }
        const got = this.#useNow(lease, applicationName) ?? (await this.#use(key, applicationName, login, lease));
        if (got) return got;
      }
    } finally {
      this.#o.metrics.poolWaitSeconds.observe((performance.now() - started) / 1000);
    }
  }

  /**
   * As acquire, with a callback that runs in the same turn of the event loop when an idle
   * connection is there or another client returns one (transaction mode takes a connection per
   * transaction; a promise would add turns of the microtask queue to each).
   */
  acquireWith(key: string, applicationName: string, login: PoolLogin, done: (err: unknown, got?: Acquired) => void): void {
    // The usual case: an idle connection ready for the client, in this call. No wait, so none is
    // timed (0 observed), and nothing is made per transaction but the answer. `done` attaches the
    // connection in this same call, so it is handed over still flowing (no pause, no resume).
    const lease = this.#pool.leaseNow(key, this.#stale);
    const now = lease && this.#useNow(lease, applicationName, false);
    if (now) {
      this.#o.metrics.poolWaitSeconds.observe(0);
      return done(undefined, now);
    }
    const started = performance.now();
    const observe = (): void => this.#o.metrics.poolWaitSeconds.observe((performance.now() - started) / 1000);
    const onLease = (lease: Lease<BackendSession>): void => {
      const now = this.#useNow(lease, applicationName, false);
      if (now) {
        observe();
        return done(undefined, now);
      }
      // A login or a SET first; a reused connection that failed its SET: wait again, as acquire does.
      this.#use(key, applicationName, login, lease)
        .then((got) => got ?? this.#acquire(key, applicationName, login, true))
        .then(
          (got) => {
            observe();
            done(undefined, got);
          },
          (err: unknown) => {
            observe();
            done(err);
          },
        );
    };
    if (lease) return onLease(lease);
    this.#pool.leaseWith(key, this.#stale, this.#o.waitTimeoutMs, onLease, (err) => {
      observe();
      done(err);
    });
  }

  /**
   * True when a pooled connection must not be lent (gone, or its tenant's route moved). One
   * function for every key: a connection's own route names its tenant, the key's.
   */
  readonly #stale = (b: BackendSession): boolean => routeMoved(b, this.#o.lookup(b.route.tenantId));

  /**
   * A reused connection that needs nothing more (its application_name is the client's already),
   * else undefined. `pause` false: the taker reads it in this same call.
   */
  #useNow(lease: Lease<BackendSession>, applicationName: string, pause = true): Acquired | undefined {
    if (lease.kind !== 'reuse' || lease.item.applicationName !== applicationName) return undefined;
    this.#unwatchIdle(lease.item, pause);
    this.#leases.reuse++;
    this.#lent++;
    return { kind: 'ready', backend: lease.item, reused: true };
  }

  /** A lease made ready: a new connection logged in, or a reused one given the client's application_name (undefined: that failed, it is closed). */
  async #use(key: string, applicationName: string, login: PoolLogin, lease: Lease<BackendSession>): Promise<Acquired | undefined> {
    if (lease.kind === 'create') {
      let result: LoginResult;
      try {
        result = await login.login(applicationName);
      } catch (err) {
        this.#pool.createFailed(key);
        throw err;
      }
      if (result.kind !== 'ready') {
        this.#pool.createFailed(key);
        return result;
      }
      this.#watchIdleClose(key, result.backend);
      this.#hellos.set(key, { key, backend: result.backend });
      this.#leases.create++;
      this.#lent++;
      return { kind: 'ready', backend: result.backend, reused: false };
    }
    const backend = lease.item;
    this.#unwatchIdle(backend);
    const ok = await runOwnQuery(backend, encodeQuery(`SET application_name = ${literal(applicationName)}`), SET_DONE, this.#o.resetTimeoutMs).catch(
      () => false,
    );
    if (!ok) {
      this.#pool.release(key, backend, false);
      return undefined;
    }
    backend.applicationName = applicationName;
    this.#leases.reuse++;
    this.#lent++;
    return { kind: 'ready', backend, reused: true };
  }

  /**
   * The string the pool already holds for a key equal to `key`, else `key`: a client keeps its key
   * for its lifetime, and thousands of idle clients of one pool need not each hold a copy.
   */
  sharedKey(key: string): string {
    return this.#hellos.get(key)?.key ?? key;
  }

  /**
   * A connection of `key` that logged in by the tenant's current route and is still open, for its
   * hello (ParameterStatus set, cancel key length): a transaction-mode client gets a server only
   * for its first query. Undefined when there is none.
   */
  helloOf(key: string): BackendSession | undefined {
    const b = this.#hellos.get(key)?.backend;
    if (!b) return undefined;
    if (routeMoved(b, this.#o.lookup(tenantOfKey(key)))) {
      this.#hellos.delete(key);
      return undefined;
    }
    return b;
  }

  /**
   * The client is gone: reset the session (DISCARD ALL, checked) and keep it, or close it.
   * `reusable` false (the client left mid-message, the server closed) closes it at once;
   * `reset` false keeps it as it is (transaction mode, between transactions).
   */
  async release(key: string, backend: BackendSession, reusable: boolean, reset = true): Promise<void> {
    this.#lent--;
    let ok = reusable && !backend.socket.destroyed && !this.#closed;
    // Transaction mode returns a connection between a client's transactions as it is (no reset).
    if (ok && reset) ok = await runOwnQuery(backend, DISCARD_ALL, DISCARD_ALL_DONE, this.#o.resetTimeoutMs).catch(() => false);
    if (reset) backend.statements?.clear();
    // A client that left while the router was stopping returns its connection after close() (the
    // reset above yields): an idle socket kept then would hold the stopped process open, and the
    // route cache the checks below read may be closed already.
    if (ok && this.#closed) ok = false;
    // The route may have moved while the client was on it, or the user's password changed.
    if (ok && routeMoved(backend, this.#o.lookup(tenantOfKey(key)))) ok = false;
    if (ok && reset) {
      const { tenantId, user } = keyParts(key);
      if (!this.#currentStoredKey(tenantId, user)?.equals(backend.storedKey)) ok = false;
    }
    if (ok) this.#watchIdle(backend);
    this.#pool.release(key, backend, ok);
  }

  /**
   * Transaction mode, between a client's transactions: the connection goes back as it is (no
   * reset). A client waiting for the key takes it in this same call; only one nobody waits for is
   * watched while idle.
   */
  releaseKept(key: string, backend: BackendSession): void {
    this.#lent--;
    const ok = !backend.socket.destroyed && !this.#closed && !routeMoved(backend, this.#o.lookup(backend.route.tenantId));
    if (ok && !this.#pool.waitedFor(key)) this.#watchIdle(backend);
    this.#pool.release(key, backend, ok);
  }

  /** Closes idle connections past the idle timeout, whose route moved, or whose user was dropped. */
  sweep(): void {
    const keys = new Map<string, Buffer | undefined>();
    this.#pool.sweep((key, b) => {
      const { tenantId, user } = keyParts(key);
      if (!keys.has(key)) keys.set(key, this.#currentStoredKey(tenantId, user));
      const storedKey = keys.get(key);
      return routeMoved(b, this.#o.lookup(tenantId)) || !storedKey || !storedKey.equals(b.storedKey);
    });
  }

  /** The StoredKey of the user's verifier on the route now; undefined when the user is gone. */
  #currentStoredKey(tenantId: string, user: string): Buffer | undefined {
    const v = this.#o.verifierOf(tenantId, user);
    return verifierParts(v)?.storedKey;
  }

  /** Stops the sweeper and closes the idle connections (lent ones end with their clients). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#pool.closeIdle();
  }

  /** An idle connection the server closes (restart, admin kill, idle timeout of its own) is forgotten. */
  #watchIdleClose(key: string, backend: BackendSession): void {
    backend.socket.once('close', () => {
      if (this.#hellos.get(key)?.backend === backend) this.#hellos.delete(key);
      this.#pool.remove(key, backend);
    });
  }

  /**
   * An idle connection is read, not left paused: a paused socket never sees the server's close
   * (an administrator's pg_terminate_backend, a restart). Anything a server says while idle (its
   * FATAL before closing, a notice) makes the connection untrusted: it is closed. One listener
   * function for every connection (a connection goes idle after every transaction).
   */
  #watchIdle(backend: BackendSession): void {
    const socket = backend.socket as WatchedSocket;
    socket[IDLE_WATCHED] = true;
    socket.on('data', closeOnIdleData);
    socket.resume();
  }

  /** `pause` false: the caller attaches a reader in this same call, so the socket may stay flowing. */
  #unwatchIdle(backend: BackendSession, pause = true): void {
    const socket = backend.socket as WatchedSocket;
    if (!socket[IDLE_WATCHED]) return;
    socket[IDLE_WATCHED] = false;
    socket.off('data', closeOnIdleData);
    if (pause) socket.pause();
  }

  #close(backend: BackendSession, reason: PoolCloseReason): void {
    this.#unwatchIdle(backend);
    this.#o.metrics.poolBackendsClosed.inc({ reason });
    if (!backend.socket.destroyed) {
      // Terminate first, so the server logs a clean disconnect rather than an EOF.
      backend.socket.end(TERMINATE);
      setTimeout(() => backend.socket.destroy(), 1000).unref();
    }
  }
}
