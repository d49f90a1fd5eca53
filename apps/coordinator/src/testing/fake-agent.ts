/**
 * A fake host agent on a real gRPC stream: says Hello, heartbeats, and (when `autoRealize`)
 * answers every desired instance with a REALIZED/RUNNING report on a port of its own, and every
 * removal with DELETED. Tests drive failures by stopping heartbeats or closing the stream.
 */
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { identity, identityClaimMetadata } from '@pgs/security';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  AgentControlService,
  BackupType,
  InstanceRole,
  InstanceState,
  Realization,
  RunState,
  type ArchiveStatusSchema,
  type Command,
  type DesiredInstances,
  type InstanceSpec,
  type RecoveryResultSchema,
  type RunBackup,
  type RunInitSql,
  type Welcome,
} from '@pgs/proto';
import { createClient, type BidiStream, type Client } from '@pgs/rpc';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type {
  ConnectRequestSchema,
  ConnectResponseSchema,
  HostPostgresMajorSchema,
  InstanceStatusSchema,
  UpgradeSourceResultSchema,
  UpgradeTargetResultSchema,
} from '@pgs/proto';

/** Options of a fake agent. */
export interface FakeAgentOptions {
  hostId: string;
  address: string;
  coordinator: string;
  capacity?: { cpuMillis: number; memoryMib: number; diskMib: number };
  labels?: Record<string, string>;
  heartbeatMs?: number;
  autoRealize?: boolean;
  /** Instances already running (adopted) to announce in Hello. */
  adopted?: MessageInitShape<typeof InstanceStatusSchema>[];
  appliedGeneration?: bigint;
  /** Transport credentials (mTLS with a host certificate); default plaintext for an --insecure coordinator. */
  credentials?: ChannelCredentials;
  /** The host id to claim on an --insecure coordinator (default hostId; tests of the host check claim another). */
  claimHostId?: string;
  /** Answer Fence/Promote commands (default true); false plays an agent that hangs. */
  answerCommands?: boolean;
  /** Ready spares to report in heartbeats (default: none reported, as a docker host). */
  readySpares?: number;
  /** PostgreSQL majors to announce in Hello (default: none reported, as an older agent). */
  postgresMajors?: MessageInitShape<typeof HostPostgresMajorSchema>[];
  pgbackrestVersion?: string;
  /**
   * Answers to major-upgrade steps (UpgradeSource/UpgradeTarget); default: every step succeeds, the
   * source is a clean PostgreSQL 15 with wal_level=logical and one database named like the tenant.
   * A promise answers once it settles (a step that runs while something else happens); the agent
   * reads no other message meanwhile.
   */
  upgradeAnswer?: (command: Command) => UpgradeAnswer | 'hang' | Promise<UpgradeAnswer | 'hang'>;
  /** How a Checkpoint before a move's switch is answered (default 'ok'; 'fail' plays an older agent; 'never': the move waits its bound). */
  checkpointAnswer?: 'ok' | 'fail' | 'never';
}

/** A fake agent's answer to an upgrade step. */
export interface UpgradeAnswer {
  ok: boolean;
  errorCode?: string;
  message?: string;
  upgradeSource?: MessageInitShape<typeof UpgradeSourceResultSchema>;
  upgradeTarget?: MessageInitShape<typeof UpgradeTargetResultSchema>;
}

/** The default answer to an upgrade step: it worked, on a source that can be upgraded. */
export function upgradeDefaultAnswer(command: Command): UpgradeAnswer {
  if (command.action.case === 'upgradeSource') return { ok: true, upgradeSource: { major: 15, walLevel: 'logical', databases: [command.tenantId] } };
  return { ok: true, upgradeTarget: { tables: 2, ready: 2, sourceLsn: '0/3000060', sequences: 1 } };
}

/** A command the fake agent received, and when. */
export interface ReceivedCommand {
  command: Command;
  at: number;
}

/** A running fake agent. */
export class FakeAgent {
  readonly desired: DesiredInstances[] = [];
  readonly instances = new Map<string, InstanceSpec & { port: number }>();
  private client: Client<typeof AgentControlService>;
  private stream: BidiStream<typeof ConnectRequestSchema, typeof ConnectResponseSchema> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private nextPort = 20000;
  private reading: Promise<void> | undefined;
  welcomed = false;
  /** The Welcome message last received (its backup repository, lease). */
  welcome: Welcome | undefined;
  private hung = false;
  readonly commands: ReceivedCommand[] = [];
  leaseRenewals = 0;
  /** Per tenant: reported WAL position, role (after promote/fence), timeline, health. */
  readonly lsn = new Map<string, string>();
  readonly role = new Map<string, InstanceRole>();
  readonly timeline = new Map<string, number>();
  readonly unhealthy = new Set<string>();
  /** Per tenant (a replica): when its walreceiver lost its sender, reported in health. */
  readonly senderLostAt = new Map<string, number>();
  /** Per tenant: busy backends its health reports (what keeps an idle-suspend tenant awake). */
  readonly busy = new Map<string, number>();
  /** The LSN a Fence answer reports as the old primary's last position. */
  fenceLsn = '0/3000148';
  /** How RunBackup is answered: at once with a result, with a failure, or never (a backup still running). */
  backupMode: 'succeed' | 'fail' | 'hang' = 'succeed';
  /** How a restore (InstanceSpec.restore) ends: recovered, or failed with this message. */
  recoveryMode: { ok: true; lsn: string; commitTime: number } | { ok: false; message: string } | { hang: true } = {
    ok: true,
    lsn: '0/5000028',
    commitTime: Date.UTC(2026, 11, 6, 9, 0, 0),
  };
  /** Per tenant: the recovery result it reports after a restore. */
  readonly recovery = new Map<string, MessageInitShape<typeof RecoveryResultSchema>>();
  /** Per tenant: the archive status it reports in health. */
  readonly archive = new Map<string, MessageInitShape<typeof ArchiveStatusSchema>>();
  /** Tenants whose instance was created from a backup (InstanceSpec.restore). */
  readonly restoring = new Set<string>();
  /** Labels of the backups it "made", in order. */
  readonly backupLabels: string[] = [];

  constructor(readonly options: FakeAgentOptions) {
    this.client = createClient(AgentControlService, options.coordinator, options.credentials ?? credentials.createInsecure());
  }

  /** Opens the stream and says Hello. */
  async connect(): Promise<void> {
    // Without TLS the agent names itself (only an --insecure coordinator believes it); with mTLS the certificate does.
    const stream = this.client.connect({ metadata: identityClaimMetadata(identity('host', this.options.claimHostId ?? this.options.hostId)) });
    this.stream = stream;
    this.welcomed = false;
    this.hung = false;
    await stream.send({
      message: {
        case: 'hello',
        value: {
          hostId: this.options.hostId,
          address: this.options.address,
          capacity: this.options.capacity ?? { cpuMillis: 8000, memoryMib: 16384, diskMib: 204800 },
          labels: this.options.labels ?? {},
          runtime: 'process',
          agentVersion: 'fake',
          instances: this.options.adopted ?? [],
          appliedGeneration: this.options.appliedGeneration ?? 0n,
          postgresMajors: this.options.postgresMajors ?? [],
          pgbackrestVersion: this.options.pgbackrestVersion ?? '',
        },
      },
    });
    this.reading = (async (): Promise<void> => {
      try {
        for await (const m of stream) await this.onMessage(m.message);
      } catch {
        // The stream broke (coordinator stopped or cancelled); tests look at the effects.
        this.welcomed = false;
      }
    })();
    this.startHeartbeats();
  }

  private async onMessage(m: MessageInitShape<typeof ConnectResponseSchema>['message'] & { case?: string; value?: unknown }): Promise<void> {
    if (m?.case === 'welcome') {
      this.welcomed = true;
      this.welcome = m.value as Welcome;
    }
    if (m?.case === 'leaseRenewal') this.leaseRenewals++;
    if (m?.case === 'command') return this.onCommand(m.value as Command);
    if (m?.case !== 'desired') return;
    const d = m.value as DesiredInstances;
    this.desired.push(d);
    if (!this.options.autoRealize) return;
    const reports: MessageInitShape<typeof InstanceStatusSchema>[] = [];
    for (const spec of d.instances) {
      const known = this.instances.get(spec.tenantId);
      if (known && spec.specRevision > known.specRevision) {
        // A newer shape (a new role, a lifted fence): the instance converges to it.
        this.role.delete(spec.tenantId);
        this.unhealthy.delete(spec.tenantId);
      }
      const port = known?.port ?? spec.port ?? 0;
      const chosen = port > 0 ? port : this.nextPort++;
      // A restore builds only an instance that has no data yet, and reports where recovery stopped.
      if (!known && spec.restore) this.restoring.add(spec.tenantId);
      if (!known && spec.restore && !('hang' in this.recoveryMode)) {
        const m = this.recoveryMode;
        const restoreId = spec.restore.restoreId;
        if (m.ok) this.timeline.set(spec.tenantId, 2);
        this.recovery.set(
          spec.tenantId,
          m.ok
            ? { restoreId, ok: true, lsn: m.lsn, commitTime: timestampFromMs(m.commitTime), timeline: 2 }
            : { restoreId, ok: false, errorCode: 'RESTORE_FAILED', message: m.message },
        );
      }
      this.instances.set(spec.tenantId, { ...spec, port: chosen });
      reports.push(this.statusOf(spec.tenantId, spec.specRevision, chosen));
    }
    for (const id of d.removedTenantIds) {
      this.instances.delete(id);
      reports.push({ tenantId: id, realization: Realization.REALIZED, state: InstanceState.DELETED });
    }
    if (reports.length) await this.report(reports);
  }

  private async onCommand(command: Command): Promise<void> {
    this.commands.push({ command, at: Date.now() });
    if (this.options.answerCommands === false) return;
    const tenantId = command.tenantId;
    if (command.action.case === 'runBackup') return this.onRunBackup(command.commandId, tenantId, command.action.value);
    if (command.action.case === 'runInitSql') {
      const answer = this.initSqlAnswer(command.action.value);
      if (answer === 'hang') return;
      const ok = answer.error === '';
      await this.send({
        message: {
          case: 'commandResult',
          value: { commandId: command.commandId, ok, errorCode: ok ? '' : 'INIT_SQL_FAILED', message: answer.error, initSql: { ...answer, sqlstate: '' } },
        },
      });
      return;
    }
    if (command.action.case === 'upgradeSource' || command.action.case === 'upgradeTarget') {
      const answer = await (this.options.upgradeAnswer ?? upgradeDefaultAnswer)(command);
      if (answer === 'hang') return;
      await this.send({
        message: {
          case: 'commandResult',
          value: {
            commandId: command.commandId,
            ok: answer.ok,
            errorCode: answer.errorCode ?? (answer.ok ? '' : 'UPGRADE_FAILED'),
            message: answer.message ?? '',
            upgradeSource: answer.upgradeSource,
            upgradeTarget: answer.upgradeTarget,
          },
        },
      });
      return;
    }
    if (command.action.case === 'checkpoint') {
      if (this.options.checkpointAnswer === 'never') return;
      const ok = (this.options.checkpointAnswer ?? 'ok') === 'ok';
      const value = ok
        ? { commandId: command.commandId, ok, message: 'checkpoint 1 ms' }
        : { commandId: command.commandId, ok, errorCode: 'UNKNOWN_COMMAND', message: 'the command has no action this agent knows' };
      await this.send({ message: { case: 'commandResult', value } });
      return;
    }
    if (command.action.case === 'expireBackup') {
      await this.send({ message: { case: 'commandResult', value: { commandId: command.commandId, ok: true } } });
      return;
    }
    if (command.action.case === 'fence') {
      this.role.set(tenantId, InstanceRole.REPLICA);
      this.unhealthy.add(tenantId);
      await this.send({ message: { case: 'commandResult', value: { commandId: command.commandId, ok: true, lsn: this.fenceLsn } } });
    } else if (command.action.case === 'promote') {
      this.role.set(tenantId, InstanceRole.PRIMARY);
      this.timeline.set(tenantId, (this.timeline.get(tenantId) ?? 1) + 1);
      await this.send({
        message: {
          case: 'commandResult',
          value: { commandId: command.commandId, ok: true, lsn: this.lsn.get(tenantId) ?? '', timeline: this.timeline.get(tenantId) ?? 2 },
        },
      });
    }
    await this.reportAll();
  }

  /** RunBackups left unanswered while backupMode was 'hang'. */
  private readonly hungBackups: { commandId: string; tenantId: string; run: RunBackup }[] = [];

  /** Ends the backups left running: they succeed now (and later ones at once). */
  async finishHungBackups(): Promise<void> {
    this.backupMode = 'succeed';
    for (const b of this.hungBackups.splice(0)) await this.onRunBackup(b.commandId, b.tenantId, b.run);
  }

  /** Answers RunBackup as `backupMode` says, with a pgBackRest-like label. */
  private async onRunBackup(commandId: string, tenantId: string, run: RunBackup): Promise<void> {
    if (this.backupMode === 'hang') {
      this.hungBackups.push({ commandId, tenantId, run });
      return;
    }
    if (this.backupMode === 'fail') {
      await this.send({
        message: {
          case: 'commandResult',
          value: { commandId, ok: false, errorCode: 'BACKUP_FAILED', message: 'pgbackrest: [082]: WAL segment was not archived before the 60000ms timeout' },
        },
      });
      return;
    }
    const now = Date.now();
    const kind = run.type === BackupType.DIFF ? 'D' : run.type === BackupType.INCR ? 'I' : 'F';
    const stamp = new Date(now).toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
    const prior = kind === 'F' ? '' : ([...this.backupLabels].reverse().find((l) => /F-\d+$/.test(l)) ?? '');
    const label = kind === 'F' ? `${stamp}F-${this.backupLabels.length}` : `${prior}_${stamp}${kind}-${this.backupLabels.length}`;
    this.backupLabels.push(label);
    await this.send({
      message: {
        case: 'commandResult',
        value: {
          commandId,
          ok: true,
          backup: {
            label,
            priorLabel: prior,
            type: run.type === BackupType.UNSPECIFIED ? BackupType.FULL : run.type,
            startedAt: timestampFromMs(now - 1000),
            finishedAt: timestampFromMs(now),
            sizeBytes: 23_000_000n,
            repoSizeBytes: 2_900_000n,
            lsnStart: '0/2000028',
            lsnStop: '0/2000100',
            timeline: this.timeline.get(tenantId) ?? 1,
            stanzaRepoSizeBytes: BigInt(2_900_000 * this.backupLabels.length),
            archiveMinWal: '000000010000000000000001',
            archiveMaxWal: '000000010000000000000002',
          },
        },
      },
    });
  }

  /** How RunInitSql is answered (default: every script committed). */
  initSqlAnswer: (run: RunInitSql) => { applied: number; failedScript: string; error: string } | 'hang' = (run) => ({
    applied: run.scripts.length,
    failedScript: '',
    error: '',
  });

  /** Commands of one kind received for a tenant. */
  received(
    tenantId: string,
    kind: 'fence' | 'promote' | 'checkpoint' | 'runBackup' | 'expireBackup' | 'runInitSql' | 'upgradeSource' | 'upgradeTarget',
  ): ReceivedCommand[] {
    return this.commands.filter((c) => c.command.tenantId === tenantId && c.command.action.case === kind);
  }

  /** Sends a fresh report of every instance (health checked now). */
  async reportAll(): Promise<void> {
    const reports = [...this.instances.values()].map((spec) => this.statusOf(spec.tenantId, spec.specRevision, spec.port));
    if (reports.length) await this.report(reports);
  }

  /** A running status, healthy unless marked otherwise, with role, LSN and timeline. */
  statusOf(tenantId: string, specRevision: bigint, port: number): MessageInitShape<typeof InstanceStatusSchema> {
    const recovery = this.recovery.get(tenantId);
    // Restoring and recovering (no result yet): the instance is still being created.
    if (recovery === undefined && this.restoring.has(tenantId)) {
      return {
        tenantId,
        realization: Realization.PENDING,
        state: InstanceState.CREATING,
        address: this.options.address,
        port,
        specRevision,
        reason: 'restoring from the backup',
      };
    }
    // A spec that wants the instance stopped (an operator's stop, a suspend): stopped, data kept.
    if (this.instances.get(tenantId)?.runState === RunState.STOPPED) {
      return {
        tenantId,
        realization: Realization.REALIZED,
        state: InstanceState.STOPPED,
        address: this.options.address,
        port,
        specRevision,
        health: { up: false, checkedAt: timestampFromMs(Date.now()) },
      };
    }
    // A restore that failed leaves no running instance, as the host agent reports it.
    const failed = recovery !== undefined && recovery.ok !== true;
    const up = !this.unhealthy.has(tenantId) && !failed;
    return {
      tenantId,
      realization: failed ? Realization.FAILED : Realization.REALIZED,
      reason: failed ? (recovery.message ?? '') : '',
      state: failed ? InstanceState.FAILED : up ? InstanceState.RUNNING : InstanceState.CRASHED,
      address: this.options.address,
      port,
      specRevision,
      health: {
        up,
        acceptingConnections: up,
        connections: 1,
        busyBackends: this.busy.get(tenantId) ?? 0,
        role: this.role.get(tenantId) ?? this.instances.get(tenantId)?.role ?? InstanceRole.PRIMARY,
        lsn: this.lsn.get(tenantId) ?? '0/1000000',
        timeline: this.timeline.get(tenantId) ?? 1,
        checkedAt: timestampFromMs(Date.now()),
        archive: this.archive.get(tenantId),
        senderLostAt: this.senderLostAt.has(tenantId) ? timestampFromMs(this.senderLostAt.get(tenantId) ?? 0) : undefined,
      },
      recovery: this.recovery.get(tenantId),
    };
  }

  /** Sends an instance report. */
  async report(instances: MessageInitShape<typeof InstanceStatusSchema>[]): Promise<void> {
    await this.send({ message: { case: 'report', value: { instances } } });
  }

  /** Sends any message. */
  async send(message: MessageInitShape<typeof ConnectRequestSchema>): Promise<void> {
    if (!this.stream) throw new Error('not connected');
    if (this.hung) return;
    await this.stream.send(message);
  }

  /** Starts heartbeats (on connect). */
  startHeartbeats(): void {
    this.stopHeartbeats();
    this.heartbeat = setInterval(() => {
      void this.stream
        ?.send({ message: { case: 'heartbeat', value: { sentAt: timestampFromMs(Date.now()), readySpares: this.options.readySpares } } })
        .catch(() => undefined);
    }, this.options.heartbeatMs ?? 100);
  }

  /** A hung host: the stream stays open, nothing is sent any more (until connect()). */
  hang(): void {
    this.hung = true;
    this.stopHeartbeats();
  }

  /** Goes silent without closing the stream (a hung host). */
  stopHeartbeats(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Half-closes the stream and waits for the coordinator to end it (an agent stopping on purpose). */
  async goodbye(): Promise<void> {
    this.stopHeartbeats();
    this.stream?.end();
    await this.reading;
    this.stream = undefined;
  }

  /** Closes the stream (a crashed agent). */
  async disconnect(): Promise<void> {
    this.stopHeartbeats();
    this.stream?.cancel();
    await this.reading;
    this.stream = undefined;
  }

  /** Closes everything. */
  async close(): Promise<void> {
    await this.disconnect();
    this.client.close();
  }
}
