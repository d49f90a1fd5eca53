/** What the coordinator's parts share, built once in main.ts (or a test). */
import type { BackendFailures } from '../live/backend-failures.js';
import type { InstanceTlsSetting } from '../domain/instance-tls.js';
import type { PlacementPolicy } from '@pgs/tenancy';
import type { KeyRing } from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import type { AgentHub } from '../transport/agent-hub.js';
import type { BackupSettings } from './backup-repository.js';
import type { HealthCache } from '../live/health-cache.js';
import type { HostSlots } from '../live/host-slots.js';
import type { HostSpares } from '../live/host-spares.js';
import type { UnchangedReports } from './unchanged-reports.js';
import type { RetryPolicy } from './instance-reports.js';
import type { RetiringInstances } from '../live/retiring-instances.js';
import type { Liveness } from '../live/liveness.js';
import type { GoneInstances } from '../live/gone-instances.js';
import type { CoordinatorMetrics } from '../transport/metrics.js';
import type { Store, StoreTx } from '../store/contract.js';
import type { SyncQuorums } from '../live/sync-quorums.js';
import { syncTenant, syncTenants } from './tenant-sync.js';
import type { VersionCatalog } from './versions.js';

/** The shared parts. */
export interface CoordinatorContext {
  readonly store: Store;
  readonly clock: () => number;
  readonly log: Logger;
  readonly health: HealthCache;
  /** Routers' recent refused connects to instances (a signal of a lost host). */
  readonly backendFailures: BackendFailures;
  readonly versions: VersionCatalog;
  readonly hub: AgentHub;
  readonly liveness: Liveness;
  /** Instances found gone with their agents (failover's gone fencing), left out of quorums while their agents stay away. */
  readonly gone: GoneInstances;
  /** Ready spares per connected host, from heartbeats (placement prefers hosts with one left). */
  readonly spares: HostSpares;
  /** The most instances each host can hold, from its Hello (placement never gives a host more). */
  readonly slots: HostSlots;
  /** What the agents last reported per instance, so a repeated report costs no transaction. */
  readonly unchangedReports: UnchangedReports;
  readonly retry: RetryPolicy;
  readonly placementPolicy: Partial<PlacementPolicy>;
  readonly heartbeatIntervalMs: number;
  readonly leaseMs: number;
  readonly metrics: CoordinatorMetrics | undefined;
  /** Secrets at rest (the replication password). */
  readonly keys: KeyRing;
  /** Synchronous quorums sent to primaries, until confirmed. */
  readonly quorums: SyncQuorums;
  readonly failover: FailoverPolicy;
  /** The fleet backup repository; undefined = backups are off. */
  readonly backup: BackupSettings | undefined;
  /** TLS between routers and instances, and between standbys and primaries. */
  readonly instanceTls: InstanceTlsSetting;
  /** Instances live moves left behind, for their hosts to delete. */
  readonly retiring: RetiringInstances;
  /** How long a move's copy (base backup and catch-up) may take before the move is abandoned. */
  readonly moveCopyTimeoutMs: number;
  /** How long a move's switch waits for the old primary's checkpoint (0: none is run). */
  readonly moveCheckpointTimeoutMs: number;
  /**
   * The leader lease epoch this coordinator leads at, stamped on Welcome, desired sets and commands
   * so agents refuse an overtaken leader; 0 or absent = the only coordinator (SQLite), no lease.
   */
  readonly leaderEpoch?: number;
}

/** Failover, switchover and replacement timing (config). */
export interface FailoverPolicy {
  unhealthyAfterMs: number;
  promoteTimeoutMs: number;
  switchoverTimeoutMs: number;
  switchoverMaxLagBytes: number;
  /** A switchover's fence lets open transactions finish for up to this long. */
  switchGraceMs: number;
  replicaReplaceDelayMs: number;
}

/** Re-derives every tenant with a placement on `hostId` (after the host's state or address changed). */
export async function syncHostTenants(tx: StoreTx, ctx: CoordinatorContext, hostId: string, principal: string): Promise<void> {
  const now = ctx.clock();
  // One batch: a host of hundreds of tenants costs a handful of statements, not hundreds.
  const tenantIds = (await tx.placements.list({ hostId })).map((p) => p.tenantId);
  await syncTenants(tx, tenantIds, { now, health: ctx.health, principal });
}

/**
 * A replica's host went DOWN or came back: its primary's synchronous_standby_names changes (a lost
 * standby leaves the quorum so commits do not hang on it), so the instance revision moves on.
 */
export async function resyncQuorums(tx: StoreTx, ctx: CoordinatorContext, hostId: string, now: number): Promise<void> {
  for (const p of await tx.placements.list({ hostId })) {
    if (p.role !== 'REPLICA') continue;
    // Its primary's synchronous_standby_names (and its own spec) go out again.
    tx.record({ kind: 'desired', tenantId: p.tenantId });
    const tenant = await tx.tenants.get(p.tenantId);
    if (!tenant || tenant.deleting || tenant.spec.syncReplicas === 0) continue;
    await tx.tenants.update({ ...tenant, instanceRevision: tenant.instanceRevision + 1, updatedAt: now });
    await syncTenant(tx, tenant.id, { now, health: ctx.health, principal: 'system:liveness' });
  }
}
