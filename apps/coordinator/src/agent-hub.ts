/**
 * The live agent streams, one per host, and the desired-set pushes to them. Services mark what
 * changed (a tenant, or a tenant on one host) after their transaction committed; one flush per
 * turn of the event loop sends each affected host a single delta with a new generation. A
 * host's messages go out strictly in generation order through a per-session send chain.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ConnectResponseSchema } from '@pgs/proto';
import type { Logger } from '@pgs/service-kit';
import { desiredSetForHost, type HostDesiredSet, type ReplicationDeps } from './desired-set.js';
import { toInstanceSpec } from './mappers/agent-mapper.js';
import type { Store } from './store/store.js';
import type { VersionCatalog } from './versions.js';

/** One connected agent stream. */
export interface AgentSession {
  readonly hostId: string;
  readonly sessionId: number;
  readonly connectedAt: number;
  /** Writes one message to the stream (resolves when flushed). */
  send(message: MessageInitShape<typeof ConnectResponseSchema>): Promise<void>;
  /** Ends the stream (e.g. replaced by a newer one from the same host). */
  close(reason: string): void;
}

/** A one-off command for an agent (failover: Fence, Promote). */
export type AgentCommand = 'fence' | 'promote';

/** What an agent answered to a command. */
export interface CommandOutcome {
  hostId: string;
  ok: boolean;
  errorCode: string;
  message: string;
  lsn: string;
  timeline: number;
  at: number;
}

/** Counters the hub reports to metrics. */
export interface AgentHubMetrics {
  desiredSent(kind: 'full' | 'delta'): void;
}

/** Registry of agent sessions and sender of desired sets. */
export class AgentHub {
  private readonly sessions = new Map<string, AgentSession>();
  private readonly chains = new Map<number, Promise<void>>();
  private readonly dirty = new Map<string, Set<string>>();
  private flushScheduled = false;
  private nextCommand = 1;
  private readonly results = new Map<string, CommandOutcome>();
  private readonly sentCommands = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly versions: VersionCatalog,
    private readonly log: Logger,
    private readonly metrics: AgentHubMetrics = { desiredSent: () => undefined },
    private readonly replication?: ReplicationDeps,
  ) {}

  /** Makes `session` the host's stream; an older stream of the same host is closed. */
  attach(session: AgentSession): void {
    const previous = this.sessions.get(session.hostId);
    this.sessions.set(session.hostId, session);
    if (previous && previous.sessionId !== session.sessionId) {
      this.log.warn({ hostId: session.hostId, sessionId: previous.sessionId }, 'agent reconnected; closing its older stream');
      previous.close('replaced by a newer stream from the same host');
    }
  }

  /** Ends every agent stream (a coordinator stopping): each handler returns and its call ends cleanly. */
  closeAll(reason: string): void {
    for (const session of this.sessions.values()) session.close(reason);
  }

  /** Forgets a session if it is still the host's current one. */
  detach(session: AgentSession): void {
    if (this.sessions.get(session.hostId)?.sessionId === session.sessionId) this.sessions.delete(session.hostId);
    this.chains.delete(session.sessionId);
  }

  /** True when the host has a live stream. */
  isConnected(hostId: string): boolean {
    return this.sessions.has(hostId);
  }

  /** The id of the host's current stream session, if connected. */
  sessionOf(hostId: string): number | undefined {
    return this.sessions.get(hostId)?.sessionId;
  }

  /** Queues `message` on the host's stream after what is already queued; false when not connected. */
  send(hostId: string, message: MessageInitShape<typeof ConnectResponseSchema>, what: string): boolean {
    const session = this.sessions.get(hostId);
    if (!session) return false;
    const previous = this.chains.get(session.sessionId) ?? Promise.resolve();
    this.chains.set(
      session.sessionId,
      previous.then(() => session.send(message).catch((err: unknown) => this.log.warn({ err, hostId, what }, 'cannot send to the agent'))),
    );
    return true;
  }

  /** Sends a command about `tenantId`; returns its id, or undefined when the host is not connected. */
  sendCommand(hostId: string, tenantId: string, command: AgentCommand): string | undefined {
    const commandId = `${command}-${tenantId}-${this.nextCommand++}`;
    const action = command === 'fence' ? { case: 'fence' as const, value: {} } : { case: 'promote' as const, value: {} };
    if (!this.send(hostId, { message: { case: 'command', value: { commandId, tenantId, action } } }, command)) return undefined;
    this.sentCommands.set(commandId, hostId);
    this.log.info({ hostId, tenantId, commandId }, 'command sent');
    return commandId;
  }

  /** Records an agent's answer to a command (ignored unless that host was sent that command). */
  commandResult(hostId: string, commandId: string, outcome: Omit<CommandOutcome, 'hostId'>): void {
    if (this.sentCommands.get(commandId) !== hostId) {
      this.log.warn({ hostId, commandId }, 'result for a command this host was not sent; ignored');
      return;
    }
    this.sentCommands.delete(commandId);
    this.results.set(commandId, { hostId, ...outcome });
  }

  /** Takes the answer to a command, if it arrived. */
  takeResult(commandId: string): CommandOutcome | undefined {
    const r = this.results.get(commandId);
    if (r) this.results.delete(commandId);
    return r;
  }

  /** Forgets a command nobody waits for any more. */
  forgetCommand(commandId: string): void {
    this.sentCommands.delete(commandId);
    this.results.delete(commandId);
  }

  /** Number of live agent streams. */
  get size(): number {
    return this.sessions.size;
  }

  /** Marks every host of a tenant for a delta (after a spec, user, database or run-state change). */
  touchTenant(tenantId: string): void {
    for (const p of this.store.listPlacements({ tenantId })) this.touch(p.hostId, tenantId);
  }

  /** Marks one tenant on one host for a delta. */
  touch(hostId: string, tenantId: string): void {
    let set = this.dirty.get(hostId);
    if (!set) this.dirty.set(hostId, (set = new Set()));
    set.add(tenantId);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Sends the host its full desired set (on connect). */
  sendFull(hostId: string): void {
    this.dirty.delete(hostId);
    this.push(hostId, true, undefined);
  }

  /** Sends the pending deltas now. */
  flush(): void {
    this.flushScheduled = false;
    const dirty = [...this.dirty];
    this.dirty.clear();
    if (dirty.length === 0) return;
    // One durable transaction (one fsync) for every host's generation bump, not one per host.
    try {
      this.store.write(() => {
        for (const [hostId, tenants] of dirty) this.push(hostId, false, tenants);
      });
    } catch (err) {
      // E.g. the store closed under a pending flush at shutdown; agents get full sets on reconnect.
      this.log.error({ err, hosts: dirty.length }, 'cannot send the pending desired-set deltas');
    }
  }

  private push(hostId: string, full: boolean, tenants: ReadonlySet<string> | undefined): void {
    const session = this.sessions.get(hostId);
    if (!session) return; // Sent in full when the agent connects.
    let set: HostDesiredSet;
    let generation: number;
    try {
      ({ set, generation } = this.store.write((tx) => {
        const generation = tx.nextHostGeneration(hostId);
        const set = desiredSetForHost(tx, hostId, this.versions, tenants, this.replication);
        for (const p of tx.listPlacements({ hostId })) {
          if (!tenants || tenants.has(p.tenantId)) tx.updatePlacement({ ...p, generation });
        }
        return { set, generation };
      }));
    } catch (err) {
      this.log.error({ err, hostId }, 'cannot build the desired set');
      return;
    }
    if (!full && set.instances.length === 0 && set.removedTenantIds.length === 0) return;
    const message: MessageInitShape<typeof ConnectResponseSchema> = {
      message: {
        case: 'desired',
        value: { generation: BigInt(generation), full, instances: set.instances.map(toInstanceSpec), removedTenantIds: set.removedTenantIds },
      },
    };
    const previous = this.chains.get(session.sessionId) ?? Promise.resolve();
    const next = previous.then(() =>
      session.send(message).then(
        () => {
          this.metrics.desiredSent(full ? 'full' : 'delta');
          this.log.debug({ hostId, generation, full, instances: set.instances.length, removed: set.removedTenantIds.length }, 'desired set sent');
        },
        (err: unknown) => this.log.warn({ err, hostId, generation }, 'cannot send the desired set; the agent gets it in full when it reconnects'),
      ),
    );
    this.chains.set(session.sessionId, next);
  }
}
