/** Table columns for each kind of object pgsctl lists. */
import { formatCpu, formatSize } from '@pgs/tenancy';
import { formatAge, formatBytes, formatDuration, formatLabels, formatTime, type Column } from './output.js';
import { formatSpan } from './spans.js';
import {
  suspendedSince,
  type BackupView,
  type DatabaseView,
  type EventView,
  type HostView,
  type PlacementView,
  type RouteView,
  type TenantView,
  type UserView,
} from './views.js';

function primaryOf(t: TenantView): PlacementView | undefined {
  return t.placements.find((p) => p.role === 'PRIMARY') ?? t.placements[0];
}

/** Columns of `tenant list`. */
export function tenantColumns(now: number): Column<TenantView>[] {
  return [
    { header: 'name', value: (t) => t.id },
    // A suspended tenant shows for how long (the coordinator's reason carries the moment).
    { header: 'status', value: (t) => statusWithAge(t, now) },
    { header: 'host', value: (t) => primaryOf(t)?.hostId ?? '' },
    { header: 'nodes', value: (t) => `${t.placements.filter((p) => p.realization === 'REALIZED').length}/${t.spec.nodes}`, right: true },
    { header: 'cpu', value: (t) => formatCpu(t.spec.resources.cpuMillis), right: true },
    { header: 'memory', value: (t) => formatSize(t.spec.resources.memoryMib), right: true },
    { header: 'disk', value: (t) => formatSize(t.spec.resources.diskMib), right: true },
    { header: 'access', value: (t) => (t.spec.externalAccess ? 'enabled' : 'disabled') },
    { header: 'idle-suspend', value: (t) => (t.spec.idleSuspendSeconds > 0 ? formatSpan(t.spec.idleSuspendSeconds) : 'off'), wide: true },
    { header: 'version', value: (t) => t.spec.version || 'default', wide: true },
    { header: 'revision', value: (t) => t.revision, right: true, wide: true },
    { header: 'labels', value: (t) => formatLabels(t.spec.labels), wide: true },
    { header: 'reason', value: (t) => t.statusReason, wide: true },
    { header: 'age', value: (t) => formatAge(t.createdAt, now), right: true },
  ];
}

/** `SUSPENDED 3m` for a suspended tenant (from the time its status reason names), else the status. */
function statusWithAge(t: TenantView, now: number): string {
  const since = suspendedSince(t);
  return since === undefined ? t.status : `${t.status} ${formatAge(since, now)}`;
}

/** Columns of the placements in `tenant get`, patronictl style. */
export function placementColumns(tenantId: string): Column<PlacementView>[] {
  return [
    { header: 'member', value: (p) => `${tenantId}@${p.hostId}` },
    { header: 'host', value: (p) => p.hostId },
    { header: 'address', value: (p) => (p.port ? `${p.address}:${p.port}` : p.address) },
    { header: 'role', value: (p) => p.role.toLowerCase() },
    { header: 'state', value: (p) => (p.health === null ? 'unknown' : p.health.up ? (p.health.acceptingConnections ? 'running' : 'starting') : 'down') },
    // As `patronictl list`: timeline and lag of each member (lag on replicas only).
    { header: 'tl', value: (p) => (p.health && p.health.timeline > 0 ? p.health.timeline : ''), right: true },
    { header: 'realization', value: (p) => p.realization },
    { header: 'conns', value: (p) => p.health?.connections ?? '', right: true },
    { header: 'size', value: (p) => (p.health ? formatBytes(p.health.databaseSizeBytes) : ''), right: true },
    { header: 'lag', value: (p) => (p.health && p.role === 'REPLICA' ? formatBytes(p.health.lagBytes) : ''), right: true },
    { header: 'reason', value: (p) => p.reason },
  ];
}

function usageText(used: number, total: number, format: (n: number) => string): string {
  const pct = total > 0 ? ` (${Math.round((used / total) * 100)}%)` : '';
  return `${format(used)}/${format(total)}${pct}`;
}

/** The state of a host as people read it: READY, READY,cordoned, DOWN,draining. */
export function hostStateText(h: HostView): string {
  const d = h.drain;
  // A drain in progress: how many of its instances moved off, are moving, could not move.
  const draining =
    d === null ? 'draining' : `draining ${d.moved}/${d.total} moved${d.moving > 0 ? ` ${d.moving} moving` : ''}${d.blocked > 0 ? ` ${d.blocked} blocked` : ''}`;
  return [h.state, ...(h.cordoned ? ['cordoned'] : []), ...(h.draining ? [draining] : [])].join(',');
}

/** A drain's progress: counts, then each tenant it cannot move with why (none when not draining). */
export function hostDrainFields(host: HostView): [string, string][] {
  const d = host.drain;
  if (!host.draining) return [];
  if (d === null) return [['Drain', 'planning']];
  return [
    ['Drain', `${d.moved}/${d.total} moved, ${d.moving} moving, ${d.blocked} blocked`],
    ...d.blockedTenants.map((b): [string, string] => [`  blocked ${b.tenantId}`, b.reason]),
  ];
}

/** Columns of `host list`. */
export function hostColumns(now: number): Column<HostView>[] {
  return [
    { header: 'name', value: (h) => h.id },
    { header: 'state', value: hostStateText },
    { header: 'address', value: (h) => h.address },
    { header: 'tenants', value: (h) => h.allocated.instances, right: true },
    { header: 'cpu', value: (h) => usageText(h.allocated.cpuMillis, h.capacity.cpuMillis, formatCpu) },
    { header: 'memory', value: (h) => usageText(h.allocated.memoryMib, h.capacity.memoryMib, formatSize) },
    { header: 'disk', value: (h) => usageText(h.allocated.diskMib, h.capacity.diskMib, formatSize) },
    { header: 'heartbeat', value: (h) => formatAge(h.lastHeartbeatAt, now), right: true },
    { header: 'runtime', value: (h) => h.runtime, wide: true },
    { header: 'spares', value: (h) => (h.readySpares === null ? '-' : h.readySpares), right: true, wide: true },
    { header: 'labels', value: (h) => formatLabels(h.labels), wide: true },
    { header: 'postgres', value: (h) => h.postgres.join(' ') || '-', wide: true },
    { header: 'version', value: (h) => h.agentVersion, wide: true },
  ];
}

/** Columns of `route list`. */
export const routeColumns: Column<RouteView>[] = [
  { header: 'tenant', value: (r) => r.tenantId },
  { header: 'state', value: (r) => r.state },
  { header: 'host', value: (r) => r.hostId },
  { header: 'backend', value: (r) => (r.port ? `${r.address}:${r.port}` : r.address) },
  { header: 'access', value: (r) => (r.externalAccess ? 'enabled' : 'disabled') },
  { header: 'limit', value: (r) => (r.connectionLimit === 0 ? 'none' : r.connectionLimit), right: true },
  { header: 'revision', value: (r) => r.revision, right: true },
  { header: 'reason', value: (r) => r.reason, wide: true },
];

/** Columns of `events` and the recent events of `tenant get`. */
export function eventColumns(now: number): Column<EventView>[] {
  return [
    { header: 'age', value: (e) => formatAge(e.time, now), right: true },
    { header: 'id', value: (e) => e.id, right: true, wide: true },
    { header: 'action', value: (e) => e.action },
    { header: 'tenant', value: (e) => e.tenantId },
    { header: 'host', value: (e) => e.hostId },
    { header: 'outcome', value: (e) => e.outcome },
    { header: 'principal', value: (e) => e.principal, wide: true },
    { header: 'message', value: (e) => e.message },
  ];
}

/** Columns of `user list`. */
export function userColumns(now: number): Column<UserView>[] {
  return [
    { header: 'name', value: (u) => u.name },
    { header: 'owner', value: (u) => u.owner },
    { header: 'status', value: (u) => u.status },
    { header: 'description', value: (u) => u.description },
    { header: 'reason', value: (u) => u.statusReason, wide: true },
    { header: 'age', value: (u) => formatAge(u.createdAt, now), right: true },
  ];
}

/** Columns of `db list`. */
export function databaseColumns(now: number): Column<DatabaseView>[] {
  return [
    { header: 'name', value: (d) => d.name },
    { header: 'owner', value: (d) => d.owner },
    { header: 'status', value: (d) => d.status },
    { header: 'description', value: (d) => d.description },
    { header: 'reason', value: (d) => d.statusReason, wide: true },
    { header: 'age', value: (d) => formatAge(d.createdAt, now), right: true },
  ];
}

/** How long a backup took, or has run so far (`1m05s+` while it runs); '-' before it started. */
export function backupDuration(b: BackupView, now: number): string {
  if (b.startedAt === null) return '-';
  const start = Date.parse(b.startedAt);
  if (b.finishedAt !== null) return formatDuration(Math.max(0, Date.parse(b.finishedAt) - start));
  return b.status === 'RUNNING' ? `${formatDuration(Math.max(0, now - start))}+` : '-';
}

/** The WAL a backup spans, start..stop; '-' until known. */
export function lsnRange(b: BackupView): string {
  if (b.lsnStart === '' && b.lsnStop === '') return '-';
  return `${b.lsnStart || '?'}..${b.lsnStop || '?'}`;
}

/** Sizes are known once a backup finished; a running or failed one shows '-' rather than 0 B. */
function backupSize(b: BackupView, bytes: number): string {
  return bytes === 0 && b.status !== 'SUCCEEDED' ? '-' : formatBytes(bytes);
}

/** Columns of `backup list`. */
export function backupColumns(now: number): Column<BackupView>[] {
  return [
    { header: 'id', value: (b) => b.id },
    { header: 'type', value: (b) => b.type.toLowerCase() },
    { header: 'status', value: (b) => b.status },
    { header: 'started', value: (b) => formatTime(b.startedAt) },
    { header: 'finished', value: (b) => formatTime(b.finishedAt) },
    { header: 'duration', value: (b) => backupDuration(b, now), right: true },
    { header: 'size', value: (b) => backupSize(b, b.sizeBytes), right: true },
    { header: 'repo size', value: (b) => backupSize(b, b.repoSizeBytes), right: true },
    { header: 'lsn range', value: lsnRange },
    { header: 'trigger', value: (b) => b.trigger },
    { header: 'host', value: (b) => b.hostId, wide: true },
    { header: 'label', value: (b) => b.label, wide: true },
    { header: 'prior', value: (b) => b.priorLabel, wide: true },
    { header: 'tl', value: (b) => (b.timeline > 0 ? b.timeline : ''), right: true, wide: true },
    { header: 'reason', value: (b) => b.reason, wide: true },
  ];
}
