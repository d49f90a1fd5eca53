/**
 * The runtime interface: how the agent makes, starts, stops and removes one tenant's PostgreSQL
 * server. Two drivers implement it (process-runtime.ts, docker-runtime.ts); the instance manager
 * only ever talks to this interface. Every method is idempotent, so a converge that was cut short
 * (agent killed, stream broken) is simply run again.
 */
import type { ClientConfig } from 'pg';
import type { HostMajor, InstanceRole, Resources, RunState } from '@pgs/tenancy';
import type { BackupKind, BackupRepository, BackupResult, InstanceBackup, RecoveryResult, RestoreSource } from '../backup/backup-types.js';
import type { PendingWal } from '../backup/pending-wal.js';
import type { ReplicationTls } from './standby-tools.js';

/** See InstanceRuntime.upgradeTools. */
export interface UpgradeTools {
  /** The bin dir with pg_dump and psql of `major`, if this host has them. */
  clientBinDir(major: string): string | undefined;
  tls(): ReplicationTls;
  runAs: { uid: number; gid: number } | undefined;
}

/** Which driver. */
export type RuntimeKind = 'process' | 'docker';

/** The part of a desired instance a runtime needs. */
export interface RuntimeSpec {
  tenantId: string;
  specRevision: number;
  resources: Resources;
  /** Major version id ('' = the driver's default). */
  version: string;
  /** Container image (docker); '' = the driver's template. */
  image: string;
  /** 0 = keep the instance's port, or pick one from the range for a new instance. */
  port: number;
  /** Remembered so a restarted agent knows whether to bring a dead instance back. */
  runState: RunState;
  /** What the data directory is set up as: a primary, or a standby of `replication`'s primary. Absent = PRIMARY. */
  role?: InstanceRole;
  /** Replication settings of a tenant with replicas; absent for a lone instance. */
  replication?: RuntimeReplication;
  /** Primary with replicas: the agent stops it when its lease runs out (remembered across agent restarts). */
  fenceOnLeaseExpiry?: boolean;
  /** WAL archiving into the tenant's pgBackRest stanza (drivers with `backups` only). */
  backup?: InstanceBackup;
  /** Create the data directory from this backup instead of the template (only when there is none yet). */
  restore?: RestoreSource;
  /** The new instance of a major upgrade: logical replication workers for its subscriptions. */
  upgradeSubscriber?: boolean;
}

/** How an instance takes part in replication. */
export interface RuntimeReplication {
  /** The replication role (REPLICATION LOGIN). */
  user: string;
  /** Replica: the role's password, kept only in a 0600 passfile (never in the instance record). Primary: ''. */
  password: string;
  /** Replica: where the primary listens (port 0 = not known yet). */
  primaryAddress: string;
  primaryPort: number;
  /** Replica: its slot on the primary (primary_slot_name) and its application_name. */
  slot: string;
  standbyName: string;
  /** Primary: synchronous_standby_names ('' = asynchronous). */
  synchronousStandbyNames: string;
}

/** The host's instance certificate (instance-certificate.ts): one for every instance on the host. */
export interface InstanceTlsFiles {
  dir: string;
  certFile: string;
  /** Mode 0600, owned by the postgres OS user. */
  keyFile: string;
  /** The fleet CA: what a standby verifies its primary against. */
  caFile: string;
}

/** TLS of the instances' network connections. */
export interface InstanceTls {
  /** The certificate files; undefined while the host has none (instances then serve no TLS). */
  files: InstanceTlsFiles | undefined;
  /** The fleet wants TLS-only network connections (the coordinator's Welcome): pg_hba hostssl, standbys verify-full. */
  required: boolean;
}

/** How to stop: fast (clients disconnected, WAL shipped, shutdown checkpoint) or immediate (at once). */
export type StopMode = 'fast' | 'immediate';

/** One instance as the runtime sees it. */
export interface RuntimeInstance {
  tenantId: string;
  address: string;
  port: number;
  running: boolean;
  /** Postmaster pid (process) or 0 (docker, where the pid is another namespace's). */
  pid: number;
  /** Postmaster pid as text (process) or container id (docker). */
  runtimeId: string;
  /** The last spec the runtime applied, as remembered on disk (or in container labels). */
  spec: RuntimeSpec;
  /** Where the recovery ended, for an instance created from a backup. */
  recovery?: RecoveryResult;
}

/** Backups of a driver's instances (pgBackRest); the instance's spec names its stanza. */
export interface BackupOperations {
  /** The fleet's repository from the coordinator's Welcome (undefined: none); returns whether it changed. */
  setRepository(repo: BackupRepository | undefined): boolean;
  /** The instance's stanza exists in the repository afterwards (stanza-create, idempotent). */
  stanzaCreate(tenantId: string): Promise<void>;
  /** A base backup of the running primary, and what pgBackRest made. */
  backup(tenantId: string, kind: BackupKind): Promise<BackupResult>;
  /** Removes one backup of the instance's stanza. */
  expire(tenantId: string, label: string): Promise<void>;
  /** WAL waiting in pg_wal for the archiver. */
  pendingWal(tenantId: string): PendingWal;
  /**
   * Right after the instance was promoted to `timeline`: marks the old timeline's segments it
   * received for archiving again (received-wal.ts says why); returns the segments marked.
   */
  archiveReceivedWal(tenantId: string, timeline: number): string[];
  /** The backup settings the instance was last configured with (undefined: none). */
  backupOf(tenantId: string): InstanceBackup | undefined;
}

/** A runtime driver. */
export interface InstanceRuntime {
  readonly kind: RuntimeKind;
  /** Whether the driver can run replicas (a standby cloned from a primary on another host). */
  readonly supportsReplication: boolean;
  /** Prepares the host (template data directory, image check); called once at agent start. */
  init(): Promise<void>;
  /** Every instance on this host (for adoption after an agent restart). */
  list(): Promise<RuntimeInstance[]>;
  /** One instance, or undefined when it does not exist. */
  inspect(tenantId: string): Promise<RuntimeInstance | undefined>;
  /**
   * Creates the instance when missing (not started); otherwise applies a changed spec (settings,
   * limits, port), reloading or restarting a running instance when that is what the change needs.
   */
  ensure(spec: RuntimeSpec): Promise<RuntimeInstance>;
  /** Starts it (adopting a running one, clearing a stale pid file) and waits until it accepts connections. */
  start(tenantId: string): Promise<RuntimeInstance>;
  /** Stops it: fast shutdown, then immediate after the stop timeout ('immediate': at once, for fencing). */
  stop(tenantId: string, mode?: StopMode): Promise<void>;
  /** Whether the data directory is a standby's (standby.signal), running or not. */
  isStandby(tenantId: string): Promise<boolean>;
  /** pg_controldata's "Latest checkpoint location" of a stopped instance ('' when unknown). */
  checkpointLsn(tenantId: string): Promise<string>;
  /** Stops it and deletes its data. Only ever called for an explicit deletion. */
  remove(tenantId: string): Promise<void>;
  /** How the agent connects as the superuser for administration (no stored secret). */
  adminConnection(tenantId: string, database?: string): ClientConfig;
  /** Waits for the driver's background work and releases its resources; instances keep running. */
  close(): Promise<void>;
  /**
   * Instances it can create right now without copying a data directory first (the process
   * driver's ready spares of the default major); undefined where that does not apply (docker).
   */
  readySpares(): number | undefined;
  /**
   * The PostgreSQL majors this host can run, with the tools of each and the host's pgBackRest
   * version (told to the coordinator in Hello); undefined = the driver cannot tell (docker).
   */
  postgresMajors(): { majors: HostMajor[]; pgbackrestVersion: string } | undefined;
  /**
   * What a major upgrade's steps need from the host: the client tools of a major, how instances
   * here reach other instances, and the OS user the tools run as. Absent: the driver cannot run them.
   */
  upgradeTools?(): UpgradeTools;
  /** Backups and restores (pgBackRest); undefined where the driver has none (docker). */
  readonly backups?: BackupOperations;
  /**
   * The instances' TLS from now on (certificate files, whether the fleet requires TLS); returns whether
   * it differs from before, and then every instance must converge again to take it.
   */
  setTls(tls: InstanceTls): boolean;
  /** Running instances re-read their certificate files (after a renewal); failures are logged. */
  reloadTls(): Promise<void>;
  /** Calls `listener` whenever readySpares() changes (drivers without spares never call it). */
  onSparesChanged?(listener: () => void): void;
}
