/**
 * The status vocabularies shared by the coordinator, agents, routers and pgsctl. The strings are
 * the proto enum names without their prefix (TENANT_STATUS_ACTIVE -> 'ACTIVE'), so the apps'
 * mappers convert with a table and no guessing.
 */

/** Every tenant status, in the proto's order. */
export const TENANT_STATUSES = [
  'NEW',
  'IN_PROGRESS',
  'ACTIVE',
  'ERROR',
  'STOPPING',
  'STOPPED',
  'UNAVAILABLE',
  'SUSPENDED',
  'DELETING',
  'FAILING_OVER',
  'RESTORING',
  'MOVING',
] as const;

/** The lifecycle status of a tenant (the public API's statuses plus stop, outage, suspend, delete, failover, restore). */
export type TenantStatus = (typeof TENANT_STATUSES)[number];

/** Every realization state of one placement. */
export const REALIZATIONS = ['PENDING', 'REALIZED', 'FAILED'] as const;

/** Per-placement realization: PENDING until the host reports it done (REALIZED) or FAILED. */
export type Realization = (typeof REALIZATIONS)[number];

/** Every host liveness state. */
export const HOST_STATES = ['READY', 'UNREACHABLE', 'DOWN'] as const;

/** Liveness of a host, derived by the coordinator from its agent stream and heartbeats. */
export type HostState = (typeof HOST_STATES)[number];

/** Every role a placement can have. */
export const INSTANCE_ROLES = ['PRIMARY', 'REPLICA'] as const;

/** The role of one placement of a tenant. */
export type InstanceRole = (typeof INSTANCE_ROLES)[number];

/** Whether an operator wants the tenant's instances running. */
export type RunState = 'RUNNING' | 'STOPPED';
