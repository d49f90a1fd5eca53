/** Builders for tests: small valid defaults, override what the test is about. */
import type { PlacementView } from '../lifecycle.js';
import type { HostCandidate, PlacementRequest } from '../placement-types.js';
import type { Resources, TenantSpec } from '../resources.js';
import { DEFAULT_TENANT_SPEC } from '../resources.js';

/** A READY host with 16 cores, 64 GiB, 1 TiB disk, nothing allocated. */
export function aHost(id: string, over: Partial<HostCandidate> = {}): HostCandidate {
  return {
    id,
    state: 'READY',
    cordoned: false,
    draining: false,
    capacity: { cpuMillis: 16_000, memoryMib: 65_536, diskMib: 1_048_576 },
    allocated: { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 },
    labels: {},
    ...over,
  };
}

/** Resources with defaults of 1 core, 1 GiB, 8 GiB disk. */
export function res(over: Partial<Resources> = {}): Resources {
  return { cpuMillis: 1_000, memoryMib: 1_024, diskMib: 8_192, ...over };
}

/** A one-node request with default resources. */
export function aRequest(tenantId: string, over: Partial<PlacementRequest> = {}): PlacementRequest {
  return { tenantId, resources: res(), nodes: 1, placement: {}, ...over };
}

/** A valid spec with overrides (resources merged). */
export function aSpec(over: Partial<Omit<TenantSpec, 'resources'>> & { resources?: Partial<Resources> } = {}): TenantSpec {
  const { resources, ...rest } = over;
  return { ...DEFAULT_TENANT_SPEC, ...rest, resources: { ...DEFAULT_TENANT_SPEC.resources, ...resources } };
}

/** A realized, healthy primary on a READY host. */
export function aPlacement(over: Partial<PlacementView> = {}): PlacementView {
  return { hostId: 'h1', role: 'PRIMARY', realization: 'REALIZED', hostState: 'READY', healthy: true, ...over };
}
