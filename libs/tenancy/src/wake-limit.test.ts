import { describe, expect, it } from 'vitest';
import { takeToken, type TokenBucket } from './wake-limit.js';

describe('takeToken', () => {
  it('grants a full burst, then one token per 1/rate seconds', () => {
    const limit = { perSecond: 2, burst: 3 };
    let bucket: TokenBucket | undefined;
    const granted: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const r = takeToken(bucket, limit, 10_000);
      bucket = r.bucket;
      granted.push(r.granted);
    }
    expect(granted).toEqual([true, true, true, false]);
    const refused = takeToken(bucket, limit, 10_000);
    expect(refused.retryAfterMs).toBe(500);
    expect(takeToken(bucket, limit, 10_499).granted).toBe(false);
    expect(takeToken(bucket, limit, 10_500).granted).toBe(true);
  });

  it('never saves more than the burst', () => {
    const r = takeToken({ tokens: 0, updatedAt: 0 }, { perSecond: 10, burst: 2 }, 1_000_000);
    expect(r.bucket.tokens).toBe(1);
  });

  it('asks to come back after a second when the rate is zero', () => {
    const r = takeToken({ tokens: 0, updatedAt: 0 }, { perSecond: 0, burst: 1 }, 5);
    expect(r).toMatchObject({ granted: false, retryAfterMs: 1000 });
  });
});
