/**
 * The agent's domain view of instances: what the coordinator wants (DesiredInstance) and what the
 * agent observes and reports (InstanceStatus). The proto types are converted to these at the edge
 * (mappers/agent-mapper.ts); everything inside the agent uses numbers and plain strings.
 */
import type { DatabaseSpec, DesiredInstance as SharedDesiredInstance, InstanceRole, Realization, RoleSpec } from '@pgs/tenancy';
import type { ArchiveStatus, BackupKind, BackupResult, RecoveryResult } from './backup/backup-types.js';

/** The desired instance's parts are shared with the coordinator (libs/tenancy). */
export type { DatabaseSpec, RoleSpec } from '@pgs/tenancy';

/** The desired instance, as the coordinator and the agent share it (libs/tenancy), backup fields included. */
export type DesiredInstance = SharedDesiredInstance;

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
  /** Client backends not idle (idle in transaction included) and walsenders without a standby's slot. */
  busyBackends: number;
  databaseSizeBytes: number;
  role: InstanceRole;
  lsn: string;
  lagBytes: number;
  timeline: number;
  /** Epoch ms of the check. */
  checkedAt: number;
  /** WAL archiving (primaries with backups). */
  archive?: ArchiveStatus;
  /** A replica: when its walreceiver lost the primary it streamed from while it kept running (epoch ms; absent while streaming). */
  senderLostAt?: number;
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
  /** For an instance created from a backup: where its recovery ended, or why the restore failed. */
  recovery?: RecoveryResult;
}

/** A one-off command from the coordinator. */
export type CommandAction =
  | { kind: 'createRole'; role: RoleSpec }
  | { kind: 'dropRole'; name: string }
  | { kind: 'setRolePassword'; name: string; scramVerifier: string }
  | { kind: 'createDatabase'; database: DatabaseSpec }
  | { kind: 'dropDatabase'; name: string }
  /** minLsn: a planned switch's standby replays up to there first ('' = promote what it has). */
  | { kind: 'promote'; minLsn: string }
  /** graceMs: a planned switch lets open transactions finish for up to this long first. */
  | { kind: 'fence'; graceMs: number }
  | { kind: 'runBackup'; backupId: string; type: BackupKind; stanza: string }
  | { kind: 'expireBackup'; stanza: string; label: string }
  | { kind: 'runInitSql'; attempt: number; scripts: InitScriptSpec[] }
  /** An immediate CHECKPOINT of a running primary, just before a planned switch. */
  | { kind: 'checkpoint' }
  | UpgradeSourceAction
  | UpgradeTargetAction;

/** A step of a major upgrade on the old instance's host (see upgrade/upgrade-source.ts). */
export interface UpgradeSourceAction {
  kind: 'upgradeSource';
  step: 'inspect' | 'prepare' | 'blockWriters' | 'unblockWriters' | 'clean';
  /** The subscription role and its SCRAM verifier (prepare, clean). */
  user: string;
  scramVerifier: string;
  replicaIdentityFull: boolean;
  /** The tenant's roles (blockWriters, unblockWriters). */
  roles: string[];
  /** Empty = every database of the instance. */
  databases: string[];
}

/** A step of a major upgrade on the new instance's host (see upgrade/upgrade-target.ts). */
export interface UpgradeTargetAction {
  kind: 'upgradeTarget';
  step: 'subscribe' | 'syncState' | 'catchUp' | 'abandon';
  source: { address: string; port: number; user: string; password: string };
  databases: string[];
  /** The pg_dump major to copy the schema with. */
  dumpMajor: string;
  timeoutMs: number;
}

/** What an upgrade step on the old instance found or did. */
export interface UpgradeSourceOutcome {
  major: number;
  walLevel: string;
  largeObjects: string[];
  unloggedTables: string[];
  tablesWithoutIdentity: string[];
  databases: string[];
  sessionsEnded: number;
  identityFullSet: string[];
}

/** What an upgrade step on the new instance found or did. */
export interface UpgradeTargetOutcome {
  tables: number;
  ready: number;
  sourceLsn: string;
  sequences: number;
}

/** One init script to run (RunInitSql). */
export interface InitScriptSpec {
  name: string;
  sql: string;
  /** '' = the tenant's default database (named like the tenant). */
  database: string;
}

/** How far a run of init scripts got. */
export interface InitSqlRunResult {
  /** Scripts committed, counting those an earlier run committed. */
  applied: number;
  failedScript: string;
  error: string;
  sqlstate: string;
}

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
  /** RunBackup: what pgBackRest made. */
  backup?: BackupResult;
  /** RunInitSql: how far the scripts ran. */
  initSql?: InitSqlRunResult;
  upgradeSource?: UpgradeSourceOutcome;
  upgradeTarget?: UpgradeTargetOutcome;
}
