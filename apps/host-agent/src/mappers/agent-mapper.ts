/**
 * Proto <-> domain for the agent stream (AgentControlService), the one place where uint64 bigints
 * become numbers and enum values become the domain's names.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  InstanceRole,
  InstanceState,
  Realization,
  RunState,
  type Command,
  type DesiredInstances,
  type HelloSchema,
  type InstanceHealthSchema,
  type InstanceSpec,
  type InstanceStatusSchema,
  type UsageSchema,
} from '@pgs/proto';
import type { Resources } from '@pgs/tenancy';
import type { AgentCommand, CommandAction, DesiredInstance, DesiredSet, InstanceHealth, InstanceStatus } from '../model.js';

/** uint64 from the wire -> number (values past 2^53 are not revisions or generations we issue). */
export function toNumber(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** InstanceSpec -> DesiredInstance; unspecified role and run state mean primary and running. */
export function fromInstanceSpec(s: InstanceSpec): DesiredInstance {
  return {
    tenantId: s.tenantId,
    specRevision: toNumber(s.specRevision),
    role: s.role === InstanceRole.REPLICA ? 'REPLICA' : 'PRIMARY',
    resources: { cpuMillis: s.resources?.cpuMillis ?? 0, memoryMib: s.resources?.memoryMib ?? 0, diskMib: s.resources?.diskMib ?? 0 },
    version: s.version,
    image: s.image,
    runState: s.runState === RunState.STOPPED ? 'STOPPED' : 'RUNNING',
    roles: s.roles.map((r) => ({ name: r.name, scramVerifier: r.scramVerifier, login: r.login })),
    databases: s.databases.map((d) => ({ name: d.name, owner: d.owner })),
    dropRoles: [...s.dropRoles],
    dropDatabases: [...s.dropDatabases],
    port: s.port,
    primaryAddress: s.primaryAddress,
    primaryPort: s.primaryPort,
    synchronousStandbyNames: s.synchronousStandbyNames,
    replicationSecret: s.replicationSecret,
    replicationUser: s.replicationUser,
    fenceOnLeaseExpiry: s.fenceOnLeaseExpiry,
    replicationSlots: [...s.replicationSlots],
    replicationSlot: s.replicationSlot,
    standbyName: s.standbyName,
  };
}

/** DesiredInstances -> DesiredSet. */
export function fromDesiredInstances(m: DesiredInstances): DesiredSet {
  return { generation: toNumber(m.generation), full: m.full, instances: m.instances.map(fromInstanceSpec), removedTenantIds: [...m.removedTenantIds] };
}

/** Command -> AgentCommand (an action this agent does not know maps to undefined). */
export function fromCommand(c: Command): AgentCommand {
  const a = c.action;
  let action: CommandAction | undefined;
  switch (a.case) {
    case 'createRole':
      action = { kind: 'createRole', role: { name: a.value.role?.name ?? '', scramVerifier: a.value.role?.scramVerifier ?? '', login: a.value.role?.login ?? true } };
      break;
    case 'dropRole':
      action = { kind: 'dropRole', name: a.value.name };
      break;
    case 'setRolePassword':
      action = { kind: 'setRolePassword', name: a.value.name, scramVerifier: a.value.scramVerifier };
      break;
    case 'createDatabase':
      action = { kind: 'createDatabase', database: { name: a.value.database?.name ?? '', owner: a.value.database?.owner ?? '' } };
      break;
    case 'dropDatabase':
      action = { kind: 'dropDatabase', name: a.value.name };
      break;
    case 'promote':
      action = { kind: 'promote' };
      break;
    case 'fence':
      action = { kind: 'fence' };
      break;
    default:
      action = undefined;
  }
  return { commandId: c.commandId, tenantId: c.tenantId, action };
}

function toHealth(h: InstanceHealth): MessageInitShape<typeof InstanceHealthSchema> {
  return {
    up: h.up,
    acceptingConnections: h.acceptingConnections,
    connections: h.connections,
    databaseSizeBytes: BigInt(Math.max(0, Math.floor(h.databaseSizeBytes))),
    role: h.role === 'REPLICA' ? InstanceRole.REPLICA : InstanceRole.PRIMARY,
    lsn: h.lsn,
    lagBytes: BigInt(Math.max(0, Math.floor(h.lagBytes))),
    timeline: h.timeline,
    checkedAt: h.checkedAt > 0 ? timestampFromMs(h.checkedAt) : undefined,
  };
}

/** InstanceStatus -> proto. */
export function toInstanceStatus(s: InstanceStatus): MessageInitShape<typeof InstanceStatusSchema> {
  return {
    tenantId: s.tenantId,
    realization: Realization[s.realization],
    state: InstanceState[s.state],
    reason: s.reason,
    address: s.address,
    port: s.port,
    runtimeId: s.runtimeId,
    pid: s.pid,
    specRevision: BigInt(s.specRevision),
    health: s.health ? toHealth(s.health) : undefined,
  };
}

/** What the agent says in its Hello. */
export interface HelloView {
  hostId: string;
  address: string;
  capacity: Resources;
  labels: Record<string, string>;
  runtime: string;
  agentVersion: string;
  instances: InstanceStatus[];
  appliedGeneration: number;
}

/** HelloView -> proto Hello. */
export function toHello(h: HelloView): MessageInitShape<typeof HelloSchema> {
  return {
    hostId: h.hostId,
    address: h.address,
    capacity: h.capacity,
    labels: h.labels,
    runtime: h.runtime,
    agentVersion: h.agentVersion,
    instances: h.instances.map(toInstanceStatus),
    appliedGeneration: BigInt(h.appliedGeneration),
  };
}

/** Requested resources in use and the instance count -> proto Usage. */
export function toUsage(u: Resources & { instances: number }): MessageInitShape<typeof UsageSchema> {
  return { cpuMillis: u.cpuMillis, memoryMib: u.memoryMib, diskMib: u.diskMib, instances: u.instances };
}
