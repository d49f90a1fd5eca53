/**
 * The placement vocabulary shared by placeTenants and planDrain: what a host offers, what a
 * tenant asks for, the policy, and the answers.
 */
import type { Resources } from './resources.js';
import type { HostState } from './statuses.js';

/** A host as the scheduler sees it. */
export interface HostCandidate {
  id: string;
  state: HostState;
  /** Cordoned hosts take no new placements. */
  cordoned: boolean;
  /** Draining hosts take no new placements and their tenants move away. */
  draining: boolean;
  capacity: Resources;
  /** Sum of the requests of the placements already on this host. */
  allocated: Resources & { instances: number };
  labels: Record<string, string>;
  /** At most this many instances on the host; absent = no limit. */
  maxInstances?: number;
  /** Instances placed on this host that it has not created yet (creations in flight); absent = 0. */
  creating?: number;
  /**
   * Instances the host can create at once from ready copies of its template (process runtime
   * spares); absent = not known or not applicable. Used when maxCreatingPerHost is on.
   */
  readySpares?: number;
  /**
   * PostgreSQL majors the host can run, e.g. ['15', '18']; absent = not reported (any major is
   * taken to fit, as before hosts reported them).
   */
  postgresMajors?: readonly string[];
  /** Of those, the majors whose pg_basebackup the host has (it can clone a replica of them); absent = all. */
  replicaMajors?: readonly string[];
}

/** One tenant to place: `nodes` instances (a primary and nodes - 1 replicas), each asking `resources`. */
export interface PlacementRequest {
  tenantId: string;
  resources: Resources;
  nodes: number;
  /** Labels a host must carry, every one of them, e.g. { region: 'eu' }. */
  placement: Record<string, string>;
  /** Hosts this tenant already uses: new instances avoid them, and their zones. */
  excludeHosts?: readonly string[];
  /** The PostgreSQL major every instance runs: only hosts that run it take one; absent = any host. */
  version?: string;
  /** The tenant has replicas: its hosts need the tools to clone one of `version` (pg_basebackup). */
  replicated?: boolean;
}

/** How to choose among hosts that fit. */
export interface PlacementPolicy {
  /** 'binpack': the host with the least free memory that fits; 'spread': the one with the most. */
  strategy: 'binpack' | 'spread';
  /** CPU may be promised this many times over (>= 1). Memory and disk never are. */
  cpuOvercommit: number;
  /** The host label naming its failure zone; replicas of a tenant go to different zones. */
  zoneLabel?: string;
  /**
   * A host already creating this many instances is passed over while another host that fits is
   * creating fewer. When every host that fits is at the limit, the burst goes on in chunks of this
   * size from the least busy level up (each host to twice the limit, then three times...), each
   * chunk in the strategy's order. A host creates its instances with its own disk and cores (a
   * data directory copy, a server start), so a burst piled on the one host bin-packing picks
   * queues there while the other hosts idle. Only instances in flight count: once created,
   * bin-packing packs as before. 0 = no limit (creations in flight are ignored).
   *
   * With a limit, a host with a ready spare left (HostCandidate.readySpares above its creations
   * in flight) is preferred first, in the strategy's order and whatever the limit: a create there
   * waits for no copy, while a host whose spares ran out (bin-packing sends every create to the
   * same host) would copy first.
   */
  maxCreatingPerHost?: number;
}

/** The defaults: bin-pack, no over-commit, zones from the 'zone' label, creations in flight ignored. */
export const DEFAULT_PLACEMENT_POLICY: Readonly<Required<PlacementPolicy>> = Object.freeze({
  strategy: 'binpack',
  cpuOvercommit: 1,
  zoneLabel: 'zone',
  maxCreatingPerHost: 0,
});

/** Where a tenant's instances go: hostIds[0] is the primary's host, the rest its replicas'. */
export interface PlacementDecision {
  tenantId: string;
  hostIds: string[];
}

/** A tenant that could not be placed, and why (in words an operator can act on). */
export interface Unplaced {
  tenantId: string;
  reason: string;
}
