// The one place where route-feed protobuf messages become router domain values (uint64 -> number).
import type { MessageInitShape } from '@bufbuild/protobuf';
import { PoolMode, RouteState, type Route, type RouterPeer, type RouteSchema, type WatchRoutesRequestSchema, type WatchRoutesResponse } from '@pgs/proto';
import type { PoolModeName, RouteBatch, RouteStateName, RouterPeerEntry, RouteUpsert } from './route.js';

function revisionToNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < 0n) throw new RangeError(`${what} ${value} is outside the safe integer range`);
  return Number(value);
}

/** The domain name of a proto RouteState (unknown values read as UNSPECIFIED, i.e. not routable). */
export function routeStateName(state: RouteState): RouteStateName {
  const name = RouteState[state] as RouteStateName | undefined;
  return name ?? 'UNSPECIFIED';
}

/**
 * The pool mode of a proto Route. UNSPECIFIED comes from a coordinator that predates pooling (and
 * sends no users): such a route keeps the passthrough it had.
 */
export function poolModeName(mode: PoolMode): PoolModeName {
  if (mode === PoolMode.SESSION) return 'SESSION';
  if (mode === PoolMode.TRANSACTION) return 'TRANSACTION';
  return 'NONE';
}

/** A proto Route as a cache row, with its users. */
export function routeFromProto(route: Route): RouteUpsert {
  return {
    tenantId: route.tenantId,
    hostId: route.hostId,
    address: route.address,
    port: route.port,
    state: routeStateName(route.state),
    reason: route.reason,
    externalAccess: route.externalAccess,
    connectionLimit: route.connectionLimit,
    revision: revisionToNumber(route.revision, 'route revision'),
    poolMode: poolModeName(route.poolMode),
    users: route.users.map((u) => ({ name: u.name, scramVerifier: u.scramVerifier })),
  };
}

/** A proto RouterPeer as the router keeps it. */
export function peerFromProto(peer: RouterPeer): RouterPeerEntry {
  return { routerId: peer.routerId, cancelAddress: peer.cancelAddress };
}

/** A WatchRoutesResponse as a batch for the cache. */
export function batchFromProto(res: WatchRoutesResponse): RouteBatch {
  return {
    snapshot: res.snapshot,
    revision: revisionToNumber(res.revision, 'batch revision'),
    upserts: res.upserts.map(routeFromProto),
    deletedTenantIds: [...res.deletedTenantIds],
    routers: res.snapshot || res.routersChanged ? res.routers.map(peerFromProto) : undefined,
    // On every batch: a coordinator that predates inner TLS sends none, and its instances serve none.
    instanceTls: res.instanceTls,
  };
}

/** The WatchRoutes request for a cache at `sinceRevision`. */
export function watchRequest(sinceRevision: number, routerId: string, cancelAddress: string): MessageInitShape<typeof WatchRoutesRequestSchema> {
  // Parts: a big fleet's table does not fit in one message under gRPC's default limit.
  return { sinceRevision: BigInt(sinceRevision), routerId, cancelAddress, snapshotInParts: true };
}

/** Domain -> proto, for fakes and tools that serve a route feed (tests, the benchmark). */
export function routeToProto(route: RouteUpsert): MessageInitShape<typeof RouteSchema> {
  return {
    ...route,
    state: RouteState[route.state],
    revision: BigInt(route.revision),
    poolMode: PoolMode[route.poolMode],
    users: route.users ? [...route.users] : [],
  };
}

/**
 * Gathers the parts of a snapshot (WatchRoutesResponse.snapshot_continues) into the one batch the
 * cache applies: `add` returns undefined while parts are still to come, then the whole snapshot;
 * any other batch passes through.
 */
export class SnapshotParts {
  #upserts: RouteUpsert[] | undefined;

  add(res: WatchRoutesResponse): RouteBatch | undefined {
    const batch = batchFromProto(res);
    if (this.#upserts !== undefined && !batch.snapshot) throw new Error('the route feed sent a delta in the middle of a snapshot');
    if (!batch.snapshot || (this.#upserts === undefined && !res.snapshotContinues)) return batch;
    this.#upserts ??= [];
    for (const u of batch.upserts) this.#upserts.push(u);
    if (res.snapshotContinues) return undefined;
    const whole = { ...batch, upserts: this.#upserts };
    this.#upserts = undefined;
    return whole;
  }

  /** Routes gathered so far of a snapshot not yet complete. */
  get pending(): number {
    return this.#upserts?.length ?? 0;
  }
}
