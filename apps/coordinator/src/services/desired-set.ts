/**
 * What an agent must run: the desired instance of each placement on its host. Users and
 * databases travel declaratively inside the instance (roles with their SCRAM verifiers, databases
 * with owners, and the ones to drop), so an agent that reconnects converges from the spec alone;
 * the instance revision tells which shape a report is about.
 */
import {
  effectiveBackupPolicy,
  replicationSlotName,
  retentionDays,
  standbyName,
  syncConfigFor,
  waitsForPrimary,
  type DesiredInstance,
  type RunState,
  type InstanceBackup,
  type RestoreSource,
} from '@pgs/tenancy';
import type { KeyRing } from '@pgs/security';
import type { BackupSettings } from './backup-repository.js';
import { newPlacement, type PlacementRecord, type TenantRecord, type UpgradeRecord } from '../domain/model.js';
import { readAheadForDesiredSet } from './desired-set-reads.js';
import { replicationCredentials } from './replication-secrets.js';
import { oldInstancesOn, restoreFailedHere } from './restore-progress.js';
import type { StoreReads } from '../store/contract.js';
import type { RetiringInstances } from '../live/retiring-instances.js';
import type { GoneInstances } from '../live/gone-instances.js';
import type { SyncQuorums } from '../live/sync-quorums.js';
import type { VersionCatalog } from './versions.js';

/** What building a desired set needs for replication. */
export interface ReplicationDeps {
  keys: KeyRing;
  quorums: SyncQuorums;
  /** The fleet's backup repository; undefined = backups off (no archiving, no restores). */
  backup?: BackupSettings | undefined;
  /** Instances moves left behind, which their hosts must delete. */
  retiring?: RetiringInstances;
  /** Instances found gone with their agents: no primary waits for them. */
  gone?: GoneInstances;
}

/** The tenant's archiving settings, when the fleet has a repository and the tenant's backups are on. */
export async function instanceBackup(tx: StoreReads, tenant: TenantRecord, settings: BackupSettings | undefined): Promise<InstanceBackup | undefined> {
  if (!settings) return undefined;
  const policy = effectiveBackupPolicy(tenant.spec.backup, settings.policy);
  const stanza = await tx.backups.getStanza(tenant.id);
  if (policy.disabled || !stanza) return undefined;
  return { stanza: stanza.stanza, archiveTimeoutSeconds: policy.archiveTimeoutSeconds, retentionDays: retentionDays(policy.retentionSeconds) };
}

/**
 * What a primary is restored from: the tenant's running restore, while it waits for recovery. Only
 * RESTORING tenants and primaries that never ran are looked at (the others cost no query; a stop
 * during a restore must not make the agent create the instance empty); the agent restores only
 * into an instance with no data directory, so sending it again is harmless.
 */
async function restoreSource(tx: StoreReads, tenant: TenantRecord, placement: PlacementRecord): Promise<RestoreSource | undefined> {
  if (placement.role !== 'PRIMARY' || (tenant.status !== 'RESTORING' && placement.realizedOnce)) return undefined;
  const r = (await tx.restores.list(tenant.id)).find((x) => x.state === 'RUNNING' && x.phase === 'recovering');
  if (!r || (r.hostId !== '' && r.hostId !== placement.hostId)) return undefined;
  const target: RestoreSource['target'] =
    r.backupLabel !== '' ? { kind: 'backup', label: r.backupLabel } : r.toTime > 0 ? { kind: 'time', time: r.toTime } : { kind: 'latest' };
  return { restoreId: r.id, stanza: r.sourceStanza, target };
}

/** One desired instance, in domain terms (mapped to InstanceSpec at the agent edge). */
export type { DesiredInstance } from '@pgs/tenancy';

/**
 * The replicas whose host is not DOWN and that were not found gone with their agents (a failover's
 * old primary, dead with its agent: waiting for it would stop every write until its host is DOWN):
 * the standbys a primary can wait for.
 */
export async function liveStandbys(tx: StoreReads, replicas: readonly PlacementRecord[], gone?: GoneInstances): Promise<string[]> {
  const live: string[] = [];
  for (const p of replicas) {
    const host = await tx.hosts.get(p.hostId);
    if (host?.state !== 'DOWN' && !(gone?.isGone(p.tenantId, host) ?? false)) live.push(p.hostId);
  }
  return live.sort();
}

/**
 * Whether the placement's instance runs: not while its tenant is suspended (a fast shutdown: a
 * checkpoint, data kept) nor stopped; a stopped replica starts only once its primary runs again
 * (libs/tenancy waitsForPrimary), so a woken tenant's replica connects at its first attempt.
 */
async function runStateOf(tx: StoreReads, tenant: TenantRecord, placement: PlacementRecord, primary: PlacementRecord | undefined): Promise<RunState> {
  if (tenant.status === 'SUSPENDED' || tenant.spec.runState === 'STOPPED') return 'STOPPED';
  if (placement.role !== 'REPLICA' || placement.instanceState !== 'STOPPED' || !primary) return tenant.spec.runState;
  const hostState = (await tx.hosts.get(primary.hostId))?.state ?? 'DOWN';
  return waitsForPrimary({ role: placement.role, instanceState: placement.instanceState, primary: { instanceState: primary.instanceState, hostState } })
    ? 'STOPPED'
    : tenant.spec.runState;
}

/** The desired instance of one placement. */
export async function desiredInstance(
  tx: StoreReads,
  tenant: TenantRecord,
  placement: PlacementRecord,
  versions: VersionCatalog,
  replication?: ReplicationDeps,
): Promise<DesiredInstance> {
  const users = await tx.users.list(tenant.id);
  const databases = await tx.databases.list(tenant.id);
  // Stored specs name their major (pinned at create); a major no host reports any more still goes out as it is.
  const version = tenant.spec.version === '' ? versions.resolve('') : { id: tenant.spec.version, image: versions.imageOf(tenant.spec.version) };
  const all = await tx.placements.list({ tenantId: tenant.id });
  const primary = placement.role === 'REPLICA' ? all.find((p) => p.role === 'PRIMARY') : undefined;
  const replicas = all.filter((p) => p.role === 'REPLICA');
  const credentials = replication && all.length > 1 ? await replicationCredentials(tx, replication.keys, tenant.id) : undefined;
  const isPrimary = placement.role === 'PRIMARY';
  const writersBlocked = loginBlocked(await tx.upgrades.get(tenant.id), placement.hostId);
  let synchronous = '';
  if (isPrimary && credentials) {
    const sync = syncConfigFor(tenant.spec.syncReplicas, (await liveStandbys(tx, replicas, replication?.gone)).map(standbyName));
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
    runState: await runStateOf(tx, tenant, placement, primary),
    roles: users.filter((u) => u.status !== 'DELETING').map((u) => ({ name: u.name, scramVerifier: u.scramVerifier, login: !writersBlocked })),
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
    backup: await instanceBackup(tx, tenant, replication?.backup),
    restore: replication?.backup ? await restoreSource(tx, tenant, placement) : undefined,
  };
}

/**
 * Whether a major upgrade keeps the tenant's roles from logging in on `hostId` (the agent's role
 * sync would otherwise log blocked writers in again from the spec): on the old instance from the
 * switch's hold until it stops (after the route left it nothing may commit there), and on the new
 * one while a rollback holds clients.
 */
function loginBlocked(upgrade: UpgradeRecord | undefined, hostId: string): boolean {
  if (!upgrade) return false;
  if (upgrade.phase === 'switching') return hostId === upgrade.fromHostId && (upgrade.held || upgrade.other.hostId === upgrade.fromHostId);
  return upgrade.phase === 'kept' && upgrade.held && hostId === upgrade.toHostId;
}

/**
 * The instance of an upgrade that is not the tenant's placement. The new one runs the target major
 * with logical replication workers and no archiving (the tenant's stanza belongs to the instance
 * the route names); the old one, once the route left it, is kept stopped for a rollback.
 */
async function upgradeOtherInstance(
  tx: StoreReads,
  tenant: TenantRecord,
  upgrade: UpgradeRecord,
  versions: VersionCatalog,
  replication?: ReplicationDeps,
): Promise<DesiredInstance> {
  const o = upgrade.other;
  const placement = { ...newPlacement({ tenantId: tenant.id, hostId: o.hostId, role: 'PRIMARY', address: o.address, now: 0 }), port: o.port };
  const base = await desiredInstance(tx, tenant, placement, versions, replication);
  const old = o.hostId === upgrade.fromHostId;
  const major = String(o.major);
  const { backup: _backup, restore: _restore, ...rest } = base;
  // The old one runs on after the route left it until the new one's subscriptions dropped their
  // slots on it, and again when a rollback starts it (a rollback asked before it was kept waits
  // for that: the upgrade reaches kept only once the old instance stopped).
  const oldRuns = upgrade.subscribed || (upgrade.request === 'rollback' && upgrade.phase === 'kept');
  return {
    ...rest,
    version: major,
    image: versions.imageOf(major),
    runState: (old && !oldRuns) || tenant.spec.runState === 'STOPPED' ? 'STOPPED' : base.runState,
    ...(old ? {} : { upgradeSubscriber: true }),
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
export async function desiredSetForHost(
  tx: StoreReads,
  hostId: string,
  versions: VersionCatalog,
  tenantIds?: ReadonlySet<string>,
  replication?: ReplicationDeps,
): Promise<HostDesiredSet> {
  const out: HostDesiredSet = { instances: [], removedTenantIds: [] };
  // Instances an in-place restore replaced: deleted once the restored one serves.
  if (replication?.backup) for (const id of await oldInstancesOn(tx, hostId)) if (!tenantIds || tenantIds.has(id)) out.removedTenantIds.push(id);
  const wanted = (tenantId: string): boolean => !tenantIds || tenantIds.has(tenantId);
  // Given the tenants (a slice of a full set, a delta): every placement of theirs in one read, the
  // host's among them; the whole host: its placements, the other members' read ahead below.
  const ofTenants = tenantIds ? await tx.placements.listOfTenants([...tenantIds]) : undefined;
  const here = ofTenants ? ofTenants.filter((p) => p.hostId === hostId) : await tx.placements.list({ hostId });
  const placedHere = new Set(here.map((p) => p.tenantId));
  // Instances a move or a re-placement left here; one placed here again is never deleted (and forgotten).
  for (const id of replication?.retiring?.onHost(hostId) ?? []) {
    if (!wanted(id)) continue;
    if (placedHere.has(id)) replication?.retiring?.cancel(id, hostId);
    else out.removedTenantIds.push(id);
  }
  // The other instance of each major upgrade with it here (the new one before the switch, the old one after).
  const others = (await tx.upgrades.listOnHost(hostId)).filter((u) => wanted(u.tenantId) && !placedHere.has(u.tenantId));
  // Every tenant's facts read at once, not one tenant (and seven reads) at a time.
  const named = [...placedHere, ...others.map((u) => u.tenantId)];
  const reads = named.length > 1 ? await readAheadForDesiredSet(tx, named, replication?.backup !== undefined, ofTenants) : tx;
  for (const placement of here) {
    const tenant = await reads.tenants.get(placement.tenantId);
    if (!tenant) continue;
    if (tenant.deleting) out.removedTenantIds.push(tenant.id);
    else if (!(await restoreFailedHere(reads, placement))) out.instances.push(await desiredInstance(reads, tenant, placement, versions, replication));
  }
  for (const upgrade of others) {
    const tenant = await reads.tenants.get(upgrade.tenantId);
    if (!tenant) continue;
    if (tenant.deleting) out.removedTenantIds.push(tenant.id);
    else out.instances.push(await upgradeOtherInstance(reads, tenant, upgrade, versions, replication));
  }
  return out;
}
