/**
 * The agent's side of AgentControlService.Connect: open the stream, say Hello (identity, capacity,
 * labels, the instances already running, the generation applied), then heartbeat at the interval
 * the coordinator's Welcome names, push instance reports on change and at a steady interval, apply
 * desired sets whose generation is newer than the last applied, and answer commands. When the
 * stream breaks the agent reconnects with jittered backoff, forever; instances are never touched
 * because of it, except primaries that must not outlive the lease (lease.ts): the lease is renewed
 * by the Welcome (from when the Hello was sent) and by each LeaseRenewal (from its heartbeat's
 * sent_at), and when it runs out the instance manager fences them. Several coordinators: every
 * Welcome, desired set and command carries the sender's leader epoch; one older than the newest
 * seen comes from a coordinator that was overtaken and is refused (libs/tenancy acceptEpoch).
 */
import { timestampFromMs, timestampMs } from '@bufbuild/protobuf/wkt';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { AgentControlService, ConnectRequestSchema } from '@pgs/proto';
import type { BidiStream, Client } from '@pgs/rpc';
import type { Logger } from '@pgs/service-kit';
import { acceptEpoch } from '@pgs/tenancy';
import { jitteredBackoff, sleep } from './backoff.js';
import type { InstanceManager } from './instance-manager.js';
import type { Lease } from './lease.js';
import {
  fromBackupRepository,
  fromCommand,
  fromDesiredInstances,
  toCommandResult,
  toHello,
  toInstanceStatus,
  toUsage,
  type HelloView,
} from './mappers/agent-mapper.js';
import type { AgentMetrics } from './metrics.js';
import type { InstanceStatus } from './model.js';
import { ReportThrottle } from './report-throttle.js';

/** How long a goodbye waits for the coordinator to end the stream before it is cancelled. */
const GOODBYE_WAIT_MS = 1000;

/** heartbeatSoon calls within this many ms share one heartbeat. */
const HEARTBEAT_COALESCE_MS = 10;

type ConnectStream = BidiStream<(typeof AgentControlService)['method']['connect']['input'], (typeof AgentControlService)['method']['connect']['output']>;

/** What the loop needs. */
export interface AgentLoopOptions {
  client: Client<typeof AgentControlService>;
  manager: InstanceManager;
  /** The Hello fields that do not change while the agent runs. */
  identity: Omit<HelloView, 'instances' | 'appliedGeneration'>;
  log: Logger;
  metrics: AgentMetrics;
  /** Instance report period (report-throttle.ts says which instances each round carries). */
  reportIntervalMs: number;
  /** An instance whose report did not change is sent again at least this often. */
  fullReportIntervalMs: number;
  /** Heartbeat period until a Welcome names one. */
  defaultHeartbeatMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** A stream that lived this long counts as healthy: the next reconnect starts from the shortest delay. */
  healthyStreamMs?: number;
  /** The lease the coordinator grants (absent: renewals are only counted). */
  lease?: Lease;
  /** Ready spares to report in each heartbeat (placement prefers hosts with one left); undefined: none to report. */
  readySpares?: () => number | undefined;
}

/** The agent loop. */
export class AgentLoop {
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private stream: ConnectStream | undefined;
  private running: Promise<void> | undefined;
  private welcomed = false;
  /** Sends one heartbeat on the open, welcomed stream; undefined otherwise. */
  private beat: (() => void) | undefined;
  private beatSoon: NodeJS.Timeout | undefined;
  private pendingReports: InstanceStatus[] = [];
  private readonly throttle: ReportThrottle;
  private flushScheduled = false;
  private applied = 0;
  private lastLeaseRenewalAt = 0;
  private leaseMs = 0;
  /** The newest coordinator leader epoch seen (0: none, one coordinator without a lease). */
  private leaderEpoch = 0;
  /** Set once stop() said goodbye: the session's end is not a reason to reconnect. */
  private stopping = false;
  private onSessionEnd: (() => void) | undefined;

  constructor(private readonly o: AgentLoopOptions) {
    this.throttle = new ReportThrottle(o.fullReportIntervalMs);
    this.log = o.log.child({ component: 'agent-loop' });
    o.manager.onChange((status) => this.queueReport(status));
  }

  /** The generation of the last desired set applied (0 after a fresh start). */
  get appliedGeneration(): number {
    return this.applied;
  }

  /** Epoch ms of the last LeaseRenewal (0: none yet). */
  get lastLeaseRenewal(): number {
    return this.lastLeaseRenewalAt;
  }

  /** True while the stream is open and the coordinator has welcomed us. */
  get connected(): boolean {
    return this.welcomed;
  }

  /**
   * Sends a heartbeat now (coalescing calls within a few ms) instead of at the next interval: the
   * runtime calls it when its ready spares change, so placement sees a pool shrink or refill at
   * once rather than up to a heartbeat interval late.
   */
  heartbeatSoon(): void {
    if (this.beatSoon !== undefined || this.beat === undefined) return;
    this.beatSoon = setTimeout(() => {
      this.beatSoon = undefined;
      this.beat?.();
    }, HEARTBEAT_COALESCE_MS);
    this.beatSoon.unref();
  }

  /** Starts connecting (and reconnecting, forever). */
  start(): void {
    this.o.lease?.start();
    this.running ??= this.run();
  }

  /**
   * Says goodbye and stops reconnecting; instances keep running. The goodbye is a half-close of
   * the stream, which the coordinator tells from a crash (a broken stream makes it suspect the
   * host at once); the coordinator then ends the call, or the stream is cancelled after a moment.
   */
  async stop(): Promise<void> {
    const stream = this.stream;
    if (stream && this.welcomed) {
      this.stopping = true;
      stream.end();
      const ended = new Promise<void>((resolve) => {
        this.onSessionEnd = resolve;
      });
      await Promise.race([ended, sleep(GOODBYE_WAIT_MS)]);
    }
    this.abort.abort();
    this.stream?.cancel();
    await this.running;
    this.o.lease?.close();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      const opened = Date.now();
      try {
        await this.session();
        if (this.stopping) break;
        if (!this.abort.signal.aborted) this.log.warn({}, 'the coordinator closed the agent stream; reconnecting');
      } catch (err) {
        if (this.stopping) break;
        if (!this.abort.signal.aborted) this.log.warn({ err }, 'agent stream failed; reconnecting');
      } finally {
        this.onSessionEnd?.();
      }
      if (this.abort.signal.aborted) break;
      attempt = Date.now() - opened >= (this.o.healthyStreamMs ?? 10_000) ? 1 : attempt + 1;
      const delayMs = jitteredBackoff(attempt, this.o.backoffMinMs, this.o.backoffMaxMs);
      this.log.info({ attempt, delayMs }, 'reconnecting to the coordinator after a delay');
      await sleep(delayMs, this.abort.signal);
    }
  }

  private async session(): Promise<void> {
    const stream = this.o.client.connect({ signal: this.abort.signal });
    this.stream = stream;
    let heartbeat: NodeJS.Timeout | undefined;
    let report: NodeJS.Timeout | undefined;
    try {
      const helloSentAt = Date.now();
      await stream.send({
        message: { case: 'hello', value: toHello({ ...this.o.identity, instances: this.o.manager.statuses(), appliedGeneration: this.applied }) },
      });
      for await (const response of stream) {
        const m = response.message;
        switch (m.case) {
          case 'welcome': {
            if (!this.acceptEpoch(m.value.leaderEpoch, 'welcome')) {
              throw new Error(`the coordinator welcomed us at leader epoch ${m.value.leaderEpoch}, older than ${this.leaderEpoch}: it was overtaken`);
            }
            this.welcomed = true;
            this.o.metrics.streamConnects.inc({ result: 'welcomed' });
            const heartbeatMs = m.value.heartbeatIntervalMs > 0 ? m.value.heartbeatIntervalMs : this.o.defaultHeartbeatMs;
            this.leaseMs = m.value.leaseMs;
            this.o.lease?.renew(helloSentAt, this.leaseMs);
            this.lastLeaseRenewalAt = Date.now();
            this.log.info({ heartbeatMs, leaseMs: m.value.leaseMs }, 'connected to the coordinator');
            // Before any desired set of this stream: the specs' archive settings depend on it. It may
            // differ from the last stream's (an operator changed it); instances with backups follow.
            this.o.manager.setBackupRepository(fromBackupRepository(m.value.backupRepository));
            // Also before any desired set: instances are written TLS-only (or not) as the fleet says.
            if (!m.value.instanceTls) this.log.warn({}, 'the coordinator runs with instance TLS off: instances here accept plaintext network connections');
            this.o.manager.setInstanceTls({ required: m.value.instanceTls });
            clearInterval(heartbeat);
            clearInterval(report);
            this.beat = () =>
              this.send({
                message: {
                  case: 'heartbeat',
                  value: {
                    sentAt: timestampFromMs(Date.now()),
                    usage: toUsage(this.o.manager.usage()),
                    appliedGeneration: BigInt(this.applied),
                    readySpares: this.o.readySpares?.(),
                  },
                },
              });
            heartbeat = setInterval(this.beat, heartbeatMs);
            // The first one at once: the coordinator learns usage and spares now, not an interval later.
            this.beat();
            this.throttle.reset();
            report = setInterval(() => this.reportAll(), this.o.reportIntervalMs);
            break;
          }
          case 'desired': {
            if (!this.acceptEpoch(m.value.leaderEpoch, 'desired set')) {
              this.o.metrics.desiredSetsIgnored.inc();
              break;
            }
            const set = fromDesiredInstances(m.value);
            if (set.generation <= this.applied) {
              this.o.metrics.desiredSetsIgnored.inc();
              this.log.info({ generation: set.generation, applied: this.applied }, 'ignoring a desired set that is not newer than the one applied');
              // Not newer: what the agent holds is still what the coordinator wants.
              this.o.manager.confirmDesired();
              break;
            }
            this.log.info(
              { generation: set.generation, full: set.full, upserts: set.instances.length, removals: set.removedTenantIds.length },
              'desired set received',
            );
            this.o.manager.applyDesired(set);
            this.applied = set.generation;
            break;
          }
          case 'command': {
            if (!this.acceptEpoch(m.value.leaderEpoch, 'command')) {
              const message = `refused: stamped with leader epoch ${m.value.leaderEpoch}, older than ${this.leaderEpoch}; the coordinator that sent it was overtaken`;
              this.send({ message: { case: 'commandResult', value: { commandId: m.value.commandId, ok: false, errorCode: 'STALE_LEADER_EPOCH', message } } });
              break;
            }
            const cmd = fromCommand(m.value);
            this.log.info({ commandId: cmd.commandId, tenantId: cmd.tenantId, kind: cmd.action?.kind }, 'command received');
            void this.o.manager.runCommand(cmd).then((outcome) => this.send({ message: { case: 'commandResult', value: toCommandResult(outcome) } }));
            break;
          }
          case 'leaseRenewal': {
            // Counted from when the heartbeat was sent (our clock), never from now.
            const sentAt = m.value.heartbeatSentAt ? timestampMs(m.value.heartbeatSentAt) : 0;
            if (sentAt > 0) this.o.lease?.renew(sentAt, this.leaseMs);
            this.lastLeaseRenewalAt = Date.now();
            break;
          }
          default:
            this.log.warn({ case: m.case }, 'unknown message from the coordinator ignored');
        }
      }
    } finally {
      if (!this.welcomed) this.o.metrics.streamConnects.inc({ result: 'failed' });
      this.welcomed = false;
      this.beat = undefined;
      clearInterval(heartbeat);
      clearInterval(report);
      this.stream = undefined;
      stream.cancel();
    }
  }

  /** Applies the epoch rule to a message stamped `stamped`; false (logged) when it must be refused. */
  private acceptEpoch(stamped: bigint, what: string): boolean {
    const verdict = acceptEpoch(this.leaderEpoch, Number(stamped));
    if (!verdict.accept) {
      this.log.warn({ what, epoch: Number(stamped), newestEpoch: this.leaderEpoch }, 'refusing a message from an overtaken coordinator');
      return false;
    }
    if (verdict.newestSeen > this.leaderEpoch) this.log.info({ epoch: verdict.newestSeen }, 'coordinator leader epoch');
    this.leaderEpoch = verdict.newestSeen;
    return true;
  }

  /** Sends on the open stream; a message that cannot go out is dropped (the next Hello carries the truth). */
  private send(message: MessageInitShape<typeof ConnectRequestSchema>): void {
    const stream = this.stream;
    if (!stream || !this.welcomed) return;
    stream.send(message).catch((err: unknown) => this.log.debug({ err }, 'message not sent; the stream is closing'));
  }

  private queueReport(status: InstanceStatus): void {
    // Every transition is kept, in order (CRASHED then STARTING is news even within one tick).
    this.pendingReports.push(status);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Changes made in one tick go out as one report.
    setImmediate(() => {
      this.flushScheduled = false;
      const batch = this.pendingReports;
      this.pendingReports = [];
      if (batch.length > 0) this.send({ message: { case: 'report', value: { instances: batch.map(toInstanceStatus) } } });
    });
  }

  private reportAll(): void {
    const due = this.throttle.due(this.o.manager.statuses(), Date.now(), (t) => this.o.manager.replicated(t));
    if (due.length > 0) this.send({ message: { case: 'report', value: { instances: due.map(toInstanceStatus) } } });
  }
}
