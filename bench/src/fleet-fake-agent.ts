/**
 * A simulated host for the scheduler benchmark: a real AgentControlService.Connect stream to the
 * real coordinator, speaking the agent protocol (hello, heartbeats, reports), with no postgres
 * behind it: every desired instance is reported REALIZED and RUNNING at once.
 */
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { AgentControlService, InstanceState, Realization, RunState, type InstanceSpec } from '@pgs/proto';
import type { Client } from '@pgs/rpc';

/** Counters shared by all fake agents of a run. */
export interface FakeAgentStats {
  /** Instances received in desired sets (each is a placement the coordinator committed and sent). */
  placementsReceived: number;
  /** performance.now() of the last placement received. */
  lastPlacementAt: number;
  /** performance.now() when each agent's stream got its Welcome. */
  welcomes: number;
  errors: string[];
}

/** One fake host. */
export class FakeAgent {
  private heartbeat: NodeJS.Timeout | undefined;
  private generation = 0n;
  private readonly instances = new Map<string, InstanceSpec>();
  private stream: ReturnType<Client<typeof AgentControlService>['connect']> | undefined;

  constructor(
    private readonly client: Client<typeof AgentControlService>,
    readonly hostId: string,
    private readonly address: string,
    private readonly zone: string,
    private readonly stats: FakeAgentStats,
  ) {}

  /** Opens the stream, says hello, and serves it in the background until stop(). */
  start(): void {
    const stream = this.client.connect();
    this.stream = stream;
    void stream.send({
      message: {
        case: 'hello',
        value: {
          hostId: this.hostId,
          address: this.address,
          capacity: { cpuMillis: 64_000, memoryMib: 256 * 1024, diskMib: 4 * 1024 * 1024 },
          labels: { zone: this.zone, region: 'bench' },
          runtime: 'process',
          agentVersion: 'bench-fake',
          appliedGeneration: 0n,
        },
      },
    });
    void this.serve(stream);
  }

  private async serve(stream: NonNullable<FakeAgent['stream']>): Promise<void> {
    try {
      for await (const res of stream) {
        const m = res.message;
        if (m.case === 'welcome') {
          this.stats.welcomes += 1;
          const every = Math.max(100, m.value.heartbeatIntervalMs);
          this.heartbeat = setInterval(() => {
            void stream.send({ message: { case: 'heartbeat', value: { sentAt: timestampNow(), usage: { instances: this.instances.size }, appliedGeneration: this.generation } } });
          }, every);
        } else if (m.case === 'desired') {
          if (m.value.generation <= this.generation) continue;
          this.generation = m.value.generation;
          const fresh = m.value.instances.filter((i) => !this.instances.has(i.tenantId));
          for (const spec of m.value.instances) this.instances.set(spec.tenantId, spec);
          for (const id of m.value.removedTenantIds) this.instances.delete(id);
          if (fresh.length > 0) {
            this.stats.placementsReceived += fresh.length;
            this.stats.lastPlacementAt = performance.now();
          }
          if (m.value.instances.length > 0) {
            await stream.send({
              message: {
                case: 'report',
                value: {
                  instances: m.value.instances.map((spec, n) => ({
                    tenantId: spec.tenantId,
                    realization: Realization.REALIZED,
                    state: spec.runState === RunState.STOPPED ? InstanceState.STOPPED : InstanceState.RUNNING,
                    address: this.address,
                    port: 20000 + (n % 1000),
                    specRevision: spec.specRevision,
                    health: { up: true, acceptingConnections: true, role: spec.role },
                  })),
                },
              },
            });
          }
        } else if (m.case === 'command') {
          await stream.send({ message: { case: 'commandResult', value: { commandId: m.value.commandId, ok: true } } });
        }
      }
    } catch (err) {
      this.stats.errors.push(`${this.hostId}: ${(err as Error).message}`);
    } finally {
      clearInterval(this.heartbeat);
    }
  }

  /** Closes the stream. */
  stop(): void {
    clearInterval(this.heartbeat);
    this.stream?.cancel();
  }
}
