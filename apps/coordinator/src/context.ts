/** What the coordinator's parts share, built once in main.ts (or a test). */
import type { InstanceTlsSetting } from './instance-tls.js';
import type { PlacementPolicy } from '@pgs/tenancy';
import type { KeyRing } from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import type { AgentHub } from './agent-hub.js';
import type { BackupSettings } from './backup-repository.js';
import type { HealthCache } from './health-cache.js';
import type { HostSpares } from './host-spares.js';
import type { RetryPolicy } from './instance-reports.js';
import type { Liveness } from './liveness.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { Store, StoreTx } from './store/store.js';
import type { SyncQuorums } from './sync-quorums.js';
import { syncTenant } from './tenant-sync.js';
import type { VersionCatalog } from './versions.js';

/** The shared parts. */
export interface CoordinatorContext {
  readonly store: Store;
  readonly clock: () => number;
  readonly log: Logger;
  readonly health: HealthCache;
  readonly versions: VersionCatalog;
  readonly hub: AgentHub;
  readonly liveness: Liveness;
  /** Ready spares per connected host, from heartbeats (placement prefers hosts with one left). */
  readonly spares: HostSpares;
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
}

/** Failover, switchover and replacement timing (config). */
export interface FailoverPolicy {
  unhealthyAfterMs: number;
  promoteTimeoutMs: number;
  switchoverTimeoutMs: number;
  switchoverMaxLagBytes: number;
  replicaReplaceDelayMs: number;
}

/** Re-derives every tenant with a placement on `hostId` (after the host's state or address changed). */
export function syncHostTenants(tx: StoreTx, ctx: CoordinatorContext, hostId: string, principal: string): void {
  const now = ctx.clock();
  for (const p of tx.listPlacements({ hostId })) syncTenant(tx, p.tenantId, { now, health: ctx.health, principal });
}

/**
 * A replica's host went DOWN or came back: its primary's synchronous_standby_names changes (a lost
 * standby leaves the quorum so commits do not hang on it), so the instance revision moves on.
 */
export function resyncQuorums(tx: StoreTx, ctx: CoordinatorContext, hostId: string, now: number): void {
  for (const p of tx.listPlacements({ hostId })) {
    if (p.role !== 'REPLICA') continue;
    const tenant = tx.getTenant(p.tenantId);
    if (!tenant || tenant.deleting || tenant.spec.syncReplicas === 0) continue;
    tx.updateTenant({ ...tenant, instanceRevision: tenant.instanceRevision + 1, updatedAt: now });
    syncTenant(tx, tenant.id, { now, health: ctx.health, principal: 'system:liveness' });
  }
}

/** After resyncQuorums committed: sends the tenants with a replica on the host their new specs. */
export function touchReplicaTenants(ctx: CoordinatorContext, hostId: string): void {
  for (const p of ctx.store.listPlacements({ hostId })) if (p.role === 'REPLICA') ctx.hub.touchTenant(p.tenantId);
}
