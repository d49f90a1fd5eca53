import { describe, expect, it } from 'vitest';
import { AuthThrottle } from './auth-throttle.js';

describe('AuthThrottle', () => {
  it('blocks a key after `limit` failures until its window ends; other keys are free', () => {
    const t = new AuthThrottle({ limit: 3, windowMs: 1000 });
    for (let i = 0; i < 3; i++) {
      expect(t.blockedFor('acme\0alice', 100 + i)).toBe(0);
      t.fail('acme\0alice', 100 + i);
    }
    expect(t.blockedFor('acme\0alice', 500)).toBe(600);
    expect(t.blockedFor('acme\0bob', 500)).toBe(0);
    expect(t.blockedFor('acme\0alice', 1100)).toBe(0);
    t.fail('acme\0alice', 1100);
    expect(t.blockedFor('acme\0alice', 1101)).toBe(0);
  });

  it('is off with limit 0, and stays bounded in keys', () => {
    const off = new AuthThrottle({ limit: 0, windowMs: 1000 });
    for (let i = 0; i < 10; i++) off.fail('k', i);
    expect(off.blockedFor('k', 10)).toBe(0);
    const small = new AuthThrottle({ limit: 1, windowMs: 1000, maxKeys: 3 });
    for (let i = 0; i < 10; i++) small.fail(`user${i}`, i);
    expect(small.size).toBeLessThanOrEqual(3);
    expect(small.blockedFor('user9', 20)).toBeGreaterThan(0);
  });
});
