/**
 * The latest health each agent reported per instance. Kept in memory only: it changes every few
 * seconds (connections, size), and writing it would cost an fsync per report for nothing a
 * restart needs; after a restart the next report fills it again.
 */
import type { InstanceRole } from '@pgs/tenancy';

/** Health of one instance as last reported. */
export interface InstanceHealthView {
  up: boolean;
  acceptingConnections: boolean;
  connections: number;
  /** Non-idle client backends and foreign walsenders (idle suspend counts them as work). */
  busyBackends: number;
  databaseSizeBytes: number;
  role: InstanceRole | undefined;
  lsn: string;
  lagBytes: number;
  timeline: number;
  checkedAt: number;
  /** WAL archiving of a primary whose tenant has backups (pg_stat_archiver and the .ready files). */
  archive?: ArchiveHealth | undefined;
  /** A replica: when its walreceiver lost the primary it streamed from while it kept running (0: streaming or unknown). */
  senderLostAt?: number;
}

/** One primary's WAL archiving (times epoch ms, 0 = never). */
export interface ArchiveHealth {
  enabled: boolean;
  archivedCount: number;
  lastArchivedWal: string;
  /** When the archiver last finished a file (not how far the archive reaches: archivedThrough). */
  lastArchivedAt: number;
  /** Every commit before this time is archived: where the recovery window ends (0 = not known yet). */
  archivedThrough: number;
  failedCount: number;
  lastFailedWal: string;
  lastFailedAt: number;
  pendingSegments: number;
  pendingBytes: number;
  lagSeconds: number;
}

/** Health per (tenant, host). */
export class HealthCache {
  private readonly byKey = new Map<string, InstanceHealthView>();

  /** Records the latest health of an instance. */
  set(tenantId: string, hostId: string, health: InstanceHealthView): void {
    this.byKey.set(`${tenantId}\u0000${hostId}`, health);
  }

  /** The latest health of an instance, if any was reported since start. */
  get(tenantId: string, hostId: string): InstanceHealthView | undefined {
    return this.byKey.get(`${tenantId}\u0000${hostId}`);
  }

  /** Forgets an instance (deleted or moved). */
  delete(tenantId: string, hostId: string): void {
    this.byKey.delete(`${tenantId}\u0000${hostId}`);
  }
}
