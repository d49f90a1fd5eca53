import { describe, expect, it } from 'vitest';
import { SqlState } from '@pgs/wire-protocol';
import { RouterRefusal } from './refusal.js';
import type { RouteEntry } from './route.js';
import { holdUntilServed, isHeld } from './route-hold.js';

function route(over: Partial<RouteEntry> = {}): RouteEntry {
  return {
    tenantId: 't',
    hostId: 'h1',
    address: '127.0.0.1',
    port: 5432,
    state: 'ROUTABLE',
    reason: '',
    externalAccess: true,
    connectionLimit: 0,
    revision: 1,
    poolMode: 'TRANSACTION',
    ...over,
  };
}

describe('holdUntilServed', () => {
  it('returns a route that is not held at once', async () => {
    const r = route();
    expect(await holdUntilServed(r, { lookup: () => undefined, timeoutMs: 10 })).toBe(r);
    expect(isHeld(route({ state: 'SWITCHING' }))).toBe(true);
    expect(isHeld(route({ state: 'FAILOVER' }))).toBe(false);
  });

  it('waits while the route is SWITCHING and returns where it points next', async () => {
    let current = route({ state: 'SWITCHING' });
    setTimeout(() => (current = route({ hostId: 'h2', port: 6543, revision: 2 })), 60);
    const served = await holdUntilServed(current, { lookup: () => current, timeoutMs: 5000, pollMs: 5 });
    expect(served).toMatchObject({ hostId: 'h2', port: 6543, state: 'ROUTABLE' });
  });

  it('refuses with 57P03 and the reason once the bound passed', async () => {
    const held = route({ state: 'SWITCHING', reason: 'switching to h2' });
    const err = await holdUntilServed(held, { lookup: () => held, timeoutMs: 40, pollMs: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RouterRefusal);
    expect((err as RouterRefusal).code).toBe(SqlState.CannotConnectNow);
    expect((err as RouterRefusal).reason).toBe('hold_timeout');
    expect((err as RouterRefusal).message).toMatch(/switching to another instance and did not serve again within 40 ms/);
  });

  it('ends without a verdict when the client left, and refuses an unknown tenant when the route went away', async () => {
    const held = route({ state: 'SWITCHING' });
    expect(await holdUntilServed(held, { lookup: () => held, timeoutMs: 5000, abandoned: () => true })).toBe(held);
    const err = await holdUntilServed(held, { lookup: () => undefined, timeoutMs: 5000, pollMs: 5 }).catch((e: unknown) => e);
    expect((err as RouterRefusal).reason).toBe('unknown_tenant');
  });
});
