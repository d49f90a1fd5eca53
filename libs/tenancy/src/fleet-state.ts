/**
 * The scheduler's working copy of the fleet: free resources per host in typed arrays, and one
 * memory-sorted HostIndex per distinct set of placement constraints (built on first use), so
 * each decision is a binary search plus a short walk rather than a scan of every host.
 */
import { ValidationError } from './errors.js';
import { HostIndex } from './host-index.js';
import type { HostCandidate, PlacementPolicy } from './placement-types.js';
import { DEFAULT_PLACEMENT_POLICY } from './placement-types.js';
import type { Resources } from './resources.js';
import { formatCpu, formatSize } from './units.js';

/** The hosts and zones one tenant already occupies while its instances are being placed. */
export interface TenantFootprint {
  hosts: number[];
  zones: Set<string>;
}

/** Validates and completes a partial policy. */
export function resolvePolicy(policy: Partial<PlacementPolicy> = {}): Required<PlacementPolicy> {
  const resolved = { ...DEFAULT_PLACEMENT_POLICY, ...policy };
  if (resolved.strategy !== 'binpack' && resolved.strategy !== 'spread') {
    throw new ValidationError('policy.strategy', resolved.strategy, "'binpack' or 'spread'");
  }
  if (typeof resolved.cpuOvercommit !== 'number' || !Number.isFinite(resolved.cpuOvercommit) || resolved.cpuOvercommit < 1) {
    throw new ValidationError('policy.cpu_overcommit', resolved.cpuOvercommit, 'a number, 1 or more (1 = no over-commit)');
  }
  if (typeof resolved.zoneLabel !== 'string' || resolved.zoneLabel === '') {
    throw new ValidationError('policy.zone_label', resolved.zoneLabel, 'a label key');
  }
  if (!Number.isSafeInteger(resolved.maxCreatingPerHost) || resolved.maxCreatingPerHost < 0) {
    throw new ValidationError('policy.max_creating_per_host', resolved.maxCreatingPerHost, 'a whole number, 0 or more (0 = no limit)');
  }
  return resolved;
}

/** Canonical text of a constraint map: the key of its HostIndex. */
export function constraintKey(placement: Record<string, string>): string {
  const keys = Object.keys(placement);
  if (keys.length === 0) return '';
  return keys
    .sort()
    .map((k) => `${k}=${placement[k]}`)
    .join(',');
}

/** The PostgreSQL major a tenant's instances run, and whether the host must be able to clone replicas of it. */
export interface VersionNeed {
  version: string;
  replicated: boolean;
}

/** True when the host can run what `need` asks (no need, or the host did not say what it runs: it runs anything). */
export function runsVersion(host: HostCandidate, need: VersionNeed | undefined): boolean {
  if (need === undefined) return true;
  if (host.postgresMajors !== undefined && !host.postgresMajors.includes(need.version)) return false;
  return !need.replicated || host.replicaMajors === undefined || host.replicaMajors.includes(need.version);
}

/** How many rules explain counts hosts under. */
const EXPLAIN_RULES = 13;

function needKey(need: VersionNeed | undefined): string {
  return need === undefined ? '' : `${need.version}${need.replicated ? '+r' : ''}`;
}

/** Free resources and indexes of a fleet during one scheduling run. */
export class FleetState {
  readonly hosts: readonly HostCandidate[];
  readonly policy: Required<PlacementPolicy>;
  private readonly byId = new Map<string, number>();
  private readonly freeCpu: Float64Array;
  private readonly freeMemory: Float64Array;
  private readonly freeDisk: Float64Array;
  private readonly freeSlots: Float64Array;
  /** Instances each host is still creating (its own, and this run's placements on it). */
  private readonly creating: Float64Array;
  /** Ready spares each host reported (0 when unknown). */
  private readonly spares: Float64Array;
  /** Eligible hosts with a ready spare left (creating < spares): the spare pass runs only when there are some. */
  private withSpare = 0;
  private readonly eligible: Uint8Array;
  private readonly zones: (string | undefined)[];
  private readonly indexes = new Map<string, HostIndex>();
  /** For each host, the indexes it belongs to (to re-sort them when its memory changes). */
  private readonly memberOf: HostIndex[][];
  /** Grows with every allocate (taken or given back): equal values mean the free resources did not change. */
  private allocations = 0;

  /** `unavailable` names hosts to treat as taking no placements (e.g. the one being drained). */
  constructor(hosts: readonly HostCandidate[], policy: Partial<PlacementPolicy> = {}, unavailable: ReadonlySet<string> = new Set()) {
    this.policy = resolvePolicy(policy);
    // Host numbers follow id order, so ties break by id and the input order never matters.
    this.hosts = [...hosts].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const n = this.hosts.length;
    this.freeCpu = new Float64Array(n);
    this.freeMemory = new Float64Array(n);
    this.freeDisk = new Float64Array(n);
    this.freeSlots = new Float64Array(n);
    this.creating = new Float64Array(n);
    this.spares = new Float64Array(n);
    this.eligible = new Uint8Array(n);
    this.zones = new Array<string | undefined>(n);
    this.memberOf = Array.from({ length: n }, () => []);
    for (let h = 0; h < n; h++) {
      const host = this.hosts[h] as HostCandidate;
      if (this.byId.has(host.id)) throw new ValidationError('hosts', host.id, 'distinct host ids');
      this.byId.set(host.id, h);
      this.freeCpu[h] = host.capacity.cpuMillis * this.policy.cpuOvercommit - host.allocated.cpuMillis;
      this.freeMemory[h] = host.capacity.memoryMib - host.allocated.memoryMib;
      this.freeDisk[h] = host.capacity.diskMib - host.allocated.diskMib;
      this.freeSlots[h] = host.maxInstances === undefined ? Infinity : host.maxInstances - host.allocated.instances;
      this.creating[h] = host.creating ?? 0;
      this.spares[h] = host.readySpares ?? 0;
      this.eligible[h] = host.state === 'READY' && !host.cordoned && !host.draining && !unavailable.has(host.id) ? 1 : 0;
      this.zones[h] = host.labels[this.policy.zoneLabel];
      if (this.eligible[h] === 1 && this.hasSpare(h)) this.withSpare += 1;
    }
  }

  private hasSpare(h: number): boolean {
    return (this.creating[h] as number) < (this.spares[h] as number);
  }

  /** Host number of an id, or undefined for a host not in the fleet. */
  hostNumber(id: string): number | undefined {
    return this.byId.get(id);
  }

  /** The id of host number h. */
  hostId(h: number): string {
    return (this.hosts[h] as HostCandidate).id;
  }

  /** A footprint holding the given hosts (unknown ids are ignored) and their zones. */
  footprint(hostIds: readonly string[] = []): TenantFootprint {
    const footprint: TenantFootprint = { hosts: [], zones: new Set() };
    for (const id of hostIds) {
      const h = this.byId.get(id);
      if (h !== undefined) this.occupy(footprint, h);
    }
    return footprint;
  }

  /** Records that the tenant now has an instance on host h. */
  occupy(footprint: TenantFootprint, h: number): void {
    footprint.hosts.push(h);
    const zone = this.zones[h];
    if (zone !== undefined) footprint.zones.add(zone);
  }

  /** The index of eligible hosts carrying every constraint label (and running `version`), built on first use. */
  private indexFor(placement: Record<string, string>, need: VersionNeed | undefined): HostIndex {
    const key = `${constraintKey(placement)}|${needKey(need)}`;
    let index = this.indexes.get(key);
    if (index === undefined) {
      const entries = Object.entries(placement);
      const members: number[] = [];
      for (let h = 0; h < this.hosts.length; h++) {
        const host = this.hosts[h] as HostCandidate;
        if (this.eligible[h] === 1 && entries.every(([k, v]) => host.labels[k] === v) && runsVersion(host, need)) members.push(h);
      }
      index = new HostIndex(this.freeMemory, members);
      for (const h of members) this.memberOf[h]?.push(index);
      this.indexes.set(key, index);
    }
    return index;
  }

  /** True when host h has room for `r` and the tenant has neither an instance nor a zone there. */
  private fits(h: number, r: Resources, footprint: TenantFootprint): boolean {
    if ((this.freeCpu[h] as number) < r.cpuMillis || (this.freeDisk[h] as number) < r.diskMib || (this.freeSlots[h] as number) < 1) {
      return false;
    }
    if (footprint.hosts.includes(h)) return false;
    const zone = this.zones[h];
    return zone === undefined || !footprint.zones.has(zone);
  }

  /** The host for one more instance of a tenant under the policy, or undefined when none fits. */
  choose(resources: Resources, placement: Record<string, string>, footprint: TenantFootprint, need?: VersionNeed): number | undefined {
    const index = this.indexFor(placement, need);
    const limit = this.policy.maxCreatingPerHost;
    if (limit === 0) return this.walk(index, resources, footprint, Infinity).host;
    if (this.withSpare > 0) {
      const spare = this.walk(index, resources, footprint, Infinity, true).host;
      if (spare !== undefined) return spare;
    }
    const first = this.walk(index, resources, footprint, limit);
    if (first.host !== undefined || first.fewest === undefined) return first.host;
    // Every host that fits is creating `limit` or more: the burst goes on in chunks of `limit`,
    // from the least busy level up, each chunk in the strategy's order (a huge backlog stays
    // packed in chunks instead of going round-robin over the whole fleet one instance at a time).
    const level = (Math.floor((this.creating[first.fewest] as number) / limit) + 1) * limit;
    return this.walk(index, resources, footprint, level).host ?? first.fewest;
  }

  /**
   * The strategy's walk over the hosts of `index`: the first that fits with fewer than `below`
   * creations in flight (and, with `spareOnly`, a ready spare left), else (`fewest`) the one that
   * fits with the fewest, first in walk order.
   */
  private walk(index: HostIndex, resources: Resources, footprint: TenantFootprint, below: number, spareOnly = false): { host?: number; fewest?: number } {
    let fewest: number | undefined;
    const accept = (h: number): boolean => {
      if (spareOnly && !this.hasSpare(h)) return false;
      if (!this.fits(h, resources, footprint)) return false;
      const creating = this.creating[h] as number;
      if (creating < below) return true;
      if (fewest === undefined || creating < (this.creating[fewest] as number)) fewest = h;
      return false;
    };
    if (this.policy.strategy === 'binpack') {
      // Best fit: the first host with enough memory; walk on only past hosts short of something else.
      for (let i = index.lowerBound(resources.memoryMib, -1); i < index.size; i++) {
        const h = index.at(i);
        if (accept(h)) return { host: h };
      }
      return { fewest };
    }
    for (let i = index.size - 1; i >= 0; i--) {
      const h = index.at(i);
      if ((this.freeMemory[h] as number) < resources.memoryMib) break;
      if (accept(h)) return { host: h };
    }
    return { fewest };
  }

  /** Changes whenever free resources change: a decision taken at one version holds while it stays the same. */
  get version(): number {
    return this.allocations;
  }

  /** Takes (sign 1) or gives back (sign -1) one instance's resources on host h. */
  allocate(h: number, r: Resources, sign: 1 | -1 = 1): void {
    this.allocations++;
    const previous = this.freeMemory[h] as number;
    this.freeCpu[h] = (this.freeCpu[h] as number) - sign * r.cpuMillis;
    this.freeMemory[h] = previous - sign * r.memoryMib;
    this.freeDisk[h] = (this.freeDisk[h] as number) - sign * r.diskMib;
    this.freeSlots[h] = (this.freeSlots[h] as number) - sign;
    // A new placement is an instance the host has to create (from a spare, while it has one).
    const hadSpare = this.eligible[h] === 1 && this.hasSpare(h);
    this.creating[h] = (this.creating[h] as number) + sign;
    const hasSpare = this.eligible[h] === 1 && this.hasSpare(h);
    if (hadSpare !== hasSpare) this.withSpare += hasSpare ? 1 : -1;
    if (r.memoryMib !== 0) for (const index of this.memberOf[h] ?? []) index.update(h, previous);
  }

  /**
   * Why no host took an instance: every host counted once, under the first rule it breaks.
   * O(hosts), paid only for failures (and by placeTenants once per distinct request while nothing
   * was allocated in between).
   */
  explain(resources: Resources, placement: Record<string, string>, footprint: TenantFootprint, need?: VersionNeed): string {
    // Counted per rule number in a fixed order, most fundamental first, so reasons read the same
    // whatever the host ids (a counter array, not a map: this loop runs over every host).
    const counts = new Uint32Array(EXPLAIN_RULES);
    const entries = Object.entries(placement);
    for (let h = 0; h < this.hosts.length; h++) {
      const rule = this.brokenRule(h, resources, entries, footprint, need);
      counts[rule] = (counts[rule] as number) + 1;
    }
    const ask = `cpu ${formatCpu(resources.cpuMillis)}, memory ${formatSize(resources.memoryMib)}, disk ${formatSize(resources.diskMib)}`;
    if (this.hosts.length === 0) return `no hosts in the fleet (asked ${ask})`;
    const names = [
      'down',
      'unreachable',
      'draining',
      'cordoned',
      'excluded',
      `without PostgreSQL ${need?.version ?? ''}${need?.replicated ? ' and its pg_basebackup' : ''}`,
      `not matching ${constraintKey(placement)}`,
      'already holding this tenant',
      'in a zone this tenant already uses',
      'short of memory',
      'short of cpu',
      'short of disk',
      'at their instance limit',
    ];
    const parts = names.flatMap((why, rule) => ((counts[rule] as number) > 0 ? [`${counts[rule]} ${why}`] : []));
    return `no host fits (asked ${ask}) among ${this.hosts.length} hosts: ${parts.join(', ')}`;
  }

  /** The number (in explain's order) of the first rule host h breaks for one more instance. */
  private brokenRule(h: number, resources: Resources, entries: [string, string][], footprint: TenantFootprint, need: VersionNeed | undefined): number {
    const host = this.hosts[h] as HostCandidate;
    if (host.state !== 'READY') return host.state === 'DOWN' ? 0 : 1;
    if (host.draining) return 2;
    if (host.cordoned) return 3;
    if (this.eligible[h] !== 1) return 4;
    if (!runsVersion(host, need)) return 5;
    if (!entries.every(([k, v]) => host.labels[k] === v)) return 6;
    if (footprint.hosts.includes(h)) return 7;
    const zone = this.zones[h];
    if (zone !== undefined && footprint.zones.has(zone)) return 8;
    if ((this.freeMemory[h] as number) < resources.memoryMib) return 9;
    if ((this.freeCpu[h] as number) < resources.cpuMillis) return 10;
    if ((this.freeDisk[h] as number) < resources.diskMib) return 11;
    return 12;
  }
}
