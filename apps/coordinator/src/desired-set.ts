/**
 * What an agent must run: the desired instance of each placement on its host. Users and
 * databases travel declaratively inside the instance (roles with their SCRAM verifiers, databases
 * with owners, and the ones to drop), so an agent that reconnects converges from the spec alone;
 * the instance revision tells which shape a report is about.
 */
import { replicationSlotName, standbyName, syncConfigFor, type DesiredInstance } from '@pgs/tenancy';
import type { KeyRing } from '@pgs/security';
import type { PlacementRecord, TenantRecord } from './model.js';
import { replicationCredentials } from './replication-secrets.js';
import type { StoreTx } from './store/store.js';
import type { SyncQuorums } from './sync-quorums.js';
import type { VersionCatalog } from './versions.js';

/** What building a desired set needs for replication. */
export interface ReplicationDeps {
  keys: KeyRing;
  quorums: SyncQuorums;
}

/** One desired instance, in domain terms (mapped to InstanceSpec at the agent edge). */
export type { DesiredInstance } from '@pgs/tenancy';

/** The replicas whose host is not DOWN: the standbys a primary can wait for. */
export function liveStandbys(tx: StoreTx, replicas: readonly PlacementRecord[]): string[] {
  return replicas.filter((p) => tx.getHost(p.hostId)?.state !== 'DOWN').map((p) => p.hostId).sort();
}

/** The desired instance of one placement. */
export function desiredInstance(tx: StoreTx, tenant: TenantRecord, placement: PlacementRecord, versions: VersionCatalog, replication?: ReplicationDeps): DesiredInstance {
  const users = tx.listUsers(tenant.id);
  const databases = tx.listDatabases(tenant.id);
  const version = versions.resolve(tenant.spec.version);
  const all = tx.listPlacements({ tenantId: tenant.id });
  const primary = placement.role === 'REPLICA' ? all.find((p) => p.role === 'PRIMARY') : undefined;
  const replicas = all.filter((p) => p.role === 'REPLICA');
  const credentials = replication && all.length > 1 ? replicationCredentials(tx, replication.keys, tenant.id) : undefined;
  const isPrimary = placement.role === 'PRIMARY';
  let synchronous = '';
  if (isPrimary && credentials) {
    const sync = syncConfigFor(tenant.spec.syncReplicas, liveStandbys(tx, replicas).map(standbyName));
    synchronous = sync.setting;
    replication?.quorums.sent(tenant.id, tenant.instanceRevision, { k: sync.k, standbys: sync.names });
  }
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
    synchronousStandbyNames: synchronous,
    replicationSecret: credentials ? (isPrimary ? credentials.verifier : credentials.password) : '',
    replicationUser: credentials?.user ?? '',
    fenceOnLeaseExpiry: isPrimary && credentials !== undefined,
    replicationSlots: isPrimary && credentials ? replicas.map((r) => replicationSlotName(r.hostId)).sort() : [],
    replicationSlot: !isPrimary && credentials ? replicationSlotName(placement.hostId) : '',
    standbyName: !isPrimary && credentials ? standbyName(placement.hostId) : '',
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
export function desiredSetForHost(tx: StoreTx, hostId: string, versions: VersionCatalog, tenantIds?: ReadonlySet<string>, replication?: ReplicationDeps): HostDesiredSet {
  const out: HostDesiredSet = { instances: [], removedTenantIds: [] };
  for (const placement of tx.listPlacements({ hostId })) {
    if (tenantIds && !tenantIds.has(placement.tenantId)) continue;
    const tenant = tx.getTenant(placement.tenantId);
    if (!tenant) continue;
    if (tenant.deleting) out.removedTenantIds.push(tenant.id);
    else out.instances.push(desiredInstance(tx, tenant, placement, versions, replication));
  }
  return out;
}
