import type { WatchRoutesResponse } from '@pgs/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './testing/harness.js';
import { RouteQueue } from './transport/route-queue.js';

describe('a router queue bounded by bytes', () => {
  it('queues batches up to the bound, then drops what it holds and stays cut off', () => {
    const q = new RouteQueue<{ bytes: number; n: number }>(1000);
    for (let n = 0; n < 9; n++) expect(q.push({ bytes: 100, n })).toBe(true);
    expect(q.shift()?.n).toBe(0);
    expect(q.bytes).toBe(800);
    expect(q.push({ bytes: 200, n: 9 })).toBe(true);
    expect(q.push({ bytes: 1, n: 10 })).toBe(false);
    expect(q.overflowed).toBe(true);
    expect([q.length, q.bytes, q.shift()]).toEqual([0, 0, undefined]);
    expect(q.push({ bytes: 1, n: 11 })).toBe(false);
  });

  it('also cuts off past a count of batches', () => {
    const q = new RouteQueue<{ bytes: number }>(1 << 30, 3);
    for (let i = 0; i < 3; i++) q.push({ bytes: 1 });
    expect(q.push({ bytes: 1 })).toBe(false);
    expect(q.overflowed).toBe(true);
  });

  it('gives batches back in order across its compactions', () => {
    const q = new RouteQueue<{ bytes: number; n: number }>(1 << 30, 1 << 20);
    const out: number[] = [];
    for (let n = 0; n < 5000; n++) {
      q.push({ bytes: 1, n });
      if (n % 3 === 0) out.push(q.shift()!.n);
    }
    for (let b = q.shift(); b; b = q.shift()) out.push(b.n);
    expect(out).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(q.bytes).toBe(0);
  });
});

let h: Harness;
const TENANTS = Array.from({ length: 8 }, (_, i) => `q${i}`);

beforeAll(async () => {
  // 16 KiB: some hundred route changes, past what gRPC's flow control buffers for a router that stopped reading.
  h = await startHarness(['--route-queue-kib', '16']);
  for (const id of TENANTS) await h.operator.createTenant({ id });
});
afterAll(async () => {
  await h?.stop();
});

describe('a router that stops reading', () => {
  it('is cut off once its unsent changes pass the bound, and resumes from the revision it applied', async () => {
    const watch = h.routes.watchRoutes({ sinceRevision: 0n, routerId: 'r1', cancelAddress: '127.0.0.1:6001', snapshotInParts: true });
    const it = watch[Symbol.asyncIterator]();
    const table = new Map<string, boolean>();
    let revision = 0n;
    const apply = (m: WatchRoutesResponse): void => {
      for (const u of m.upserts) table.set(u.tenantId, u.externalAccess);
      for (const id of m.deletedTenantIds) table.delete(id);
      if (!m.snapshotContinues && m.revision > revision) revision = m.revision;
    };
    // The snapshot, then no more reads while the routes change 1,200 times (8 at a time).
    for (let m = (await it.next()).value as WatchRoutesResponse; ; m = (await it.next()).value as WatchRoutesResponse) {
      apply(m);
      if (!m.snapshotContinues) break;
    }
    for (let round = 0; round < 150; round++) await Promise.all(TENANTS.map((id) => h.operator.setTenantAccess({ id, externalAccess: round % 2 === 0 })));
    // Reading again: what gRPC had buffered, then the end of the stream (the old unbounded-by-bytes queue never ended it).
    const deadline = Date.now() + 20_000;
    let ended = false;
    while (Date.now() < deadline) {
      const next = await Promise.race([it.next(), new Promise<'late'>((r) => setTimeout(() => r('late'), deadline - Date.now()))]);
      if (next === 'late') break;
      if (next.done) {
        ended = true;
        break;
      }
      apply(next.value);
    }
    watch.cancel();
    expect(ended).toBe(true);
    const probe = h.routes.watchRoutes({ sinceRevision: 0n, routerId: 'r1', cancelAddress: '127.0.0.1:6002' });
    const current = (await probe[Symbol.asyncIterator]().next()).value as WatchRoutesResponse;
    probe.cancel();
    expect(revision).toBeLessThan(current.revision);
    // Resuming from its revision: deltas (not a snapshot), up to the current revision, the last access of each tenant (false: round 149).
    const resumed = h.routes.watchRoutes({ sinceRevision: revision, routerId: 'r1', cancelAddress: '127.0.0.1:6001', snapshotInParts: true });
    const again = resumed[Symbol.asyncIterator]();
    try {
      while (revision < current.revision) {
        const m = (await again.next()).value as WatchRoutesResponse;
        expect(m.snapshot).toBe(false);
        apply(m);
      }
    } finally {
      resumed.cancel();
    }
    expect(revision).toBe(current.revision);
    expect([...table.entries()].filter(([id]) => TENANTS.includes(id)).sort()).toEqual(TENANTS.map((id) => [id, false]));
  }, 60_000);
});
