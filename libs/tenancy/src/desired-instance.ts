/**
 * The desired shape of one tenant instance: what the coordinator asks a host agent to run and the
 * agent converges to. Both apps map it to and from the proto InstanceSpec at their edges; this is the
 * one definition they share.
 */
import type { InstanceRole, RunState } from './statuses.js';
import type { Resources } from './resources.js';

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
  /** Backups on: the tenant's stanza, archive_timeout and retention in days (absent = no archiving). */
  backup?: InstanceBackup;
  /** Create the instance from a backup instead of empty (only an instance with no data yet). */
  restore?: RestoreSource;
  /** The new instance of a major upgrade: it runs logical replication workers (instances otherwise run none). */
  upgradeSubscriber?: boolean;
}

/** The tenant's pgBackRest stanza and archiving settings, as the agent gets them. */
export interface InstanceBackup {
  stanza: string;
  archiveTimeoutSeconds: number;
  retentionDays: number;
}

/** What a new instance is restored from: a stanza and a target (a time, a backup label, or all archived WAL). */
export interface RestoreSource {
  restoreId: string;
  stanza: string;
  target: { kind: 'time'; time: number } | { kind: 'backup'; label: string } | { kind: 'latest' };
}
