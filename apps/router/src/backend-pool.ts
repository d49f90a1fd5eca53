// The bookkeeping of pooled server connections (README "Pool modes"): per key (tenant, user,
// database, startup options) an idle list and a count of lent ones, bounded per key and for the
// whole router, and one FIFO queue of waiting clients with deadlines. No sockets here: the caller
// creates, checks and closes connections through the callbacks, so the rules are tested alone.

/** What the pool holds. */
export interface Poolable {
  readonly id: number;
  /** Epoch ms of the last return to the pool (set by the pool). */
  idleSince: number;
}

/** Why the pool closed a connection (a metric label). */
export type PoolCloseReason = 'idle_timeout' | 'route_changed' | 'evicted' | 'not_reusable' | 'server_closed' | 'shutdown';

/** Pool settings. */
export interface PoolOptions<T extends Poolable> {
  /** Connections per key (lent + idle + being created). */
  perKey: number;
  /** Connections in the whole pool. */
  maxTotal: number;
  idleTimeoutMs: number;
  /** Closes a connection the pool lets go. */
  close(item: T, reason: PoolCloseReason): void;
  now(): number;
}

/** No connection became available in time. */
export class PoolTimeoutError extends Error {
  override readonly name = 'PoolTimeoutError';
}

/** A lease: an idle connection to reuse, or the right to create one (then `created` or `createFailed`). */
export type Lease<T> = { kind: 'reuse'; item: T } | { kind: 'create' };

interface KeyState<T> {
  /** Lent out or being created. */
  active: number;
  /** Most recently returned last. */
  idle: T[];
}

interface Waiter<T> {
  /** Arrival order over all keys. */
  seq: number;
  key: string;
  stale: (item: T) => boolean;
  resolve: (lease: Lease<T>) => void;
  reject: (err: PoolTimeoutError) => void;
  waitMs: number;
  /** performance.now() past which it gives up. */
  deadline: number;
}

/** Counts for metrics. */
export interface PoolStats {
  active: number;
  idle: number;
  waiting: number;
}

/** Pooled connections by key. */
export class BackendPool<T extends Poolable> {
  readonly #o: PoolOptions<T>;
  readonly #keys = new Map<string, KeyState<T>>();
  /** Waiting clients per key, each queue in arrival order (a key is absent when nobody waits for it). */
  readonly #queues = new Map<string, Array<Waiter<T>>>();
  #waiting = 0;
  /**
   * One timer for every waiting client, set for the earliest deadline; when it fires it ends the
   * waits that are over and is set again. In transaction mode most transactions wait a moment
   * (more clients than servers): a timer of each wait's own would be made and cleared per
   * transaction. Waits of one key end in arrival order (every caller waits the same
   * --pool-wait-timeout).
   */
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #seq = 0;
  #total = 0;
  #idle = 0;

  constructor(options: PoolOptions<T>) {
    this.#o = options;
  }

  /** Active, idle and waiting counts now. */
  stats(): PoolStats {
    return { active: this.#total - this.#idle, idle: this.#idle, waiting: this.#waiting };
  }

  /**
   * An idle connection of `key` that is not `stale`, or the right to create one, waiting up to
   * `waitMs` in FIFO order when the key or the pool is full. Rejects with PoolTimeoutError.
   */
  lease(key: string, stale: (item: T) => boolean, waitMs: number): Promise<Lease<T>> {
    return new Promise((resolve, reject) => this.leaseWith(key, stale, waitMs, resolve, reject));
  }

  /**
   * As lease, with callbacks: `onLease` runs at once when nothing has to wait, else inside the
   * release that frees a connection (so a waiting client takes it in the same turn of the event
   * loop); `onTimeout` after `waitMs`.
   */
  leaseWith(key: string, stale: (item: T) => boolean, waitMs: number, onLease: (lease: Lease<T>) => void, onTimeout: (err: PoolTimeoutError) => void): void {
    const now = this.leaseNow(key, stale);
    if (now) return onLease(now);
    const waiter: Waiter<T> = { seq: this.#seq++, key, stale, resolve: onLease, reject: onTimeout, waitMs, deadline: performance.now() + waitMs };
    const q = this.#queues.get(key);
    if (q) q.push(waiter);
    else this.#queues.set(key, [waiter]);
    this.#waiting++;
    this.#armTimer(waiter.deadline);
  }

  #armTimer(at: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - performance.now()));
  }

  /** Ends the waits that are over (PoolTimeoutError), then sets the timer for the next deadline. */
  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    // A timer may fire a fraction of a millisecond before performance.now() reaches its deadline.
    const now = performance.now() + 1;
    const expired: Array<Waiter<T>> = [];
    for (const [key, q] of this.#queues) {
      const kept = q.filter((w) => w.deadline > now);
      if (kept.length === q.length) continue;
      for (const w of q) if (w.deadline <= now) expired.push(w);
      this.#waiting -= q.length - kept.length;
      if (kept.length === 0) this.#queues.delete(key);
      else this.#queues.set(key, kept);
    }
    for (const w of expired) w.reject(new PoolTimeoutError(`no connection for the pool key within ${w.waitMs} ms`));
    let next = Infinity;
    for (const q of this.#queues.values()) for (const w of q) if (w.deadline < next) next = w.deadline;
    if (next !== Infinity) this.#armTimer(next);
  }

  /** True when clients wait for a connection of `key`. */
  waitedFor(key: string): boolean {
    return this.#queues.has(key);
  }

  /** A lease that needs no wait, or undefined (then nothing changed). */
  leaseNow(key: string, stale: (item: T) => boolean): Lease<T> | undefined {
    // Those already waiting go first: a client whose key has waiters queues behind them, and no
    // one creates a connection ahead of a queue that may be waiting for room. An idle connection
    // of a key nobody waits for is taken at once (it takes nothing from the queue).
    if (this.#waiting === 0) return this.#tryLease(key, stale);
    return this.#queues.has(key) ? undefined : this.#tryReuse(key, stale);
  }

  /** A `create` lease failed: its place is free again. */
  createFailed(key: string): void {
    const s = this.#keys.get(key);
    if (s) s.active--;
    this.#total--;
    this.#forgetIfEmpty(key);
    this.#dispatch();
  }

  /**
   * A lent connection comes back: kept idle when `reusable` (or handed straight to a waiter of its
   * key), else closed and its place given to whoever waits.
   */
  release(key: string, item: T, reusable: boolean): void {
    const s = this.#keys.get(key);
    if (!s) return;
    s.active--;
    if (!reusable) {
      this.#total--;
      this.#o.close(item, 'not_reusable');
      this.#forgetIfEmpty(key);
    } else {
      item.idleSince = this.#o.now();
      s.idle.push(item);
      this.#idle++;
    }
    this.#dispatch();
  }

  /** An idle connection died on its own (the server closed it): forget it. */
  remove(key: string, item: T): void {
    const s = this.#keys.get(key);
    const at = s ? s.idle.indexOf(item) : -1;
    if (!s || at < 0) return;
    s.idle.splice(at, 1);
    this.#idle--;
    this.#total--;
    this.#o.close(item, 'server_closed');
    this.#forgetIfEmpty(key);
    this.#dispatch();
  }

  /** Closes idle connections past the idle timeout, and those `stale` says must go (route moved). */
  sweep(stale: (key: string, item: T) => boolean): void {
    const now = this.#o.now();
    for (const [key, s] of this.#keys) {
      for (const item of [...s.idle]) {
        const expired = now - item.idleSince >= this.#o.idleTimeoutMs;
        if (expired || stale(key, item)) this.#closeIdle(key, s, item, expired ? 'idle_timeout' : 'route_changed');
      }
      this.#forgetIfEmpty(key);
    }
    this.#dispatch();
  }

  /** Closes every idle connection (shutdown). */
  closeIdle(): void {
    for (const [key, s] of this.#keys) {
      for (const item of [...s.idle]) this.#closeIdle(key, s, item, 'shutdown');
      this.#forgetIfEmpty(key);
    }
  }

  #closeIdle(key: string, s: KeyState<T>, item: T, reason: PoolCloseReason): void {
    s.idle.splice(s.idle.indexOf(item), 1);
    this.#idle--;
    this.#total--;
    this.#o.close(item, reason);
    void key;
  }

  /** The most recent idle connection of `key` that is not stale (stale ones are closed on the way). */
  #tryReuse(key: string, stale: (item: T) => boolean): Lease<T> | undefined {
    const s = this.#keys.get(key);
    if (!s) return undefined;
    while (s.idle.length > 0) {
      const item = s.idle.pop()!;
      this.#idle--;
      if (stale(item)) {
        this.#total--;
        this.#o.close(item, 'route_changed');
        continue;
      }
      s.active++;
      return { kind: 'reuse', item };
    }
    return undefined;
  }

  #tryLease(key: string, stale: (item: T) => boolean): Lease<T> | undefined {
    const reuse = this.#tryReuse(key, stale);
    if (reuse) return reuse;
    let s = this.#keys.get(key);
    const held = s ? s.active + s.idle.length : 0;
    if (held >= this.#o.perKey) return undefined;
    if (this.#total >= this.#o.maxTotal && !this.#evictOldestIdle(key)) return undefined;
    if (!s) {
      s = { active: 0, idle: [] };
      this.#keys.set(key, s);
    }
    s.active++;
    this.#total++;
    return { kind: 'create' };
  }

  /** Closes the longest-idle connection of another key, to make room under maxTotal. */
  #evictOldestIdle(exceptKey: string): boolean {
    let oldest: { key: string; s: KeyState<T>; item: T } | undefined;
    for (const [key, s] of this.#keys) {
      if (key === exceptKey || s.idle.length === 0) continue;
      const item = s.idle[0]!;
      if (!oldest || item.idleSince < oldest.item.idleSince) oldest = { key, s, item };
    }
    if (!oldest) return false;
    this.#closeIdle(oldest.key, oldest.s, oldest.item, 'evicted');
    this.#forgetIfEmpty(oldest.key);
    return true;
  }

  /**
   * Serves waiting clients in arrival order as far as the pool allows. Per key only the head can be
   * served (the others of that key would get the same answer), so a release costs one look per key
   * that has waiters, not one per waiting client.
   */
  #dispatch(): void {
    if (this.#waiting === 0) return;
    const queues = this.#queues.size === 1 ? this.#queues : [...this.#queues].sort(([, a], [, b]) => a[0]!.seq - b[0]!.seq);
    for (const [key, q] of queues) {
      while (q.length > 0) {
        const w = q[0]!;
        const lease = this.#tryLease(key, w.stale);
        if (!lease) break;
        q.shift();
        this.#waiting--;
        w.resolve(lease);
      }
      // A client served above may have queued again meanwhile, under a new queue of the key.
      if (q.length === 0 && this.#queues.get(key) === q) this.#queues.delete(key);
    }
    // Nobody waits: no timer keeps the process up (set again by the next wait).
    if (this.#waiting === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
  }

  #forgetIfEmpty(key: string): void {
    const s = this.#keys.get(key);
    if (s && s.active === 0 && s.idle.length === 0) this.#keys.delete(key);
  }
}
