/**
 * The one mapper from the CoordinatorService's proto messages to plain views: bigint -> number,
 * enums -> their short names ('ACTIVE'), timestamps -> ISO strings. Tables, JSON and YAML all
 * print these views, so scripts see the same field names a person reads.
 */
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import {
  EventOutcome,
  HostState,
  InstanceRole,
  ObjectStatus,
  Realization,
  RouteState,
  RunState,
  TenantStatus,
  type Event,
  type GetFleetStatusResponse,
  type Host,
  type InstanceHealth,
  type Placement,
  type Route,
  type RouterPeer,
  type Tenant,
  type TenantDatabase,
  type TenantSpec,
  type TenantUser,
} from '@pgs/proto';

/** Resources in the API's units. */
export interface ResourcesView {
  cpuMillis: number;
  memoryMib: number;
  diskMib: number;
}

/** A tenant's desired shape. */
export interface SpecView {
  resources: ResourcesView;
  nodes: number;
  syncReplicas: number;
  version: string;
  labels: Record<string, string>;
  placement: Record<string, string>;
  externalAccess: boolean;
  connectionLimit: number;
  description: string;
  runState: string;
}

/** Last reported health of one instance. */
export interface HealthView {
  up: boolean;
  acceptingConnections: boolean;
  connections: number;
  databaseSizeBytes: number;
  role: string;
  lsn: string;
  lagBytes: number;
  timeline: number;
  checkedAt: string | null;
}

/** One placement of a tenant on a host. */
export interface PlacementView {
  hostId: string;
  role: string;
  realization: string;
  reason: string;
  address: string;
  port: number;
  health: HealthView | null;
  updatedAt: string | null;
}

/** A tenant: intent and realization. */
export interface TenantView {
  id: string;
  status: string;
  statusReason: string;
  revision: number;
  spec: SpecView;
  placements: PlacementView[];
  createdAt: string | null;
  updatedAt: string | null;
}

/** A host and its load. */
export interface HostView {
  id: string;
  address: string;
  state: string;
  cordoned: boolean;
  draining: boolean;
  capacity: ResourcesView;
  allocated: ResourcesView & { instances: number };
  labels: Record<string, string>;
  runtime: string;
  agentVersion: string;
  /** Ready spare data directories (fast creates); null when the agent reports none. */
  readySpares: number | null;
  lastHeartbeatAt: string | null;
  registeredAt: string | null;
}

/** Where a tenant's primary is, as the routers see it. */
export interface RouteView {
  tenantId: string;
  hostId: string;
  address: string;
  port: number;
  state: string;
  reason: string;
  externalAccess: boolean;
  connectionLimit: number;
  revision: number;
}

/** A router known to the coordinator. */
export interface RouterView {
  routerId: string;
  cancelAddress: string;
}

/** One audit/event log entry. */
export interface EventView {
  id: number;
  time: string | null;
  principal: string;
  action: string;
  tenantId: string;
  hostId: string;
  outcome: string;
  message: string;
  details: Record<string, string>;
}

/** A role inside a tenant. */
export interface UserView {
  tenantId: string;
  name: string;
  owner: boolean;
  status: string;
  statusReason: string;
  description: string;
  createdAt: string | null;
}

/** A database inside a tenant. */
export interface DatabaseView {
  tenantId: string;
  name: string;
  owner: string;
  status: string;
  statusReason: string;
  description: string;
  createdAt: string | null;
}

/** The fleet summary. */
export interface FleetStatusView {
  hostsByState: Record<string, number>;
  tenantsByStatus: Record<string, number>;
  routersConnected: number;
  agentsConnected: number;
  routeRevision: number;
  problems: string[];
  allocated: ResourcesView & { instances: number };
  capacity: ResourcesView;
}

/** The short name of an enum value: TenantStatus.ACTIVE -> 'ACTIVE', 0 -> 'UNSPECIFIED'. */
function name(enumObject: Record<number, string>, value: number): string {
  return enumObject[value] ?? `UNKNOWN_${value}`;
}

/** Parses a short enum name given on the command line; undefined when it is not one. */
export function enumValue<E extends Record<string, string | number>>(enumObject: E, text: string): number | undefined {
  const value = enumObject[text.toUpperCase().replaceAll('-', '_') as keyof E];
  return typeof value === 'number' && value !== 0 ? value : undefined;
}

/** The names an enum accepts on the command line (without UNSPECIFIED). */
export function enumNames(enumObject: Record<string, string | number>): string[] {
  return Object.keys(enumObject).filter((k) => Number.isNaN(Number(k)) && k !== 'UNSPECIFIED');
}

function time(ts: Timestamp | undefined): string | null {
  return ts === undefined ? null : timestampDate(ts).toISOString();
}

function resources(r: { cpuMillis: number; memoryMib: number; diskMib: number } | undefined): ResourcesView {
  return { cpuMillis: r?.cpuMillis ?? 0, memoryMib: r?.memoryMib ?? 0, diskMib: r?.diskMib ?? 0 };
}

function usage(u: { cpuMillis: number; memoryMib: number; diskMib: number; instances: number } | undefined): ResourcesView & { instances: number } {
  return { ...resources(u), instances: u?.instances ?? 0 };
}

/** TenantSpec -> SpecView. */
export function specView(spec: TenantSpec | undefined): SpecView {
  return {
    resources: resources(spec?.resources),
    nodes: spec?.nodes ?? 0,
    syncReplicas: spec?.syncReplicas ?? 0,
    version: spec?.version ?? '',
    labels: { ...(spec?.labels ?? {}) },
    placement: { ...(spec?.placement ?? {}) },
    externalAccess: spec?.externalAccess ?? false,
    connectionLimit: spec?.connectionLimit ?? 0,
    description: spec?.description ?? '',
    runState: name(RunState, spec?.runState ?? RunState.UNSPECIFIED),
  };
}

function healthView(h: InstanceHealth | undefined): HealthView | null {
  if (h === undefined) return null;
  return {
    up: h.up,
    acceptingConnections: h.acceptingConnections,
    connections: h.connections,
    databaseSizeBytes: Number(h.databaseSizeBytes),
    role: name(InstanceRole, h.role),
    lsn: h.lsn,
    lagBytes: Number(h.lagBytes),
    timeline: h.timeline,
    checkedAt: time(h.checkedAt),
  };
}

/** Placement -> PlacementView. */
export function placementView(p: Placement): PlacementView {
  return {
    hostId: p.hostId,
    role: name(InstanceRole, p.role),
    realization: name(Realization, p.realization),
    reason: p.reason,
    address: p.address,
    port: p.port,
    health: healthView(p.health),
    updatedAt: time(p.updatedAt),
  };
}

/** Tenant -> TenantView. */
export function tenantView(t: Tenant): TenantView {
  return {
    id: t.id,
    status: name(TenantStatus, t.status),
    statusReason: t.statusReason,
    revision: Number(t.revision),
    spec: specView(t.spec),
    placements: t.placements.map(placementView),
    createdAt: time(t.createdAt),
    updatedAt: time(t.updatedAt),
  };
}

/** Host -> HostView. */
export function hostView(h: Host): HostView {
  return {
    id: h.id,
    address: h.address,
    state: name(HostState, h.state),
    cordoned: h.cordoned,
    draining: h.draining,
    capacity: resources(h.capacity),
    allocated: usage(h.allocated),
    labels: { ...h.labels },
    runtime: h.runtime,
    agentVersion: h.agentVersion,
    readySpares: h.readySpares ?? null,
    lastHeartbeatAt: time(h.lastHeartbeatAt),
    registeredAt: time(h.registeredAt),
  };
}

/** Route -> RouteView. */
export function routeView(r: Route): RouteView {
  return {
    tenantId: r.tenantId,
    hostId: r.hostId,
    address: r.address,
    port: r.port,
    state: name(RouteState, r.state),
    reason: r.reason,
    externalAccess: r.externalAccess,
    connectionLimit: r.connectionLimit,
    revision: Number(r.revision),
  };
}

/** RouterPeer -> RouterView. */
export function routerView(r: RouterPeer): RouterView {
  return { routerId: r.routerId, cancelAddress: r.cancelAddress };
}

/** Event -> EventView. */
export function eventView(e: Event): EventView {
  return {
    id: Number(e.id),
    time: time(e.time),
    principal: e.principal,
    action: e.action,
    tenantId: e.tenantId,
    hostId: e.hostId,
    outcome: name(EventOutcome, e.outcome),
    message: e.message,
    details: { ...e.details },
  };
}

/** TenantUser -> UserView. */
export function userView(u: TenantUser): UserView {
  return {
    tenantId: u.tenantId,
    name: u.name,
    owner: u.owner,
    status: name(ObjectStatus, u.status),
    statusReason: u.statusReason,
    description: u.description,
    createdAt: time(u.createdAt),
  };
}

/** TenantDatabase -> DatabaseView. */
export function databaseView(d: TenantDatabase): DatabaseView {
  return {
    tenantId: d.tenantId,
    name: d.name,
    owner: d.owner,
    status: name(ObjectStatus, d.status),
    statusReason: d.statusReason,
    description: d.description,
    createdAt: time(d.createdAt),
  };
}

/** GetFleetStatusResponse -> FleetStatusView. */
export function fleetStatusView(s: GetFleetStatusResponse): FleetStatusView {
  return {
    hostsByState: { ...s.hostsByState },
    tenantsByStatus: { ...s.tenantsByStatus },
    routersConnected: s.routersConnected,
    agentsConnected: s.agentsConnected,
    routeRevision: Number(s.routeRevision),
    problems: [...s.problems],
    allocated: usage(s.allocated),
    capacity: resources(s.capacity),
  };
}
