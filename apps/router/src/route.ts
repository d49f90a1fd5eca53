/** Route states as the router uses them (the proto enum's suffixes). */
export type RouteStateName = 'UNSPECIFIED' | 'ROUTABLE' | 'PROVISIONING' | 'STOPPED' | 'HOST_DOWN' | 'FAILOVER' | 'SUSPENDED' | 'ERROR';

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
  upserts: RouteEntry[];
  deletedTenantIds: string[];
  /** The fleet's routers, when this batch carries them (snapshot or a change); undefined = unchanged. */
  routers: RouterPeerEntry[] | undefined;
}
