/**
 * The fleet-wide limit on wakes per second: a token bucket, as pure data. A burst of clients of
 * many suspended tenants must not start hundreds of instances at once on the same hosts; a wake
 * that finds the bucket empty is asked to come back after `retryAfterMs`.
 */

/** Tokens left and when they were counted (epoch ms). */
export interface TokenBucket {
  tokens: number;
  updatedAt: number;
}

/** The rate: tokens per second, and at most `burst` saved up. */
export interface BucketLimit {
  perSecond: number;
  burst: number;
}

/** The outcome of one take. */
export interface TakeResult {
  bucket: TokenBucket;
  granted: boolean;
  /** When not granted: how long until a token is there. */
  retryAfterMs: number;
}

/** Takes one token if there is one at `now`; a bucket never seen starts full. */
export function takeToken(bucket: TokenBucket | undefined, limit: BucketLimit, now: number): TakeResult {
  const burst = Math.max(1, limit.burst);
  const rate = Math.max(0, limit.perSecond);
  const prior = bucket ?? { tokens: burst, updatedAt: now };
  const elapsed = Math.max(0, now - prior.updatedAt);
  const tokens = Math.min(burst, prior.tokens + (elapsed * rate) / 1000);
  if (tokens >= 1) return { bucket: { tokens: tokens - 1, updatedAt: now }, granted: true, retryAfterMs: 0 };
  const retryAfterMs = rate > 0 ? Math.ceil(((1 - tokens) * 1000) / rate) : 1000;
  return { bucket: { tokens, updatedAt: now }, granted: false, retryAfterMs };
}
