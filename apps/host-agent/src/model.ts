/**
 * The agent's domain view of instances: what the coordinator wants (DesiredInstance) and what the
 * agent observes and reports (InstanceStatus). The proto types are converted to these at the edge
 * (mappers/agent-mapper.ts); everything inside the agent uses numbers and plain strings.
 */
import type { InstanceRole, Realization, Resources, RunState } from '@pgs/tenancy';

/** A role an instance must have; the password only as a SCRAM-SHA-256 verifier. */
export interface RoleSpec {
  name: string;
  scramVerifier: string;
  login: boolean;
}

/** A database an instance must have, and its owner role. */
export interface DatabaseSpec {
  name: string;
  owner: string;
}

/** What one instance must look like (InstanceSpec). */
export interface DesiredInstance {
  tenantId: string;
  specRevision: number;
  role: InstanceRole;
  resources: Resources;
  /** PostgreSQL major version id, e.g. '15'; '' = the newest the host has. */
  version: string;
  /** Container image from the versions catalog (docker runtime); '' = the agent's template. */
  image: string;
  runState: RunState;
  roles: RoleSpec[];
  databases: DatabaseSpec[];
  dropRoles: string[];
  dropDatabases: string[];
  /** 0 = the agent picks a port from its range and keeps it. */
  port: number;
  /** Replica: where the primary listens. */
  primaryAddress: string;
  primaryPort: number;
  /** Primary: synchronous_standby_names ('' = asynchronous). */
  synchronousStandbyNames: string;
  /** Primary: the replication role's SCRAM verifier; replica: its password. '' without replicas. */
  replicationSecret: string;
  /** The replication role (REPLICATION LOGIN); '' without replicas. */
  replicationUser: string;
  /** Primary with replicas: stop it when the agent's lease runs out. */
  fenceOnLeaseExpiry: boolean;
  /** Primary: the physical slots to keep (one per replica). */
  replicationSlots: string[];
  /** Replica: its slot on the primary. */
  replicationSlot: string;
  /** Replica: its application_name (named in synchronous_standby_names). */
  standbyName: string;
}

/** One DesiredInstances message: a full set or a delta, with its generation. */
export interface DesiredSet {
  generation: number;
  full: boolean;
  instances: DesiredInstance[];
  removedTenantIds: string[];
}

/** What an agent observes of one instance (the proto InstanceState names). */
export type InstanceState = 'CREATING' | 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'CRASHED' | 'FAILED' | 'DELETED';

/** Health of one instance as measured by the agent. */
export interface InstanceHealth {
  up: boolean;
  acceptingConnections: boolean;
  connections: number;
  databaseSizeBytes: number;
  role: InstanceRole;
  lsn: string;
  lagBytes: number;
  timeline: number;
  /** Epoch ms of the check. */
  checkedAt: number;
}

/** The status of one instance, as reported to the coordinator. */
export interface InstanceStatus {
  tenantId: string;
  realization: Realization;
  state: InstanceState;
  reason: string;
  address: string;
  port: number;
  /** The postmaster pid (process runtime) or container id (docker). */
  runtimeId: string;
  pid: number;
  specRevision: number;
  health: InstanceHealth | undefined;
}

/** A one-off command from the coordinator. */
export type CommandAction =
  | { kind: 'createRole'; role: RoleSpec }
  | { kind: 'dropRole'; name: string }
  | { kind: 'setRolePassword'; name: string; scramVerifier: string }
  | { kind: 'createDatabase'; database: DatabaseSpec }
  | { kind: 'dropDatabase'; name: string }
  | { kind: 'promote' }
  | { kind: 'fence' };

/** A command and the instance it is for. */
export interface AgentCommand {
  commandId: string;
  tenantId: string;
  action: CommandAction | undefined;
}

/** The answer to a command. */
export interface CommandOutcome {
  commandId: string;
  ok: boolean;
  errorCode: string;
  message: string;
  /** Fence: the last WAL position (pg_controldata "Latest checkpoint location"); Promote: the position at promotion. */
  lsn: string;
  /** Promote: the new timeline (0 otherwise). */
  timeline: number;
}
