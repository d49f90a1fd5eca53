/**
 * A fake host agent on a real gRPC stream: says Hello, heartbeats, and (when `autoRealize`)
 * answers every desired instance with a REALIZED/RUNNING report on a port of its own, and every
 * removal with DELETED. Tests drive failures by stopping heartbeats or closing the stream.
 */
import { credentials } from '@grpc/grpc-js';
import { AgentControlService, InstanceState, Realization, type DesiredInstances, type InstanceSpec } from '@pgs/proto';
import { createClient, type BidiStream, type Client } from '@pgs/rpc';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ConnectRequestSchema, ConnectResponseSchema, InstanceStatusSchema } from '@pgs/proto';

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

  constructor(readonly options: FakeAgentOptions) {
    this.client = createClient(AgentControlService, options.coordinator, credentials.createInsecure());
  }

  /** Opens the stream and says Hello. */
  async connect(): Promise<void> {
    const stream = this.client.connect();
    this.stream = stream;
    this.welcomed = false;
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
        },
      },
    });
    this.reading = (async () => {
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
    if (m?.case === 'welcome') this.welcomed = true;
    if (m?.case !== 'desired') return;
    const d = m.value as DesiredInstances;
    this.desired.push(d);
    if (!this.options.autoRealize) return;
    const reports: MessageInitShape<typeof InstanceStatusSchema>[] = [];
    for (const spec of d.instances) {
      const known = this.instances.get(spec.tenantId);
      const port = known?.port ?? spec.port ?? 0;
      const chosen = port > 0 ? port : this.nextPort++;
      this.instances.set(spec.tenantId, { ...spec, port: chosen });
      reports.push(this.statusOf(spec.tenantId, spec.specRevision, chosen));
    }
    for (const id of d.removedTenantIds) {
      this.instances.delete(id);
      reports.push({ tenantId: id, realization: Realization.REALIZED, state: InstanceState.DELETED });
    }
    if (reports.length) await this.report(reports);
  }

  /** A healthy running status. */
  statusOf(tenantId: string, specRevision: bigint, port: number): MessageInitShape<typeof InstanceStatusSchema> {
    return {
      tenantId,
      realization: Realization.REALIZED,
      state: InstanceState.RUNNING,
      address: this.options.address,
      port,
      specRevision,
      health: { up: true, acceptingConnections: true, connections: 1 },
    };
  }

  /** Sends an instance report. */
  async report(instances: MessageInitShape<typeof InstanceStatusSchema>[]): Promise<void> {
    await this.send({ message: { case: 'report', value: { instances } } });
  }

  /** Sends any message. */
  async send(message: MessageInitShape<typeof ConnectRequestSchema>): Promise<void> {
    if (!this.stream) throw new Error('not connected');
    await this.stream.send(message);
  }

  /** Starts heartbeats (on connect). */
  startHeartbeats(): void {
    this.stopHeartbeats();
    this.heartbeat = setInterval(() => {
      void this.stream?.send({ message: { case: 'heartbeat', value: {} } }).catch(() => undefined);
    }, this.options.heartbeatMs ?? 100);
  }

  /** Goes silent without closing the stream (a hung host). */
  stopHeartbeats(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
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
