/** Route states as the router uses them (the proto enum's suffixes). */
export type RouteStateName = 'UNSPECIFIED' | 'ROUTABLE' | 'PROVISIONING' | 'STOPPED' | 'HOST_DOWN' | 'FAILOVER' | 'SUSPENDED' | 'ERROR' | 'SWITCHING';

/** How the router serves a tenant's clients (README "Pool modes"). */
export type PoolModeName = 'NONE' | 'SESSION' | 'TRANSACTION';

/** A tenant's login role as the router needs it to authenticate: a SCRAM verifier, never a password. */
export interface RouteUserEntry {
  name: string;
  scramVerifier: string;
}

/** Where a tenant's primary is and whether clients may reach it: one row of the route cache. */
export interface RouteEntry {
  tenantId: string;
  hostId: string;
  address: string;
  port: number;
  state: RouteStateName;
  /** Text safe to show to a client when the route is not routable. */
  reason: string;
  externalAccess: boolean;
  /** Per-router connection limit for the tenant; 0 = unlimited. */
  connectionLimit: number;
  /** Route-table revision at which this route last changed. */
  revision: number;
  /** NONE: bytes pass through and the instance authenticates; otherwise the router authenticates and pools. */
  poolMode: PoolModeName;
}

/** A route as the feed delivers it: with the tenant's users (kept in their own cache table). */
export interface RouteUpsert extends RouteEntry {
  users?: readonly RouteUserEntry[];
}

/** Another router of the fleet, as far as cancel forwarding needs it. */
export interface RouterPeerEntry {
  routerId: string;
  /** host:port where the peer accepts forwarded CancelRequests. */
  cancelAddress: string;
}

/** One batch from the route feed, applied to the cache in one transaction. */
export interface RouteBatch {
  /** true: the upserts replace the whole table. */
  snapshot: boolean;
  /** The revision the cache is at after this batch. */
  revision: number;
  upserts: RouteUpsert[];
  deletedTenantIds: string[];
  /** The fleet's routers, when this batch carries them (snapshot or a change); undefined = unchanged. */
  routers: RouterPeerEntry[] | undefined;
  /** TLS to instances (verify-full against the fleet CA); undefined = unchanged. */
  instanceTls?: boolean;
}
