/**
 * @pgs/tenancy: the domain every pgs component agrees on, with no I/O and no clock: tenant, user
 * and database names, resource specs and their bounds, the status machine, revisions, routing
 * keys and placement. Apps convert their protobuf messages to these types at their edge.
 */
export { PgsError, ValidationError, StaleRevisionError, TransitionError, type ErrorKind } from './errors.js';
export {
  TENANT_STATUSES,
  REALIZATIONS,
  HOST_STATES,
  INSTANCE_ROLES,
  type TenantStatus,
  type Realization,
  type HostState,
  type InstanceRole,
  type RunState,
} from './statuses.js';
export {
  validateTenantId,
  isValidTenantId,
  validateUserName,
  validateDatabaseName,
  validatePassword,
  validateHostId,
  validateLabels,
  RESERVED_TENANT_IDS,
  RESERVED_ROLE_PREFIXES,
  MAX_NAME_LENGTH,
  MIN_PASSWORD_LENGTH,
  MAX_PASSWORD_LENGTH,
  MAX_LABELS,
  TENANT_ID_PATTERN,
} from './names.js';
export { parseCpu, formatCpu, parseSize, formatSize } from './units.js';
export {
  RESOURCE_BOUNDS,
  DEFAULT_TENANT_SPEC,
  DEFAULT_POOL_MODE,
  validateResources,
  validateTenantSpec,
  validateSpecChange,
  type Resources,
  type TenantSpec,
  type PoolMode,
  type Bound,
} from './resources.js';
export { postgresSettingsFor, maxConnectionsFor } from './postgres-settings.js';
export {
  TENANT_TRANSITIONS,
  canTransition,
  assertTransition,
  deriveTenantStatus,
  ERROR_AFTER_FAILURES,
  type PlacementView,
  type DeriveInput,
  type DerivedStatus,
} from './lifecycle.js';
export { checkRevision, nextRevision, type CheckRevisionOptions } from './revision.js';
export {
  ROUTING_SOURCES,
  DEFAULT_ROUTING_ORDER,
  RoutingKeyError,
  resolveRoutingKey,
  validateRoutingOrder,
  type RoutingSource,
  type RoutingInput,
  type RoutingOptions,
  type RoutingDecision,
} from './routing-key.js';
export { splitStartupOptions, joinStartupOptions } from './startup-options.js';
export {
  DEFAULT_PLACEMENT_POLICY,
  placeTenants,
  type HostCandidate,
  type PlacementRequest,
  type PlacementPolicy,
  type PlacementDecision,
  type Unplaced,
} from './placement.js';
export { planDrain, type DrainMove, type DrainingInstance } from './drain.js';
export {
  checkMove,
  decideMove,
  type MoveRefusal,
  type MoveRequestFacts,
  type MovePhase,
  type MoveProgress,
  type MoveFacts,
  type MoveDecision,
  type MovePolicy,
  type MoveCheckpoint,
  MOVE_CHECKPOINT_WAIT_MS,
  MOVE_CHECKPOINT_FRESH_MS,
} from './move.js';
export { resumeMove, type MoveResume, type MoveResumeFacts } from './move-resume.js';
export {
  checkInPlaceUpgrade,
  checkUpgrade,
  upgradeRefusalMessage,
  type UpgradeCheck,
  type UpgradeRefusal,
  type UpgradeRequestFacts,
  type UpgradeSourceFacts,
} from './upgrade-check.js';
export { decideUpgrade, type UpgradeDecision, type UpgradeFacts, type UpgradePhase, type UpgradePolicy, type UpgradeProgress } from './upgrade.js';
export { parseLsn, tryParseLsn, formatLsn, compareLsn, lsnDistance } from './failover-lsn.js';
export { formerPrimaryNeedsRewind, parseTimelineHistory, type FormerPrimaryControl, type RewindNeed, type TimelineSwitch } from './rewind-need.js';
export {
  REPLICATION_ROLE,
  REPLICATION_SLOT_PREFIX,
  standbyName,
  replicationSlotName,
  synchronousStandbyNames,
  syncConfigFor,
  type SyncConfig,
} from './failover-replication.js';
export {
  primaryFailure,
  leaseDeadline,
  fencingState,
  pickPromotionCandidate,
  failoverPlan,
  type FailoverMember,
  type FailureCause,
  type PrimaryVerdict,
  type PrimaryObservation,
  type FencingInput,
  type FencingState,
  type SyncQuorum,
  type CandidateInput,
  type CandidateDecision,
  type FailoverStep,
  type PlanInput,
} from './failover.js';
export {
  hostLiveness,
  primaryLoss,
  brokenAndSilent,
  nextSenderWatch,
  stillGone,
  type StoredHostView,
  type SenderWatchState,
  type StreamEnd,
  type AgentSignals,
  type LivenessPolicy,
  type LivenessVerdict,
  type PrimarySignals,
  type DetectionPolicy,
  type LossCause,
  type LossVerdict,
} from './failover-signals.js';
export {
  startGraceHolds,
  stormHolds,
  backlogHolds,
  startProgress,
  readAdjusted,
  hostLivenessWithBacklog,
  type StartProgress,
  type StartGracePolicy,
  type ReadState,
  type OwnDelay,
} from './liveness-backlog.js';
export { renewedLeaseDeadline, leaseHoldReason, leaseExpired, type LeaseHoldInput } from './agent-lease.js';
export { desiredAfterHello, type FullSetSent, type HelloDesired, type HelloDesiredInput } from './desired-after-hello.js';
export { reportMayFlipHealth, type ReportHealthInput } from './report-health-verdict.js';
export type { DatabaseSpec, DesiredInstance, RoleSpec, InstanceBackup, RestoreSource } from './desired-instance.js';
export {
  DEFAULT_BACKUP_POLICY,
  UNSET_BACKUP_POLICY,
  BACKUP_POLICY_BOUNDS,
  validateBackupPolicy,
  effectiveBackupPolicy,
  retentionDays,
  shortestInterval,
  type BackupPolicy,
  type EffectivePolicy,
} from './backup-policy.js';
export type { BackupType, BackupStatus, BackupView } from './backup-types.js';
export { dueBackup, defaultBackupType, backupRunning, type DueInput, type DueBackup, type BackupTrigger } from './backup-schedule.js';
export {
  recoveryWindow,
  dependentsOf,
  deleteImpact,
  expiredByRetention,
  validateRestoreTarget,
  describeWindow,
  rfc3339,
  type RecoveryWindow,
  type DeleteImpact,
  type RestoreTarget,
  type ResolvedTarget,
} from './recovery-window.js';
export { backupProblems, type ArchiveView, type ProblemInput } from './backup-problems.js';
export {
  DEFAULT_LEASE_TIMINGS,
  decideLease,
  nextLeadership,
  mayAct,
  actUntil,
  acceptEpoch,
  validateLeaseTimings,
  leaseTimingsFor,
  type LeaseRow,
  type LeaseTimings,
  type LeaseCandidate,
  type LeaseDecision,
  type Leadership,
} from './leader-lease.js';
export { decideIdleSuspend, formatIdleSuspend, type IdleFacts, type IdleTenant, type IdleDecision } from './idle-suspend.js';
export { takeToken, type TokenBucket, type BucketLimit, type TakeResult } from './wake-limit.js';
export { suspendedReason, suspendedSince } from './suspend-reason.js';
export { wakeProblem, type WakeHost, type WakeMember } from './wake-room.js';
export { decideWake, type WakeDecision, type WakeFacts, type WakeMove } from './wake-decision.js';
export { waitsForPrimary, type StartOrderFacts } from './start-order.js';
export {
  buildVersionCatalog,
  pgbackrestMaxMajor,
  versionProblem,
  type CatalogVersion,
  type ConfiguredVersion,
  type HostMajor,
  type HostVersions,
  type VersionNeeds,
} from './postgres-versions.js';
export {
  MAX_INIT_SCRIPTS,
  MAX_INIT_SQL_BYTES,
  validateInitScripts,
  newInitSql,
  releaseRefusal,
  releaseInitSql,
  initSqlSendDue,
  startInitSql,
  finishInitSql,
  type InitScript,
  type InitSqlState,
  type InitSqlRecord,
  type InitSqlPrimary,
  type InitSqlOutcome,
} from './init-sql.js';
