// Failed logins per tenant and user at this router, against a limit per window. Unknown users are
// counted by name exactly as known ones, so the throttle tells nothing about who exists. Pure:
// the caller passes `now`.

/** Limit settings: `limit` failures per `windowMs`; limit 0 turns the throttle off. */
export interface AuthThrottleOptions {
  limit: number;
  windowMs: number;
  /** Most keys tracked; beyond it expired ones are dropped, then the oldest. */
  maxKeys?: number;
}

/** Fixed-window failure counters. */
export class AuthThrottle {
  readonly #o: Required<AuthThrottleOptions>;
  readonly #windows = new Map<string, { start: number; failures: number }>();

  constructor(options: AuthThrottleOptions) {
    this.#o = { maxKeys: 100_000, ...options };
  }

  /** Milliseconds until `key` may try again; 0 when it may try now. */
  blockedFor(key: string, now: number): number {
    if (this.#o.limit === 0) return 0;
    const w = this.#windows.get(key);
    if (!w || now - w.start >= this.#o.windowMs) return 0;
    return w.failures >= this.#o.limit ? w.start + this.#o.windowMs - now : 0;
  }

  /** Records a failed login of `key`. */
  fail(key: string, now: number): void {
    if (this.#o.limit === 0) return;
    const w = this.#windows.get(key);
    if (w && now - w.start < this.#o.windowMs) {
      w.failures++;
      return;
    }
    if (this.#windows.size >= this.#o.maxKeys) this.#prune(now);
    this.#windows.delete(key);
    this.#windows.set(key, { start: now, failures: 1 });
  }

  /** Keys tracked now (for tests and status). */
  get size(): number {
    return this.#windows.size;
  }

  #prune(now: number): void {
    for (const [k, w] of this.#windows) if (now - w.start >= this.#o.windowMs) this.#windows.delete(k);
    // Still full: drop the oldest (Map order is insertion order, and a new window re-inserts).
    while (this.#windows.size >= this.#o.maxKeys) this.#windows.delete(this.#windows.keys().next().value!);
  }
}
