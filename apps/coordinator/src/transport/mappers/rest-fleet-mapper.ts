/**
 * JSON of the dashboard's REST reads: hosts (capacity and what is promised on them), events and a
 * tenant's backup state, in the units of the instance JSON (cpu in cores, ram in MB, disk in GB).
 */
import type { TenantBackupHealth } from '../../services/backup-scheduler.js';
import type { HostView } from '../../services/host-service.js';
import type { EventRecord } from '../../domain/model.js';

type Json = Record<string, unknown>;

function iso(ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null;
}

function resourcesJson(r: { cpuMillis: number; memoryMib: number; diskMib: number }): Json {
  return { cpu: r.cpuMillis / 1000, ram: r.memoryMib, disk_size: r.diskMib / 1024 };
}

/** A host view -> JSON. */
export function hostJson(v: HostView): Json {
  const h = v.host;
  return {
    id: h.id,
    address: h.address,
    state: h.state,
    connected: v.connected,
    cordoned: h.cordoned,
    draining: h.draining,
    capacity: resourcesJson(h.capacity),
    allocated: { ...resourcesJson(v.allocated), instances: v.allocated.instances },
    labels: h.labels,
    runtime: h.runtime,
    agent_version: h.agentVersion,
    ready_spares: v.readySpares ?? null,
    // While draining: instances it started with, moved off, moving, and those it cannot move with why.
    drain:
      v.drain === undefined
        ? null
        : {
            total: v.drain.total,
            moved: v.drain.moved,
            moving: v.drain.moving,
            blocked: v.drain.blocked,
            blocked_tenants: v.drain.blockedTenants.map((b) => ({ tenant: b.tenantId, reason: b.reason })),
          },
    last_heartbeat_at: iso(h.lastHeartbeatAt),
    registered_at: iso(h.registeredAt),
    state_changed_at: iso(h.stateChangedAt),
  };
}

/** An event -> JSON. */
export function eventJson(e: EventRecord): Json {
  return {
    id: e.id,
    time: new Date(e.time).toISOString(),
    principal: e.principal,
    action: e.action,
    tenant: e.tenantId,
    host: e.hostId,
    outcome: e.outcome,
    message: e.message,
    details: e.details,
  };
}

/** The backup walk's view of one tenant -> JSON (the instance JSON's `backup_state`). */
export function backupStateJson(h: TenantBackupHealth): Json {
  return {
    last_good_backup_at: iso(h.lastGoodAt),
    archive_lag_seconds: h.archiveLagSeconds,
    archive_pending_bytes: h.archivePendingBytes,
    archive_failures: h.archiveFailures,
    repo_size_bytes: h.repoSizeBytes,
    problems: h.problems,
  };
}
