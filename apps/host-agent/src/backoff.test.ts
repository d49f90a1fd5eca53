import { describe, expect, it } from 'vitest';
import { jitteredBackoff } from './backoff.js';

describe('jitteredBackoff', () => {
  it('grows exponentially up to the cap, with jitter between the floor and the ceiling', () => {
    expect(jitteredBackoff(1, 250, 10_000, () => 1)).toBe(250);
    expect(jitteredBackoff(3, 250, 10_000, () => 1)).toBe(1000);
    expect(jitteredBackoff(3, 250, 10_000, () => 0)).toBe(250);
    expect(jitteredBackoff(50, 250, 10_000, () => 1)).toBe(10_000);
    const spread = new Set(Array.from({ length: 50 }, () => jitteredBackoff(6, 250, 10_000)));
    expect(spread.size).toBeGreaterThan(10);
    for (const d of spread) expect(d).toBeGreaterThanOrEqual(250);
  });
});
