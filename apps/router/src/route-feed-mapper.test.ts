import { create } from '@bufbuild/protobuf';
import { RouteSchema, RouteState, WatchRoutesResponseSchema, type Route, type WatchRoutesResponse } from '@pgs/proto';
import { describe, expect, it } from 'vitest';
import { SnapshotParts } from './route-feed-mapper.js';

function route(tenantId: string): Route {
  return create(RouteSchema, { tenantId, hostId: 'h1', address: '127.0.0.11', port: 20001, state: RouteState.ROUTABLE, revision: 7n });
}

function message(over: {
  snapshot?: boolean;
  snapshotContinues?: boolean;
  revision?: bigint;
  deletedTenantIds?: string[];
  tenants?: string[];
}): WatchRoutesResponse {
  const { tenants = [], ...rest } = over;
  return create(WatchRoutesResponseSchema, { revision: 7n, upserts: tenants.map(route), ...rest });
}

describe('SnapshotParts', () => {
  it('holds the parts of a snapshot and gives the whole table at the last', () => {
    const parts = new SnapshotParts();
    expect(parts.add(message({ snapshot: true, snapshotContinues: true, tenants: ['a', 'b'] }))).toBeUndefined();
    expect(parts.add(message({ snapshot: true, snapshotContinues: true, tenants: ['c', 'd'] }))).toBeUndefined();
    expect(parts.pending).toBe(4);
    const whole = parts.add(message({ snapshot: true, tenants: ['e'] }));
    expect(whole?.snapshot).toBe(true);
    expect(whole?.revision).toBe(7);
    expect(whole?.upserts.map((u) => u.tenantId)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(parts.pending).toBe(0);
  });

  it('passes a snapshot in one message and deltas through as they are', () => {
    const parts = new SnapshotParts();
    expect(parts.add(message({ snapshot: true, tenants: ['a'] }))?.upserts.map((u) => u.tenantId)).toEqual(['a']);
    const delta = parts.add(message({ snapshot: false, revision: 8n, tenants: ['b'], deletedTenantIds: ['a'] }));
    expect(delta).toMatchObject({ snapshot: false, revision: 8, deletedTenantIds: ['a'] });
  });

  it('refuses a delta in the middle of a snapshot (the stream is then dropped and the cache left as it was)', () => {
    const parts = new SnapshotParts();
    parts.add(message({ snapshot: true, snapshotContinues: true, tenants: ['a'] }));
    expect(() => parts.add(message({ snapshot: false, revision: 8n, tenants: ['b'] }))).toThrow(/middle of a snapshot/);
  });
});
