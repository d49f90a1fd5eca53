/**
 * A simulated host for the scheduler benchmark: a real AgentControlService.Connect stream to the
 * real coordinator, speaking the agent protocol (hello, heartbeats, reports), with no postgres
 * behind it: every desired instance is reported REALIZED and RUNNING at once, on a port of its own
 * that stays the same (a real instance's port does not move between reports). With
 * `reportIntervalMs` it also reports at that period, as a real agent does (its report-throttle.ts):
 * an instance whose report changed (a fake's changes only with its spec, reported at once) or that
 * belongs to a replicated tenant each round, every other once per `fullReportIntervalMs`.
 */
import { timestampNow } from '@bufbuild/protobuf/wkt';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { AgentControlService, InstanceState, Realization, RunState, type InstanceSpec, type InstanceStatusSchema } from '@pgs/proto';
import type { Client } from '@pgs/rpc';

/** Counters shared by all fake agents of a run. */
export interface FakeAgentStats {
  /** Instances received in desired sets (each is a placement the coordinator committed and sent). */
  placementsReceived: number;
  /** performance.now() of the last placement received. */
  lastPlacementAt: number;
  /** Agents that have had a Welcome at least once. */
  welcomed: number;
  /** Streams welcomed and not ended yet (agents connected right now). */
  connected: number;
  /** Streams that failed (the agent reconnects, as a real one does), with the first few reasons. */
  streamFailures: number;
  failureSamples: string[];
  /** Stream failures by reason (the error message), e.g. the coordinator's hello deadline. */
  failureReasons: Record<string, number>;
}

/** One fake host. */
export class FakeAgent {
  private heartbeat: NodeJS.Timeout | undefined;
  private fullReport: NodeJS.Timeout | undefined;
  private readonly ports = new Map<string, number>();
  private generation = 0n;
  private readonly instances = new Map<string, InstanceSpec>();
  private stream: ReturnType<Client<typeof AgentControlService>['connect']> | undefined;
  private stopped = false;
  private welcomed = false;

  constructor(
    private readonly client: Client<typeof AgentControlService>,
    readonly hostId: string,
    private readonly address: string,
    private readonly zone: string,
    private readonly stats: FakeAgentStats,
    private readonly reportIntervalMs = 0,
    private readonly fullReportIntervalMs = 15_000,
  ) {}

  /** When each instance was last reported on this stream (performance.now()). */
  private readonly reportedAt = new Map<string, number>();

  /** Sends the reports of `specs`, noting when. */
  private report(stream: NonNullable<FakeAgent['stream']>, specs: InstanceSpec[]): Promise<void> {
    const now = performance.now();
    for (const spec of specs) this.reportedAt.set(spec.tenantId, now);
    return stream.send({ message: { case: 'report', value: { instances: specs.map((spec) => this.status(spec)) } } });
  }

  /** Connects and keeps reconnecting (with backoff) until stop(), like a real agent. */
  start(): void {
    void (async () => {
      let delay = 100;
      while (!this.stopped) {
        const ok = await this.session();
        if (this.stopped) return;
        delay = ok ? 100 : Math.min(delay * 2, 2000);
        await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
      }
    })();
  }

  /** One stream: hello, then serve until it ends; false when it failed. */
  private session(): Promise<boolean> {
    // With a coordinator in --insecure mode a host names itself (no certificate to show).
    const stream = this.client.connect({ metadata: { 'pgs-identity': `host:${this.hostId}` } });
    this.stream = stream;
    void stream
      .send({
        message: {
          case: 'hello',
          value: {
            hostId: this.hostId,
            address: this.address,
            capacity: { cpuMillis: 64_000, memoryMib: 256 * 1024, diskMib: 4 * 1024 * 1024 },
            labels: { zone: this.zone, region: 'bench' },
            runtime: 'process',
            agentVersion: 'bench-fake',
            appliedGeneration: this.generation,
            // What it runs, as a real agent tells a coordinator it reconnects to.
            instances: [...this.instances.values()].map((spec) => this.status(spec)),
          },
        },
      })
      .catch(() => undefined); // a failed send shows up as the stream's error below
    return this.serve(stream);
  }

  private async serve(stream: NonNullable<FakeAgent['stream']>): Promise<boolean> {
    let up = false;
    try {
      for await (const res of stream) {
        const m = res.message;
        if (m.case === 'welcome') {
          if (!this.welcomed) this.stats.welcomed += 1;
          this.welcomed = true;
          up = true;
          this.stats.connected += 1;
          const every = Math.max(100, m.value.heartbeatIntervalMs);
          this.heartbeat = setInterval(() => {
            void stream.send({
              message: { case: 'heartbeat', value: { sentAt: timestampNow(), usage: { instances: this.instances.size }, appliedGeneration: this.generation } },
            });
          }, every);
          this.reportedAt.clear();
          if (this.reportIntervalMs > 0)
            this.fullReport = setInterval(() => {
              const now = performance.now();
              const due = [...this.instances.values()].filter(
                (spec) => spec.replicationUser !== '' || now - (this.reportedAt.get(spec.tenantId) ?? -Infinity) >= this.fullReportIntervalMs,
              );
              if (due.length > 0) void this.report(stream, due).catch(() => undefined);
            }, this.reportIntervalMs);
        } else if (m.case === 'desired') {
          if (m.value.generation <= this.generation && !m.value.full) continue;
          this.generation = m.value.generation;
          const fresh = m.value.instances.filter((i) => !this.instances.has(i.tenantId));
          for (const spec of m.value.instances) this.instances.set(spec.tenantId, spec);
          for (const id of m.value.removedTenantIds) {
            this.instances.delete(id);
            this.ports.delete(id);
            this.reportedAt.delete(id);
          }
          if (fresh.length > 0) {
            this.stats.placementsReceived += fresh.length;
            this.stats.lastPlacementAt = performance.now();
          }
          if (m.value.instances.length > 0) await this.report(stream, m.value.instances);
        } else if (m.case === 'command') {
          await stream.send({ message: { case: 'commandResult', value: { commandId: m.value.commandId, ok: true } } });
        }
      }
      return true;
    } catch (err) {
      if (this.stopped) return true;
      this.stats.streamFailures += 1;
      const reason = (err as Error).message;
      this.stats.failureReasons[reason] = (this.stats.failureReasons[reason] ?? 0) + 1;
      if (this.stats.failureSamples.length < 5) this.stats.failureSamples.push(`${this.hostId}: ${reason}`);
      return false;
    } finally {
      clearInterval(this.heartbeat);
      clearInterval(this.fullReport);
      if (up) this.stats.connected -= 1;
    }
  }

  /**
   * The instance's status as reported: realized and running (or stopped) at once, on the port its
   * spec names (as a real agent's runtime keeps it) or, for a new one, a port of its own.
   */
  private status(spec: InstanceSpec): MessageInitShape<typeof InstanceStatusSchema> {
    let port = this.ports.get(spec.tenantId);
    if (port === undefined) {
      port = spec.port > 0 ? spec.port : 20000 + (this.ports.size % 40000);
      this.ports.set(spec.tenantId, port);
    }
    return {
      tenantId: spec.tenantId,
      realization: Realization.REALIZED,
      state: spec.runState === RunState.STOPPED ? InstanceState.STOPPED : InstanceState.RUNNING,
      address: this.address,
      port,
      specRevision: spec.specRevision,
      health: { up: true, acceptingConnections: true, role: spec.role },
    };
  }

  /** The tenants whose instances this host runs. */
  tenantIds(): string[] {
    return [...this.instances.keys()];
  }

  /** Closes the stream for good. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearInterval(this.fullReport);
    this.stream?.cancel();
  }
}
