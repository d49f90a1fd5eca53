/**
 * Test support: a fake coordinator on a real gRPC server (AgentControlService through @pgs/rpc),
 * a seam we own. It records what the agent says (hellos, reports, heartbeats, command results),
 * and lets a test send desired sets and commands, or break the stream.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import {
  AgentControlService,
  InstanceState,
  Realization,
  RunState,
  type BackupRepositorySchema,
  type CommandResult,
  type CommandSchema,
  type ConnectResponseSchema,
  type Hello,
  type InstanceSpecSchema,
  type InstanceStatus,
} from '@pgs/proto';
import { addService, type ServerStream } from '@pgs/rpc';
import { scramVerifier } from './scram-verifier.js';

type Outgoing = MessageInitShape<typeof ConnectResponseSchema>;

/** An InstanceSpec for a tenant whose owner role and database carry its id, as the platform creates every tenant. */
export function ownerSpec(
  tenantId: string,
  password: string,
  overrides: Partial<MessageInitShape<typeof InstanceSpecSchema>> = {},
): MessageInitShape<typeof InstanceSpecSchema> {
  const spec: MessageInitShape<typeof InstanceSpecSchema> = {
    tenantId,
    specRevision: 1n,
    resources: { cpuMillis: 1000, memoryMib: 512, diskMib: 8192 },
    runState: RunState.RUNNING,
    roles: [{ name: tenantId, scramVerifier: scramVerifier(password), login: true }],
    databases: [{ name: tenantId, owner: tenantId }],
  };
  return { ...spec, ...overrides } as MessageInitShape<typeof InstanceSpecSchema>;
}

/** The fake coordinator. */
export class FakeCoordinator {
  readonly hellos: Hello[] = [];
  readonly statuses: InstanceStatus[] = [];
  readonly commandResults: CommandResult[] = [];
  heartbeats = 0;
  /** Ready spares the last heartbeat reported (undefined: none reported). */
  readySpares: number | undefined;
  /** Every heartbeat's ready spares, in order, with when it arrived (epoch ms). */
  readonly spareReports: Array<{ at: number; readySpares: number | undefined }> = [];
  generation = 0;
  /** The leader epoch stamped on each Welcome and (unless told otherwise) each desired set. */
  leaderEpoch = 0;
  /** Whether heartbeats are answered with a LeaseRenewal (false: as if the coordinator lost the agent). */
  renewLeases = true;
  /** The backup repository each Welcome names (undefined: none); change it and drop the stream to send another. */
  backupRepository: MessageInitShape<typeof BackupRepositorySchema> | undefined;
  private current: { stream: ServerStream<typeof ConnectResponseSchema>; drop: () => void } | undefined;
  private streamsOpened = 0;

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  /** Starts a fake coordinator on 127.0.0.1 (any port). */
  static async start(heartbeatIntervalMs = 200, leaseMs = 10_000): Promise<FakeCoordinator> {
    const server = new Server();
    const holder: { fake?: FakeCoordinator } = {};
    addService(server, AgentControlService, {
      connect: async (requests, stream, ctx) => {
        const fake = holder.fake;
        if (!fake) return;
        const it = requests[Symbol.asyncIterator]();
        const first = await it.next();
        if (first.done || first.value.message.case !== 'hello') return;
        fake.hellos.push(first.value.message.value);
        fake.statuses.push(...first.value.message.value.instances);
        await stream.send({
          message: { case: 'welcome', value: { heartbeatIntervalMs, leaseMs, backupRepository: fake.backupRepository, leaderEpoch: BigInt(fake.leaderEpoch) } },
        });
        let drop: () => void = () => undefined;
        const dropped = new Promise<undefined>((resolve) => {
          drop = () => resolve(undefined);
        });
        fake.current = { stream, drop };
        fake.streamsOpened += 1;
        try {
          while (!ctx.signal.aborted) {
            const next = await Promise.race([it.next(), dropped]);
            if (next === undefined || next.done) break;
            const m = next.value.message;
            if (m.case === 'heartbeat') {
              fake.heartbeats += 1;
              fake.readySpares = m.value.readySpares;
              fake.spareReports.push({ at: Date.now(), readySpares: m.value.readySpares });
              if (fake.renewLeases && m.value.sentAt) await stream.send({ message: { case: 'leaseRenewal', value: { heartbeatSentAt: m.value.sentAt } } });
            } else if (m.case === 'report') fake.statuses.push(...m.value.instances);
            else if (m.case === 'commandResult') fake.commandResults.push(m.value);
          }
        } finally {
          if (fake.current?.stream === stream) fake.current = undefined;
        }
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const fake = new FakeCoordinator(server, `127.0.0.1:${port}`);
    holder.fake = fake;
    return fake;
  }

  /** How many agent streams have been opened so far. */
  get streams(): number {
    return this.streamsOpened;
  }

  /** True while an agent stream is open. */
  get connected(): boolean {
    return this.current !== undefined;
  }

  /** The last status the agent reported for a tenant. */
  latest(tenantId: string): InstanceStatus | undefined {
    for (let i = this.statuses.length - 1; i >= 0; i--) if (this.statuses[i]?.tenantId === tenantId) return this.statuses[i];
    return undefined;
  }

  /** The result of command `commandId`, once the agent answered it. */
  result(commandId: string): CommandResult | undefined {
    return this.commandResults.find((r) => r.commandId === commandId);
  }

  /** The last report of `tenantId` that is running and realized at `specRevision` or later. */
  running(tenantId: string, specRevision = 1): InstanceStatus | undefined {
    const s = this.latest(tenantId);
    return s &&
      s.state === InstanceState.RUNNING &&
      s.realization === Realization.REALIZED &&
      Number(s.specRevision) >= specRevision &&
      s.health?.acceptingConnections
      ? s
      : undefined;
  }

  private async send(message: Outgoing): Promise<void> {
    if (!this.current) throw new Error('no agent connected to the fake coordinator');
    await this.current.stream.send(message);
  }

  /** Sends a desired set with the next generation (or the one given, to test stale generations). */
  async desired(options: {
    full?: boolean;
    instances?: MessageInitShape<typeof InstanceSpecSchema>[];
    removed?: string[];
    generation?: number;
    leaderEpoch?: number;
  }): Promise<number> {
    const generation = options.generation ?? ++this.generation;
    const leaderEpoch = BigInt(options.leaderEpoch ?? this.leaderEpoch);
    await this.send({
      message: {
        case: 'desired',
        value: {
          generation: BigInt(generation),
          full: options.full ?? false,
          instances: options.instances ?? [],
          removedTenantIds: options.removed ?? [],
          leaderEpoch,
        },
      },
    });
    return generation;
  }

  /** Sends a one-off command. */
  async command(command: MessageInitShape<typeof CommandSchema>): Promise<void> {
    await this.send({ message: { case: 'command', value: command } });
  }

  /** Ends the current stream from the server side, as a coordinator restart would. */
  dropStream(): void {
    this.current?.drop();
  }

  /** Stops the server. */
  async stop(): Promise<void> {
    this.dropStream();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.server.forceShutdown();
  }
}
