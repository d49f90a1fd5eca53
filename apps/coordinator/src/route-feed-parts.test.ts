import type { WatchRoutesResponse } from '@pgs/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './testing/harness.js';

let h: Harness;
const TENANTS = ['p1', 'p2', 'p3', 'p4', 'p5'];

beforeAll(async () => {
  // Parts of two routes, so five tenants make a snapshot of three parts.
  h = await startHarness(['--route-snapshot-part', '2']);
  for (const id of TENANTS) await h.operator.createTenant({ id });
});
afterAll(async () => {
  await h?.stop();
});

/** The first `n` messages of a watch, then the watch cancelled. */
async function firstMessages(since: bigint, inParts: boolean, n: number): Promise<WatchRoutesResponse[]> {
  const watch = h.routes.watchRoutes({ sinceRevision: since, routerId: 'r1', cancelAddress: '127.0.0.1:6000', snapshotInParts: inParts });
  const it = watch[Symbol.asyncIterator]();
  const out: WatchRoutesResponse[] = [];
  try {
    while (out.length < n) out.push((await it.next()).value as WatchRoutesResponse);
  } finally {
    watch.cancel();
  }
  return out;
}

describe('route feed in parts', () => {
  it('sends a router that takes parts its snapshot a part at a time, every part but the last saying more follow', async () => {
    const parts = await firstMessages(0n, true, 3);
    expect(parts.map((p) => p.upserts.length)).toEqual([2, 2, 1]);
    expect(parts.map((p) => p.snapshot)).toEqual([true, true, true]);
    expect(parts.map((p) => p.snapshotContinues)).toEqual([true, true, false]);
    expect(new Set(parts.map((p) => p.revision)).size).toBe(1);
    expect(parts.flatMap((p) => p.upserts.map((u) => u.tenantId)).sort()).toEqual(TENANTS);
  });

  it('sends a router that does not ask for parts the whole table in one message', async () => {
    const [whole] = await firstMessages(0n, false, 1);
    expect(whole?.snapshot).toBe(true);
    expect(whole?.snapshotContinues).toBe(false);
    expect(whole?.upserts.map((u) => u.tenantId).sort()).toEqual(TENANTS);
  });

  it('sends a long catch-up as ordinary deltas in revision order, the last at the current revision', async () => {
    const [snapshot] = await firstMessages(0n, true, 3).then((p) => p.slice(-1));
    const since = snapshot?.revision ?? 0n;
    for (const id of TENANTS) await h.operator.setTenantAccess({ id, externalAccess: true });
    const [whole] = await firstMessages(0n, false, 1);
    const deltas = await firstMessages(since, false, 3);
    expect(deltas.map((d) => d.snapshot)).toEqual([false, false, false]);
    expect(deltas.map((d) => d.upserts.length)).toEqual([2, 2, 1]);
    const revisions = deltas.map((d) => d.revision);
    expect([...revisions].sort((a, b) => (a < b ? -1 : 1))).toEqual(revisions);
    expect(revisions.at(-1)).toBe(whole?.revision);
    expect(deltas.flatMap((d) => d.upserts.filter((u) => u.externalAccess).map((u) => u.tenantId)).sort()).toEqual(TENANTS);
  });
});
