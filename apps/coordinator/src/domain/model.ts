/**
 * The coordinator's records: what the store keeps and the services work on. Times are epoch
 * milliseconds and counters plain numbers; proto types (bigint, Timestamp) appear only in the
 * mapper files at the gRPC edge.
 */
import type { BackupView, HostState, InstanceRole, MoveProgress, PoolMode, Realization, Resources, TenantSpec, TenantStatus } from '@pgs/tenancy';

/** Status of a user or database inside a tenant (the public API's statuses), as the proto spells it. */
export type ObjectStatus = 'NEW' | 'ACTIVE' | 'ERROR' | 'DELETING';

/** Whether a router may connect clients to a tenant, and why not (proto RouteState suffixes). */
export type RouteState = 'ROUTABLE' | 'PROVISIONING' | 'STOPPED' | 'HOST_DOWN' | 'FAILOVER' | 'SUSPENDED' | 'ERROR' | 'SWITCHING';

/** Outcome of an audited action. */
export type EventOutcome = 'SUCCESS' | 'FAILURE' | 'REFUSED';

/** A host as the coordinator knows it. */
export interface HostRecord {
  id: string;
  address: string;
  state: HostState;
  cordoned: boolean;
  draining: boolean;
  capacity: Resources;
  labels: Record<string, string>;
  runtime: string;
  agentVersion: string;
  /** Last heartbeat persisted (the liveness tracker keeps the exact one in memory). */
  lastHeartbeatAt: number;
  registeredAt: number;
  stateChangedAt: number;
  /** Generation of the last desired set sent to this host; strictly increasing. */
  generation: number;
}

/**
 * The last full desired set sent to a host: the generation it went out at and a digest of its
 * content. While the host's generation is still that one, an agent that says Hello with it holds
 * that set, so a set that still hashes the same needs no sending.
 */
export interface DesiredSent {
  generation: number;
  digest: string;
}

/** A tenant: intent (spec, revision) and realization (status, reason). */
export interface TenantRecord {
  id: string;
  spec: TenantSpec;
  /** Optimistic-concurrency revision of the spec, so concurrent edits cannot overwrite each other; bumps on every spec change. */
  revision: number;
  /**
   * Revision of what the instance must look like: bumps on spec changes and on user or database
   * changes. Sent as InstanceSpec.spec_revision, so an agent report says which shape it realized.
   */
  instanceRevision: number;
  status: TenantStatus;
  statusReason: string;
  /** Set by DeleteTenant: the rows go once every placement reports the instance deleted. */
  deleting: boolean;
  createdAt: number;
  updatedAt: number;
}

/** One placement of a tenant on a host. */
export interface PlacementRecord {
  tenantId: string;
  hostId: string;
  role: InstanceRole;
  realization: Realization;
  reason: string;
  /** Instance state the agent last reported (RUNNING, STOPPED, FAILED, ...); '' before any report. */
  instanceState: string;
  address: string;
  port: number;
  /** The instance revision the agent last reported realized; 0 = never. */
  realizedRevision: number;
  /** Once true, this instance holds data: it is never re-created empty without an operator. */
  realizedOnce: boolean;
  /** Realization attempts that failed in a row; drives the retry backoff. */
  failures: number;
  /** Earliest time of the next retry of a failed realization; 0 = none due. */
  nextRetryAt: number;
  updatedAt: number;
}

/** A placement just decided: nothing sent to its agent yet, nothing realized, no failures. */
export function newPlacement(p: { tenantId: string; hostId: string; role: InstanceRole; address: string; now: number }): PlacementRecord {
  return {
    tenantId: p.tenantId,
    hostId: p.hostId,
    role: p.role,
    realization: 'PENDING',
    reason: '',
    instanceState: '',
    address: p.address,
    port: 0,
    realizedRevision: 0,
    realizedOnce: false,
    failures: 0,
    nextRetryAt: 0,
    updatedAt: p.now,
  };
}

/** A PostgreSQL role inside a tenant. Only the SCRAM-SHA-256 verifier is kept, never a password. */
export interface UserRecord {
  tenantId: string;
  name: string;
  description: string;
  scramVerifier: string;
  owner: boolean;
  status: ObjectStatus;
  statusReason: string;
  /** Instance revision at which this user (or its last change) was asked for. */
  revision: number;
  createdAt: number;
}

/** A database inside a tenant, owned by one of its users. */
export interface DatabaseRecord {
  tenantId: string;
  name: string;
  owner: string;
  description: string;
  status: ObjectStatus;
  statusReason: string;
  revision: number;
  createdAt: number;
}

/** What routers need to reach a tenant's primary; `revision` is the global route revision. */
export interface RouteRecord {
  tenantId: string;
  hostId: string;
  address: string;
  port: number;
  state: RouteState;
  reason: string;
  externalAccess: boolean;
  connectionLimit: number;
  revision: number;
  /** How routers serve the tenant (the spec's, or the default). */
  poolMode: PoolMode;
  /** The tenant's login roles with their SCRAM verifiers: routers authenticate clients with them. */
  users: RouteUser[];
}

/** A login role as routers need it: never a password. */
export interface RouteUser {
  name: string;
  scramVerifier: string;
}

/** One change of the route table: an upsert, or a deletion when `route` is undefined. */
export interface RouteChange {
  revision: number;
  tenantId: string;
  route: RouteRecord | undefined;
}

/** One entry of the append-only event and audit log. */
export interface EventRecord {
  id: number;
  time: number;
  /** Who: "operator", "host:<id>", "router:<id>", "system:scheduler", ... */
  principal: string;
  /** What, dotted: "tenant.create", "host.down", "placement.realized", ... */
  action: string;
  tenantId: string;
  hostId: string;
  outcome: EventOutcome;
  message: string;
  details: Record<string, string>;
}

/** An event before the store gives it an id. */
export type NewEvent = Omit<EventRecord, 'id' | 'tenantId' | 'hostId' | 'details' | 'outcome'> &
  Partial<Pick<EventRecord, 'tenantId' | 'hostId' | 'details' | 'outcome'>>;

/** A tenant's pgBackRest stanza (one per tenant incarnation) and how far its archive reached when last kept. */
export interface StanzaRecord {
  tenantId: string;
  stanza: string;
  /** Epoch ms through which every commit was archived (the primary's archivedThrough; 0 = unknown). */
  archivedThrough: number;
  lastArchivedWal: string;
  createdAt: number;
}

/** One base backup of a tenant (times epoch ms, sizes bytes). */
export interface BackupRecord extends BackupView {
  tenantId: string;
  reason: string;
  sizeBytes: number;
  repoSizeBytes: number;
  /** The whole stanza's repository size after this backup. */
  stanzaRepoSizeBytes: number;
  lsnStart: string;
  lsnStop: string;
  /** "schedule", "after-failover", "operator:<name>". */
  trigger: string;
  stanza: string;
}

/** Which restore: into a new tenant, over a tenant's own data, or a lost tenant from its backup. */
export type RestoreKind = 'new' | 'in_place' | 'recreate';

/** RUNNING phases: waiting for the restored instance's recovery, then (in place) removing the old instances. */
export type RestorePhase = 'recovering' | 'removing_old' | 'done';

/** A restore operation, a row with its phase. */
export interface RestoreRecord {
  id: string;
  kind: RestoreKind;
  sourceTenantId: string;
  targetTenantId: string;
  state: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  phase: RestorePhase;
  reason: string;
  /** The stanza the backup is read from (the source tenant's). */
  sourceStanza: string;
  /** What was asked: a time, a backup (with its label) or everything archived. */
  toTime: number;
  toBackupId: string;
  backupLabel: string;
  latest: boolean;
  /** The host of the restored primary ('' until placed). */
  hostId: string;
  /** In place and recreate: the hosts of the replaced instances (their data is kept until the restore serves). */
  oldHosts: string[];
  /** Recreate: the lost primary's last reported WAL position ('' = unknown). */
  oldLsn: string;
  startedAt: number;
  finishedAt: number;
  recoveredLsn: string;
  recoveredTime: number;
  missingWalBytes: number;
  timeline: number;
  createdBy: string;
}

/** Where a failover or switchover stands (see failover-manager.ts for the steps). */
export type OperationPhase = 'fencing' | 'choosing' | 'promoting';

/**
 * A failover or switchover in flight, a row per tenant: a restarted coordinator resumes it from
 * here instead of guessing from the tenant's status and the last audit events.
 */
export interface OperationRecord {
  tenantId: string;
  kind: 'failover' | 'switchover';
  /** What started it: a FailureCause ('host_down', 'unhealthy'), 'switchover' or 'resumed'. */
  cause: string;
  phase: OperationPhase;
  /** When the failure began (last heartbeat of a lost host, first unhealthy report) or the request came. */
  failedAt: number;
  startedAt: number;
  oldPrimary: string;
  /** Switchover: the replica asked for ('' = any). */
  toHostId: string;
  /** The fencing point: when the old primary counted as fenced (0 = not yet), and how. */
  fencedAt: number;
  fenceSentAt: number;
  fenceAckedAt: number;
  /**
   * When the old primary was found gone with its agent (0 = not): a restarted coordinator fences it
   * from this point at once while its agent is still away, instead of waiting for the lease.
   */
  goneAt: number;
  /** The old primary's last WAL position from its Fence answer ('' = unknown). */
  finalLsn: string;
  /** The replica chosen for promotion ('' = not chosen yet). */
  candidate: string;
  chosenAt: number;
  promoteSentAt: number;
  /** The operation gives up (switchover: rolls back; promotion: fences the candidate) past this; 0 = never. */
  deadline: number;
  updatedAt: number;
}

/** The instance of an upgrade that is not the tenant's placement: the new one before the switch, the old one after. */
export interface UpgradeInstance {
  hostId: string;
  /** The PostgreSQL major it runs. */
  major: number;
  /** The instance revision its agent last reported realized (0 = never). */
  realizedRevision: number;
  /** Realization failed: the agent's reason ('' = none). */
  failedReason: string;
  /** Instance state the agent last reported ('' before any report). */
  state: string;
  address: string;
  port: number;
}

/**
 * A major upgrade by logical replication in flight or kept for a rollback, a row per tenant: the
 * phase and the facts of libs/tenancy decideUpgrade that are not read elsewhere, so a restarted
 * coordinator resumes it. The tenant keeps a single placement (the instance the route names); the
 * other instance lives in this row and is sent to its host from here.
 */
export interface UpgradeRecord {
  tenantId: string;
  phase: 'creating' | 'copying' | 'switching' | 'kept';
  fromHostId: string;
  toHostId: string;
  fromMajor: number;
  toMajor: number;
  startedAt: number;
  phaseStartedAt: number;
  copyDeadline: number;
  switchAttempts: number;
  /** Kept: the old instance is deleted after this (0 = only by an explicit finalize). */
  keepUntil: number;
  request: 'none' | 'rollback' | 'finalize';
  principal: string;
  /** The major of the pg_dump that copies the schema (checkUpgrade's choice). */
  dumpMajor: number;
  replicaIdentityFull: boolean;
  /** The databases copied (read from the source when the upgrade started). */
  databases: string[];
  /** The subscription role's password, sealed (KeyRing, bound to the tenant); the source gets its verifier. */
  sealedPassword: string;
  verifier: string;
  sourcePrepared: boolean;
  subscribed: boolean;
  /** The route is SWITCHING (routers hold the tenant's clients): at the switch, or while a rollback gives the route back. */
  held: boolean;
  /** BLOCK_WRITERS answered: the source's roles at the switch, the new instance's during a rollback. */
  writersBlocked: boolean;
  /**
   * A tenant with backups: its stanza before the switch. The new major archives into a stanza of its
   * own from the switch on (a stanza belongs to one database system); a rollback puts this one back.
   */
  stanzaBefore?: StanzaRecord;
  /** The other instance (see above). */
  other: UpgradeInstance;
  /** The last step's words (status of `tenant get`). */
  lastReason: string;
  /** Measured: copy (start to switch), the switch's hold, in ms (0 = not yet). */
  copyMs: number;
  switchMs: number;
  updatedAt: number;
}

/**
 * A live move in flight, a row per tenant: where it is (libs/tenancy MoveProgress) and what only the
 * executor knew, so a restarted coordinator takes it back (libs/tenancy resumeMove) instead of
 * leaving a copy half built, or a woken tenant on a host that gave its room away.
 */
export interface MoveRecord {
  tenantId: string;
  progress: MoveProgress;
  /** Who asked (the principal of every event of the move). */
  principal: string;
  /** A wake by a move: why the member's own host could not take it back ('' = an ordinary move). */
  wake: string;
  /** The steps finished so far, for the completion event. */
  steps: { name: 'copy' | 'switch' | 'remove_old'; durationMs: number; detail: string }[];
  updatedAt: number;
}
