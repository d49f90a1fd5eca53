/** Proto <-> domain for the agent stream (AgentControlService). */
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  InstanceRole,
  InstanceState,
  Realization,
  RunState,
  type Hello,
  type InstanceHealth,
  type InstanceSpecSchema,
  type InstanceStatus,
} from '@pgs/proto';
import type { Realization as DomainRealization, Resources } from '@pgs/tenancy';
import type { DesiredInstance } from '../desired-set.js';
import type { InstanceHealthView } from '../health-cache.js';
import { enumName, enumValue, fromProtoResources, fromTimestamp, toNumber, toProtoResources } from './common-mapper.js';

/** A desired instance -> InstanceSpec. */
export function toInstanceSpec(d: DesiredInstance): MessageInitShape<typeof InstanceSpecSchema> {
  return {
    tenantId: d.tenantId,
    specRevision: BigInt(d.specRevision),
    role: enumValue(InstanceRole, d.role),
    resources: toProtoResources(d.resources),
    version: d.version,
    runState: enumValue(RunState, d.runState),
    roles: d.roles,
    databases: d.databases,
    dropRoles: d.dropRoles,
    dropDatabases: d.dropDatabases,
    port: d.port,
    primaryAddress: d.primaryAddress,
    primaryPort: d.primaryPort,
    synchronousStandbyNames: d.synchronousStandbyNames,
    replicationSecret: d.replicationSecret,
    replicationUser: d.replicationUser,
    fenceOnLeaseExpiry: d.fenceOnLeaseExpiry,
    replicationSlots: d.replicationSlots,
    replicationSlot: d.replicationSlot,
    standbyName: d.standbyName,
    image: d.image,
  };
}

/** What the coordinator keeps of one InstanceStatus. */
export interface InstanceReportView {
  tenantId: string;
  realization: DomainRealization;
  state: string;
  reason: string;
  address: string;
  port: number;
  specRevision: number;
  health: InstanceHealthView | undefined;
}

function healthView(h: InstanceHealth | undefined): InstanceHealthView | undefined {
  if (!h) return undefined;
  return {
    up: h.up,
    acceptingConnections: h.acceptingConnections,
    connections: h.connections,
    databaseSizeBytes: toNumber(h.databaseSizeBytes),
    role: enumName(InstanceRole, h.role),
    lsn: h.lsn,
    lagBytes: toNumber(h.lagBytes),
    timeline: h.timeline,
    checkedAt: fromTimestamp(h.checkedAt),
  };
}

/** InstanceStatus -> domain view; an unspecified realization counts as PENDING. */
export function fromInstanceStatus(s: InstanceStatus): InstanceReportView {
  return {
    tenantId: s.tenantId,
    realization: enumName<DomainRealization>(Realization, s.realization) ?? 'PENDING',
    state: enumName<string>(InstanceState, s.state) ?? '',
    reason: s.reason,
    address: s.address,
    port: s.port,
    specRevision: toNumber(s.specRevision),
    health: healthView(s.health),
  };
}

/** What registration keeps of a Hello. */
export interface HelloView {
  hostId: string;
  address: string;
  capacity: Resources;
  labels: Record<string, string>;
  runtime: string;
  agentVersion: string;
  instances: InstanceReportView[];
  appliedGeneration: number;
}

/** Hello -> domain view. */
export function fromHello(h: Hello): HelloView {
  return {
    hostId: h.hostId,
    address: h.address,
    capacity: fromProtoResources(h.capacity),
    labels: { ...h.labels },
    runtime: h.runtime,
    agentVersion: h.agentVersion,
    instances: h.instances.map(fromInstanceStatus),
    appliedGeneration: toNumber(h.appliedGeneration),
  };
}
