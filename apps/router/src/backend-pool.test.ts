import { describe, expect, it } from 'vitest';
import { BackendPool, PoolTimeoutError, type PoolCloseReason } from './backend-pool.js';

interface Item {
  id: number;
  idleSince: number;
}

function makePool(perKey: number, maxTotal: number) {
  let now = 1000;
  const closed: Array<[number, PoolCloseReason]> = [];
  const pool = new BackendPool<Item>({ perKey, maxTotal, idleTimeoutMs: 500, close: (i, r) => closed.push([i.id, r]), now: () => now });
  return { pool, closed, advance: (ms: number) => (now += ms) };
}

const fresh = (): boolean => false;

describe('BackendPool', () => {
  it('creates, reuses the most recent idle connection, and never mixes keys', async () => {
    const { pool } = makePool(5, 10);
    expect(await pool.lease('a', fresh, 100)).toEqual({ kind: 'create' });
    const a1 = { id: 1, idleSince: 0 };
    pool.release('a', a1, true);
    expect(pool.stats()).toEqual({ active: 0, idle: 1, waiting: 0 });
    expect(await pool.lease('b', fresh, 100)).toEqual({ kind: 'create' });
    expect(await pool.lease('a', fresh, 100)).toEqual({ kind: 'reuse', item: a1 });
    expect(pool.stats()).toEqual({ active: 2, idle: 0, waiting: 0 });
  });

  it('makes a client wait when its key is full, hands it the next returned connection, and times out otherwise', async () => {
    const { pool, closed } = makePool(1, 10);
    await pool.lease('a', fresh, 100);
    const waiting = pool.lease('a', fresh, 1000);
    expect(pool.stats().waiting).toBe(1);
    const item = { id: 7, idleSince: 0 };
    pool.release('a', item, true);
    expect(await waiting).toEqual({ kind: 'reuse', item });
    // Not reusable: closed, and the waiter gets the right to create.
    const second = pool.lease('a', fresh, 1000);
    pool.release('a', item, false);
    expect(closed).toEqual([[7, 'not_reusable']]);
    expect(await second).toEqual({ kind: 'create' });
    await expect(pool.lease('a', fresh, 20)).rejects.toBeInstanceOf(PoolTimeoutError);
    expect(pool.stats().waiting).toBe(0);
  });

  it('serves an idle connection of a key nobody waits for at once, even while clients of another key wait', async () => {
    const { pool } = makePool(1, 10);
    expect(await pool.lease('b', fresh, 100)).toEqual({ kind: 'create' });
    const b1 = { id: 2, idleSince: 0 };
    pool.release('b', b1, true);
    await pool.lease('a', fresh, 100);
    const waitingA = pool.lease('a', fresh, 1000);
    expect(pool.stats().waiting).toBe(1);
    expect(await pool.lease('b', fresh, 50)).toEqual({ kind: 'reuse', item: b1 });
    // A new client of the waiting key queues behind the one already waiting.
    const laterA = pool.lease('a', fresh, 1000);
    const a1 = { id: 3, idleSince: 0 };
    pool.release('a', a1, true);
    expect(await waitingA).toEqual({ kind: 'reuse', item: a1 });
    pool.release('a', a1, true);
    expect(await laterA).toEqual({ kind: 'reuse', item: a1 });
  });

  it("evicts another key's oldest idle connection when the router-wide bound is reached", async () => {
    const { pool, closed, advance } = makePool(5, 2);
    await pool.lease('a', fresh, 100);
    await pool.lease('b', fresh, 100);
    pool.release('a', { id: 1, idleSince: 0 }, true);
    advance(10);
    pool.release('b', { id: 2, idleSince: 0 }, true);
    expect(await pool.lease('c', fresh, 100)).toEqual({ kind: 'create' });
    expect(closed).toEqual([[1, 'evicted']]);
    expect(pool.stats()).toEqual({ active: 1, idle: 1, waiting: 0 });
  });

  it('closes stale connections at lease and in the sweep, and idle ones past the timeout', async () => {
    const { pool, closed, advance } = makePool(5, 10);
    for (const k of ['a', 'b', 'c']) await pool.lease(k, fresh, 100);
    pool.release('a', { id: 1, idleSince: 0 }, true);
    pool.release('b', { id: 2, idleSince: 0 }, true);
    expect(await pool.lease('a', () => true, 100)).toEqual({ kind: 'create' });
    expect(closed).toEqual([[1, 'route_changed']]);
    pool.sweep((key) => key === 'b');
    expect(closed).toEqual([
      [1, 'route_changed'],
      [2, 'route_changed'],
    ]);
    pool.release('c', { id: 3, idleSince: 0 }, true);
    advance(499);
    pool.sweep(fresh);
    expect(pool.stats().idle).toBe(1);
    advance(1);
    pool.sweep(fresh);
    expect(closed.at(-1)).toEqual([3, 'idle_timeout']);
    expect(pool.stats()).toEqual({ active: 1, idle: 0, waiting: 0 });
  });

  it("gives a failed creation's place to a waiter, and forgets an idle connection the server closed", async () => {
    const { pool, closed } = makePool(1, 10);
    await pool.lease('a', fresh, 100);
    const waiting = pool.lease('a', fresh, 1000);
    pool.createFailed('a');
    expect(await waiting).toEqual({ kind: 'create' });
    const item = { id: 9, idleSince: 0 };
    pool.release('a', item, true);
    pool.remove('a', item);
    expect(closed).toEqual([[9, 'server_closed']]);
    expect(pool.stats()).toEqual({ active: 0, idle: 0, waiting: 0 });
  });

  it('serves many waiters of one key in arrival order, one per returned connection, and keys apart', async () => {
    const { pool } = makePool(1, 2);
    await pool.lease('a', fresh, 100);
    await pool.lease('b', fresh, 100);
    const served: string[] = [];
    const waits = ['a1', 'b1', 'a2', 'a3', 'b2'].map((name) => pool.lease(name[0]!, fresh, 1000).then(() => served.push(name)));
    expect(pool.stats().waiting).toBe(5);
    const item = { id: 1, idleSince: 0 };
    for (const key of ['a', 'a', 'b', 'a', 'b']) {
      pool.release(key, item, true);
      await Promise.resolve();
    }
    await Promise.all(waits);
    expect(served).toEqual(['a1', 'a2', 'b1', 'a3', 'b2']);
    expect(pool.stats().waiting).toBe(0);
  });
});
