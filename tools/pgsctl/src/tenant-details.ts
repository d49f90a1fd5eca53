/** The human rendering of `tenant get`: spec and status, route, placements, users, databases, backups, events. */
import { formatSpan } from './spans.js';
import { formatCpu, formatSize } from '@pgs/tenancy';
import { renderBackupOverview } from './backup-details.js';
import { formatAge, formatLabels, renderFields, renderTable } from './output.js';
import { databaseColumns, eventColumns, placementColumns, userColumns } from './tables.js';
import type { BackupOverviewView, DatabaseView, EventView, RouteView, TenantView, UpgradeView, UserView } from './views.js';

/** Everything `tenant get` shows. */
export interface TenantDetails {
  tenant: TenantView;
  route: RouteView | null;
  users: UserView[];
  databases: DatabaseView[];
  recentEvents: EventView[];
  /** Backups at a glance; null when the fleet has no backup repository. */
  backup: BackupOverviewView | null;
}

function section(title: string, body: string): string {
  return `\n${title}:\n${body.replace(/^(?=.)/gm, '  ')}`;
}

function routeText(route: RouteView | null): string {
  if (route === null) return 'none yet';
  const backend = route.port ? `${route.address}:${route.port}` : route.address || '-';
  return `${route.state} -> ${backend} on ${route.hostId || '-'} (revision ${route.revision})${route.reason ? `: ${route.reason}` : ''}`;
}

/** The init scripts on one line: where they are, and for a failure the script, PostgreSQL's error and what to do. */
export function initSqlText(t: TenantView): string {
  const s = t.initSql;
  if (s === null) return '-';
  const of = `${s.applied}/${s.scripts.length} committed`;
  switch (s.state) {
    case 'FAILED':
      return `FAILED at ${s.failedScript} (${of}): ${s.error}; fix it, then: pgsctl tenant init-sql retry ${t.id}`;
    case 'HELD':
      return `HELD (${s.scripts.length} script(s)); release with: pgsctl tenant init-sql run ${t.id}`;
    case 'PENDING':
      return `PENDING (${s.scripts.length} script(s)): run once the primary runs`;
    default:
      return `${s.state} (${of}): ${s.scripts.join(', ')}`;
  }
}

/** A major upgrade in one line: where it is, and what the operator can do next. */
export function upgradeText(u: UpgradeView): string {
  const what = `${u.fromMajor} -> ${u.toMajor} (${u.fromHostId} -> ${u.toHostId}), ${u.phase}`;
  if (u.phase !== 'kept') return `${what}: ${u.reason}`;
  const until = u.keepUntil ? `until ${u.keepUntil}` : 'until finalized';
  return `${what}: switched, clients held ${u.switchMs} ms; old instance kept ${until} (--rollback or --finalize)`;
}

/** Renders TenantDetails for people. */
export function renderTenantDetails(d: TenantDetails, now: number, wide: boolean): string {
  const t = d.tenant;
  const s = t.spec;
  const fields: [string, string | number][] = [
    ['Name', t.id],
    ['Status', t.statusReason ? `${t.status}: ${t.statusReason}` : t.status],
    ['Run state', s.runState],
    ['Revision', t.revision],
    ['Resources', `cpu ${formatCpu(s.resources.cpuMillis)}, memory ${formatSize(s.resources.memoryMib)}, disk ${formatSize(s.resources.diskMib)}`],
    ['Nodes', `${s.nodes} (1 primary, ${s.nodes - 1} replicas, ${s.syncReplicas} synchronous)`],
    ['Version', s.version || 'catalog default'],
    ...(t.upgrade ? ([['Upgrade', upgradeText(t.upgrade)]] as [string, string][]) : []),
    ['Access', `${s.externalAccess ? 'enabled' : 'disabled'}, connection limit ${s.connectionLimit === 0 ? 'none' : s.connectionLimit}`],
    ['Pool mode', s.poolMode.toLowerCase()],
    ['Idle suspend', s.idleSuspendSeconds > 0 ? `after ${formatSpan(s.idleSuspendSeconds)} idle` : 'off'],
    ['Labels', formatLabels(s.labels)],
    ['Placement', formatLabels(s.placement)],
    ['Description', s.description],
    ['Route', routeText(d.route)],
    ...(t.initSql ? ([['Init SQL', initSqlText(t)]] as [string, string][]) : []),
    ['Created', t.createdAt ? `${t.createdAt} (${formatAge(t.createdAt, now)} ago)` : '-'],
    ['Updated', t.updatedAt ? `${t.updatedAt} (${formatAge(t.updatedAt, now)} ago)` : '-'],
  ];
  return (
    renderFields(fields) +
    section('Placements', renderTable(placementColumns(t.id), t.placements, { wide, empty: 'not placed yet' })) +
    section('Users', renderTable(userColumns(now), d.users, { wide, empty: 'none' })) +
    section('Databases', renderTable(databaseColumns(now), d.databases, { wide, empty: 'none' })) +
    section('Backups', renderBackupOverview(d.backup, t, now)) +
    section('Recent events', renderTable(eventColumns(now), d.recentEvents, { wide, empty: 'none' }))
  );
}
