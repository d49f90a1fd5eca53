/**
 * What an agent must run: the desired instance of each placement on its host. Users and
 * databases travel declaratively inside the instance (roles with their SCRAM verifiers, databases
 * with owners, and the ones to drop), so an agent that reconnects converges from the spec alone;
 * the instance revision tells which shape a report is about.
 */
import type { InstanceRole, Resources, RunState } from '@pgs/tenancy';
import type { PlacementRecord, TenantRecord } from './model.js';
import type { StoreTx } from './store/store.js';
import type { VersionCatalog } from './versions.js';

/** One desired instance, in domain terms (mapped to InstanceSpec at the agent edge). */
export interface DesiredInstance {
  tenantId: string;
  specRevision: number;
  role: InstanceRole;
  resources: Resources;
  version: string;
  image: string;
  runState: RunState;
  roles: { name: string; scramVerifier: string; login: boolean }[];
  databases: { name: string; owner: string }[];
  dropRoles: string[];
  dropDatabases: string[];
  /** The port the instance has (0 = the agent picks one and keeps it). */
  port: number;
  primaryAddress: string;
  primaryPort: number;
}

/** The desired instance of one placement. */
export function desiredInstance(tx: StoreTx, tenant: TenantRecord, placement: PlacementRecord, versions: VersionCatalog): DesiredInstance {
  const users = tx.listUsers(tenant.id);
  const databases = tx.listDatabases(tenant.id);
  const version = versions.resolve(tenant.spec.version);
  const primary = placement.role === 'REPLICA' ? tx.listPlacements({ tenantId: tenant.id }).find((p) => p.role === 'PRIMARY') : undefined;
  return {
    tenantId: tenant.id,
    specRevision: tenant.instanceRevision,
    role: placement.role,
    resources: tenant.spec.resources,
    version: version.id,
    image: version.image,
    runState: tenant.spec.runState,
    roles: users.filter((u) => u.status !== 'DELETING').map((u) => ({ name: u.name, scramVerifier: u.scramVerifier, login: true })),
    databases: databases.filter((d) => d.status !== 'DELETING').map((d) => ({ name: d.name, owner: d.owner })),
    dropRoles: users.filter((u) => u.status === 'DELETING').map((u) => u.name),
    dropDatabases: databases.filter((d) => d.status === 'DELETING').map((d) => d.name),
    port: placement.port,
    primaryAddress: primary?.address ?? '',
    primaryPort: primary?.port ?? 0,
  };
}

/** What one host must hold: upserts, and explicit removals of tenants being deleted. */
export interface HostDesiredSet {
  instances: DesiredInstance[];
  removedTenantIds: string[];
}

/**
 * The desired set of `hostId`, limited to `tenantIds` when given (a delta). A tenant with no
 * placement on the host is not mentioned at all: only an explicit deletion removes data.
 */
export function desiredSetForHost(tx: StoreTx, hostId: string, versions: VersionCatalog, tenantIds?: ReadonlySet<string>): HostDesiredSet {
  const out: HostDesiredSet = { instances: [], removedTenantIds: [] };
  for (const placement of tx.listPlacements({ hostId })) {
    if (tenantIds && !tenantIds.has(placement.tenantId)) continue;
    const tenant = tx.getTenant(placement.tenantId);
    if (!tenant) continue;
    if (tenant.deleting) out.removedTenantIds.push(tenant.id);
    else out.instances.push(desiredInstance(tx, tenant, placement, versions));
  }
  return out;
}
