/**
 * The live agent streams, one per host, and the desired-set pushes to them. A transaction records
 * what changed (`tx.record({ kind: 'desired', ... })`: a tenant, or a tenant on one host); the hub
 * follows the store's commits, and one flush per turn of the event loop sends each affected host a
 * single delta with a new generation. A
 * host's messages go out strictly in generation order through a per-session send chain.
 *
 * On Hello the host's full set is built in slices (services/desired-set-slices.ts); while it is
 * built, that host's deltas wait and go out after it. An agent that already holds the full set
 * (libs/tenancy desiredAfterHello: it applied the last full set sent, nothing went after it, and
 * the set hashes the same) gets only a confirmation: no new generation, no write, no re-apply.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { CommandSchema, ConnectResponseSchema, UpgradeSourceResult, UpgradeTargetResult } from '@pgs/proto';
import type { Logger } from '@pgs/service-kit';
import { desiredAfterHello } from '@pgs/tenancy';
import { desiredSetForHost, type HostDesiredSet, type ReplicationDeps } from '../services/desired-set.js';
import { desiredSetInSlices } from '../services/desired-set-slices.js';
import { desiredSetDigest } from './desired-digest.js';
import { toInstanceSpec } from './mappers/agent-mapper.js';
import type { Commit, Store, StoreTx } from '../store/contract.js';
import type { VersionCatalog } from '../services/versions.js';

/** How long work that failed on the store waits before it is tried again. */
const STORE_RETRY_MS = 1000;

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
  /** The answer to an UpgradeSource or UpgradeTarget step. */
  upgradeSource?: UpgradeSourceResult | undefined;
  upgradeTarget?: UpgradeTargetResult | undefined;
}

/** Counters the hub reports to metrics. */
export interface AgentHubMetrics {
  /** A desired set went out: the full set, a delta, or a confirmation of what the agent holds. */
  desiredSent(kind: 'full' | 'delta' | 'confirm'): void;
}

/** A desired set built in a transaction, sent once it committed. */
interface Built {
  hostId: string;
  full: boolean;
  set: HostDesiredSet;
  generation: number;
}

/** Registry of agent sessions and sender of desired sets. */
export class AgentHub {
  private readonly sessions = new Map<string, AgentSession>();
  private readonly chains = new Map<number, Promise<void>>();
  private readonly dirty = new Map<string, Set<string>>();
  /** Hosts whose full set is being built (how many builds): their deltas wait until it is out. */
  private readonly building = new Map<string, number>();
  private flushScheduled = false;
  private stopped = false;
  /** Work that failed on the store (a lost connection, a timeout under load) and is tried again. */
  private readonly retries = new Set<NodeJS.Timeout>();
  private nextCommand = 1;
  private readonly results = new Map<string, CommandOutcome>();
  private readonly sentCommands = new Map<string, string>();
  private readonly resultListeners = new Set<(commandId: string, outcome: CommandOutcome) => void>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    private readonly versions: VersionCatalog,
    private readonly log: Logger,
    private readonly metrics: AgentHubMetrics = { desiredSent: () => undefined },
    private readonly replication?: ReplicationDeps,
  ) {
    this.unsubscribe = store.subscribe((commit) => this.onCommit(commit));
  }

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

  /**
   * The leader lease epoch stamped on every command and desired set (0 = the only coordinator):
   * an agent that saw a newer leader refuses what an overtaken one still sends.
   */
  leaderEpoch = 0;

  private stamp(message: MessageInitShape<typeof ConnectResponseSchema>): MessageInitShape<typeof ConnectResponseSchema> {
    const m = message.message;
    if (this.leaderEpoch === 0 || !m || (m.case !== 'command' && m.case !== 'desired')) return message;
    return { message: { ...m, value: { ...m.value, leaderEpoch: BigInt(this.leaderEpoch) } } } as MessageInitShape<typeof ConnectResponseSchema>;
  }

  /** Queues `message` on the host's stream after what is already queued; false when not connected. */
  send(hostId: string, message: MessageInitShape<typeof ConnectResponseSchema>, what: string): boolean {
    const session = this.sessions.get(hostId);
    if (!session) return false;
    message = this.stamp(message);
    const previous = this.chains.get(session.sessionId) ?? Promise.resolve();
    this.chains.set(
      session.sessionId,
      previous.then(() => session.send(message).catch((err: unknown) => this.log.warn({ err, hostId, what }, 'cannot send to the agent'))),
    );
    return true;
  }

  /** Sends a command about `tenantId`; returns its id, or undefined when the host is not connected. */
  sendCommand(hostId: string, tenantId: string, command: AgentCommand, options: { graceMs?: number; minLsn?: string } = {}): string | undefined {
    const commandId = `${command}-${tenantId}-${this.nextCommand++}`;
    const action: MessageInitShape<typeof CommandSchema>['action'] =
      command === 'fence' ? { case: 'fence', value: { graceMs: options.graceMs ?? 0 } } : { case: 'promote', value: { minLsn: options.minLsn ?? '' } };
    if (!this.send(hostId, { message: { case: 'command', value: { commandId, tenantId, action } } }, command)) return undefined;
    this.sentCommands.set(commandId, hostId);
    this.log.info({ hostId, tenantId, commandId }, 'command sent');
    return commandId;
  }

  /** Sends a command with `action` about `tenantId` (upgrade steps); its id, or undefined when the host is not connected. */
  sendAction(hostId: string, tenantId: string, what: string, action: MessageInitShape<typeof CommandSchema>['action']): string | undefined {
    const commandId = `${what}-${tenantId}-${this.nextCommand++}`;
    if (!this.send(hostId, { message: { case: 'command', value: { commandId, tenantId, action } } }, what)) return undefined;
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
    const full = { hostId, ...outcome };
    this.results.set(commandId, full);
    for (const listener of this.resultListeners) {
      try {
        listener(commandId, full);
      } catch (err) {
        this.log.error({ err, hostId, commandId }, 'a command result listener failed');
      }
    }
  }

  /**
   * Calls `listener` as each command's answer arrives (the answer also stays for takeResult): a
   * switch acts on the agent's answer at once instead of on the next reconciler tick.
   */
  onResult(listener: (commandId: string, outcome: CommandOutcome) => void): () => void {
    this.resultListeners.add(listener);
    return () => this.resultListeners.delete(listener);
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
  async touchTenant(tenantId: string): Promise<void> {
    for (const p of await this.store.read.placements.list({ tenantId })) this.touch(p.hostId, tenantId);
    // The other instance of a major upgrade (not a placement) follows the tenant's users and databases too.
    const upgrade = await this.store.read.upgrades.get(tenantId);
    if (upgrade) this.touch(upgrade.other.hostId, tenantId);
  }

  /** Marks one tenant on one host for a delta. */
  touch(hostId: string, tenantId: string): void {
    this.markDirty(hostId, tenantId);
    this.scheduleFlush();
  }

  private markDirty(hostId: string, tenantId: string): void {
    let set = this.dirty.get(hostId);
    if (!set) this.dirty.set(hostId, (set = new Set()));
    set.add(tenantId);
  }

  /** Follows committed changes: the desired sets a transaction recorded go out as deltas. */
  private onCommit(commit: Commit): void {
    for (const d of commit.desired) {
      if (d.hostId !== undefined) this.touch(d.hostId, d.tenantId);
      else this.touchTenantUntilDone(d.tenantId);
    }
  }

  /** touchTenant, tried again after a store failure: a change nobody sends would never reach its hosts. */
  private touchTenantUntilDone(tenantId: string): void {
    this.touchTenant(tenantId).catch((err: unknown) => {
      this.log.error({ err, tenantId }, `cannot find the hosts of a changed tenant; trying again in ${STORE_RETRY_MS} ms`);
      this.later(() => this.touchTenantUntilDone(tenantId));
    });
  }

  /** Runs `fn` after STORE_RETRY_MS unless the hub stopped meanwhile. */
  private later(fn: () => void): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.retries.delete(t);
      if (!this.stopped) fn();
    }, STORE_RETRY_MS);
    t.unref();
    this.retries.add(t);
  }

  /** Stops following the store's commits (and trying failed work again). */
  stop(): void {
    this.stopped = true;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    this.unsubscribe();
  }

  /**
   * Sends the host its full desired set after its Hello, or only confirms what its agent holds
   * (`appliedGeneration`: the generation its Hello says it applied). Resolves with how many
   * instances the set names (what the agent will report on), undefined when none was sent.
   */
  async sendFull(hostId: string, appliedGeneration = 0): Promise<number | undefined> {
    this.dirty.delete(hostId);
    if (!this.sessions.has(hostId)) return undefined; // Sent in full when the agent connects.
    this.building.set(hostId, (this.building.get(hostId) ?? 0) + 1);
    try {
      return await this.buildAndSendFull(hostId, appliedGeneration);
    } catch (err) {
      // The agent stays connected and would otherwise hold nothing (or an old set) until it
      // reconnects: built again shortly, while its stream lasts.
      this.log.error({ err, hostId }, `cannot build the desired set; trying again in ${STORE_RETRY_MS} ms`);
      const session = this.sessions.get(hostId);
      this.later(() => {
        // A new stream's Hello asks for its own full set.
        if (session && this.sessions.get(hostId) === session) void this.sendFull(hostId, appliedGeneration);
      });
      return undefined;
    } finally {
      const left = (this.building.get(hostId) ?? 1) - 1;
      if (left > 0) this.building.set(hostId, left);
      else this.building.delete(hostId);
      // Changes committed while the set was built go out after it.
      if (left <= 0 && this.dirty.has(hostId)) this.scheduleFlush();
    }
  }

  private async buildAndSendFull(hostId: string, appliedGeneration: number): Promise<number | undefined> {
    const set = await desiredSetInSlices(this.store, hostId, this.versions, this.replication);
    const digest = desiredSetDigest(set);
    const [host, sent] = await Promise.all([this.store.read.hosts.get(hostId), this.store.read.hosts.desiredSent(hostId)]);
    if (!host) return undefined; // Gone from the store meanwhile: nothing to send it.
    const decision = desiredAfterHello({ appliedGeneration, hostGeneration: host.generation, sent, digest });
    if (decision.send === 'confirm') {
      this.enqueueConfirm(hostId, host.generation);
      return set.instances.length;
    }
    // In a group commit with the other hosts' (a fleet's first start sends every host its set at once: one fsync each was most of its stall).
    const generation = await this.store.transaction(
      async (tx) => {
        const g = await tx.hosts.nextGeneration(hostId);
        await tx.hosts.noteDesiredSent(hostId, { generation: g, digest });
        return g;
      },
      { grouped: true },
    );
    this.log.debug({ hostId, generation, why: decision.why }, 'full desired set');
    this.enqueue({ hostId, full: true, set, generation });
    return set.instances.length;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => void this.flush());
  }

  /** Sends the pending deltas now (those of hosts whose full set is being built wait for it). */
  async flush(): Promise<void> {
    this.flushScheduled = false;
    const dirty: Array<[string, Set<string>]> = [];
    for (const [hostId, tenants] of this.dirty) {
      if (this.building.has(hostId)) continue;
      this.dirty.delete(hostId);
      if (this.sessions.has(hostId)) dirty.push([hostId, tenants]); // others get it in full when they connect
    }
    if (dirty.length === 0) return;
    // One durable transaction (one fsync) for every host's generation bump, not one per host.
    let built: Built[];
    try {
      built = await this.store.transaction(async (tx) => {
        const out: Built[] = [];
        for (const [hostId, tenants] of dirty) {
          const b = await this.buildDelta(tx, hostId, tenants);
          if (b) out.push(b);
        }
        return out;
      });
    } catch (err) {
      // A store that failed under load (a lost connection, a timeout): the agents stay connected and
      // would never get these changes, so they are marked again and sent shortly. (After stop, as
      // when the store closed at shutdown, they are not: agents get full sets when they reconnect.)
      this.log.error({ err, hosts: dirty.length }, `cannot send the pending desired-set deltas; trying again in ${STORE_RETRY_MS} ms`);
      for (const [hostId, tenants] of dirty) for (const tenantId of tenants) this.markDirty(hostId, tenantId);
      this.later(() => this.scheduleFlush());
      return;
    }
    for (const b of built) this.enqueue(b);
  }

  /** The changes to `tenants` on the host with a new generation; undefined = nothing to send. */
  private async buildDelta(tx: StoreTx, hostId: string, tenants: ReadonlySet<string>): Promise<Built | undefined> {
    const set = await desiredSetForHost(tx, hostId, this.versions, tenants, this.replication);
    if (set.instances.length === 0 && set.removedTenantIds.length === 0) return undefined;
    return { hostId, full: false, set, generation: await tx.hosts.nextGeneration(hostId) };
  }

  /**
   * Tells the agent that what it holds is still wanted: a desired set no newer than the one it
   * applied, which it answers by keeping its instances and counting their specs as confirmed.
   */
  private enqueueConfirm(hostId: string, generation: number): void {
    const session = this.sessions.get(hostId);
    if (!session) return; // Sent in full when the agent connects.
    const message: MessageInitShape<typeof ConnectResponseSchema> = {
      message: {
        case: 'desired',
        value: { generation: BigInt(generation), full: false, instances: [], removedTenantIds: [], leaderEpoch: BigInt(this.leaderEpoch) },
      },
    };
    const previous = this.chains.get(session.sessionId) ?? Promise.resolve();
    const next = previous.then(() =>
      session.send(message).then(
        () => this.metrics.desiredSent('confirm'),
        (err: unknown) => this.log.warn({ err, hostId, generation }, 'cannot confirm the desired set; the agent gets it in full when it reconnects'),
      ),
    );
    this.chains.set(session.sessionId, next);
  }

  /** Queues a built desired set on the host's stream, after what is already queued there. */
  private enqueue(built: Built): void {
    const { hostId, full, set, generation } = built;
    const session = this.sessions.get(hostId);
    if (!session) return; // Sent in full when the agent connects.
    const message: MessageInitShape<typeof ConnectResponseSchema> = {
      message: {
        case: 'desired',
        value: {
          generation: BigInt(generation),
          full,
          instances: set.instances.map(toInstanceSpec),
          removedTenantIds: set.removedTenantIds,
          leaderEpoch: BigInt(this.leaderEpoch),
        },
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
