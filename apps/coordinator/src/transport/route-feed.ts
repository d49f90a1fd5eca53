/**
 * RouteFeedService.WatchRoutes: a snapshot when the router is new (since 0), ahead of us, or
 * further behind than the retained history; otherwise the deltas it missed; then the commits'
 * route changes in revision order, in process (no polling): a commit's changes go out at once
 * when none went in the last `PUBLISH_WINDOW_MS`, otherwise together with every commit's until
 * that window ends, as one batch encoded once for every router. Each router's stream has its
 * own queue, bounded by bytes (route-queue.ts); a router that falls too far behind is cut off
 * and catches up from its revision when it reconnects.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { BackendFailureKind, WakeOutcome, WatchRoutesResponseSchema, type RouteFeedService, type RouterPeerSchema, type RouteSchema } from '@pgs/proto';
import { Code, EncodedMessage, RpcError, type CallContext, type ServiceImpl } from '@pgs/rpc';
import { principalOf } from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import { toNumber, toProtoRoute } from './mappers/common-mapper.js';
import type { BackendFailures } from '../live/backend-failures.js';
import type { RouteChange, RouteRecord } from '../domain/model.js';
import type { RouterClients } from '../live/router-clients.js';
import { auditRefusal, callerOf } from '../security/access.js';
import type { Store } from '../store/contract.js';
import { commitsOf, type FeedSource } from './feed-source.js';
import type { SuspendService } from '../services/suspend-service.js';
import { RouteQueue, routeBytes } from './route-queue.js';

/** What the router-facing calls besides WatchRoutes need: client reports and wakes. */
export interface RouterCalls {
  clients: RouterClients;
  suspends: SuspendService;
  clock: () => number;
  /** Where routers' refused connects go (absent: the reports are accepted and dropped). */
  backendFailures?: BackendFailures;
}

const WAKE_OUTCOMES = {
  STARTED: WakeOutcome.STARTED,
  IN_PROGRESS: WakeOutcome.IN_PROGRESS,
  THROTTLED: WakeOutcome.THROTTLED,
  REFUSED: WakeOutcome.REFUSED,
} as const;

/** A connected router. */
export interface RouterPeer {
  routerId: string;
  cancelAddress: string;
}

/** One WatchRoutesResponse, as plain init data. */
interface Batch {
  snapshot: boolean;
  revision: bigint;
  upserts: MessageInitShape<typeof RouteSchema>[];
  deletedTenantIds: string[];
  routers: MessageInitShape<typeof RouterPeerSchema>[];
  routersChanged: boolean;
  /** A part of a snapshot with more parts to follow. */
  snapshotContinues?: boolean;
  /** What the batch weighs in a subscriber's queue (routeBytes of its routes). */
  bytes: number;
  /** A shared delta as sent: encoded once, by the first stream that sends it, for every router. */
  encoded?: EncodedMessage<typeof WatchRoutesResponseSchema>;
}

/**
 * Routes per snapshot part by default (some 0.4 MiB with a user each): well under gRPC's 4 MiB
 * default message limit, and small enough that encoding one part does not hold the event loop up
 * for the heartbeats, API calls and route deltas of everyone else.
 */
export const SNAPSHOT_PART_ROUTES = 2000;

/**
 * Most bytes of route changes a router may have queued before it is cut off (some 600,000 changes
 * with an owner each). Batches are shared by the queues, so this bounds the whole feed's backlog,
 * not each router's: a router merely behind for a while costs nothing but its place in the shared
 * batches, while one cut off costs its own catch-up (read, parsed and encoded for it alone).
 */
export const MAX_QUEUED_BYTES = 256 * 2 ** 20;

/**
 * Route changes go out to the routers at most once per this many ms: the first commit's at once,
 * the next ones gathered until the window ends, then as one batch. Each batch is a message on
 * every router's stream, and at a hundred routers a message per commit (a tenant create makes
 * several) was more writes than the coordinator could make while tenants were created: every
 * router fell behind its queue's bound and was cut off. A change waits at most this long.
 */
export const PUBLISH_WINDOW_MS = 10;

interface Subscriber {
  id: number;
  peer: RouterPeer;
  queue: RouteQueue<Batch>;
  wake: (() => void) | undefined;
}

/** Live route subscribers and the router peer list. */
export class RouteFeed {
  private readonly subscribers = new Map<number, Subscriber>();
  private nextId = 1;
  private closed = false;
  private readonly unsubscribe: () => void;
  /** Changes committed and not yet published (the window is open), in revision order. */
  private pending: RouteChange[] = [];
  private publishTimer: NodeJS.Timeout | undefined;
  private lastPublishedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly onBatch: (kind: 'snapshot' | 'delta' | 'peers') => void = () => undefined,
    /** Sent on every batch: routers connect to instances with TLS (verify-full against the fleet CA). */
    private readonly instanceTls = false,
    /** Routes per message of a snapshot in parts or of a catch-up. */
    private readonly partRoutes = SNAPSHOT_PART_ROUTES,
    /** Where committed route changes come from (a follower: what it reads back from the shared store). */
    source: FeedSource = commitsOf(store),
    /** Most bytes a router's queue may hold before it is cut off. */
    private readonly maxQueuedBytes = MAX_QUEUED_BYTES,
    /** At most one batch of changes per this many ms (0: one per commit). */
    private readonly publishWindowMs = PUBLISH_WINDOW_MS,
  ) {
    this.unsubscribe = source((summary) => {
      if (summary.routeChanges.length > 0) this.publish(summary.routeChanges);
    });
  }

  /** Ends every watch (a coordinator stopping): each handler returns, so its call ends cleanly. */
  close(): void {
    this.closed = true;
    this.unsubscribe();
    clearTimeout(this.publishTimer);
    for (const sub of this.subscribers.values()) sub.wake?.();
  }

  /** Number of connected routers. */
  get size(): number {
    return this.subscribers.size;
  }

  /** The routers connected now. */
  peers(): RouterPeer[] {
    return [...this.subscribers.values()].map((s) => s.peer);
  }

  private peerMessages(): MessageInitShape<typeof RouterPeerSchema>[] {
    return this.peers().map((p) => ({ routerId: p.routerId, cancelAddress: p.cancelAddress }));
  }

  private enqueue(sub: Subscriber, batch: Batch): void {
    sub.queue.push(batch);
    const wake = sub.wake;
    sub.wake = undefined;
    wake?.();
  }

  /** Publishes `changes` now, or with the others of the window when one went out less than a window ago. */
  private publish(changes: readonly RouteChange[]): void {
    for (const c of changes) this.pending.push(c);
    if (this.publishTimer !== undefined) return;
    const wait = this.lastPublishedAt + this.publishWindowMs - performance.now();
    if (wait <= 0) this.publishPending();
    else this.publishTimer = setTimeout(() => this.publishPending(), wait);
  }

  private publishPending(): void {
    this.publishTimer = undefined;
    if (this.pending.length === 0 || this.closed) return;
    this.lastPublishedAt = performance.now();
    const batch = deltaBatch(this.pending);
    this.pending = [];
    for (const sub of this.subscribers.values()) this.enqueue(sub, batch);
  }

  private async peersChanged(): Promise<void> {
    const routers = this.peerMessages();
    // One batch for every router (each queue holds it, and each stream stamps its own revision on it).
    const batch: Batch = {
      snapshot: false,
      revision: BigInt(await this.store.read.routes.revision()),
      upserts: [],
      deletedTenantIds: [],
      routers,
      routersChanged: true,
      bytes: 64 + 64 * routers.length,
    };
    for (const sub of this.subscribers.values()) this.enqueue(sub, batch);
  }

  /**
   * The changes a router missed since `since`, up to `current`, in parts of ordinary deltas in
   * revision order (one message of a whole route history would be far over gRPC's default limit),
   * each part read from the store as it goes: routers cut off together for falling behind resume
   * together, and each holding its whole catch-up at once (tens of thousands of changes a router,
   * a hundred routers) took the coordinator to its heap limit. The revision sent; null when the
   * history no longer reaches back that far (or the router is ahead, or the history was pruned
   * past the parts sent so far): it needs a snapshot; undefined when the watch ended.
   */
  private async sendCatchUp(
    since: number,
    current: number,
    send: (b: Batch) => Promise<void>,
    signal: AbortSignal,
    log: Logger,
  ): Promise<number | null | undefined> {
    let from = since;
    let changes = 0;
    for (;;) {
      const page = await this.store.read.routes.changesSince(from, this.partRoutes);
      if (page === undefined) return null;
      // Changes after `current` come from the router's queue, as every commit since it subscribed.
      const part = page.filter((c) => c.revision <= current);
      const last = part.length < this.partRoutes || part[part.length - 1]!.revision >= current;
      await send({ ...deltaBatch(part, last ? current : 0), routers: this.peerMessages(), routersChanged: true });
      if (signal.aborted || this.closed) return undefined;
      changes += part.length;
      if (last) break;
      from = part[part.length - 1]!.revision;
    }
    this.onBatch('delta');
    log.info({ since, revision: current, changes }, 'router subscribed; deltas sent');
    return current;
  }

  /**
   * The route table. A router that takes parts gets it a part at a time, each read from the store
   * as it goes (`routes.listAfter`), so a watch holds one part and not the table: with a million
   * tenants the table is hundreds of MiB, and every router resubscribing after a restart would hold
   * its own copy at once. The parts stand for `current`, read before the first: a route changed
   * while they are read is in a later part or not, and comes again as a delta after the last part
   * (every change after `current` is queued for the router since it subscribed). An older router
   * gets the whole table in one message, at the newest revision it holds. The revision sent;
   * undefined when the watch ended.
   */
  private async sendSnapshot(
    inParts: boolean,
    current: number,
    send: (b: Batch) => Promise<void>,
    signal: AbortSignal,
    log: Logger,
  ): Promise<number | undefined> {
    const part = (upserts: RouteRecord[], revision: number, more: boolean): Batch => ({
      snapshot: true,
      snapshotContinues: more,
      revision: BigInt(revision),
      upserts: upserts.map(toProtoRoute),
      deletedTenantIds: [],
      routers: this.peerMessages(),
      routersChanged: true,
      bytes: 0,
    });
    let count = 0;
    let revision = current;
    if (inParts) {
      let page = await this.store.read.routes.listAfter('', this.partRoutes);
      for (;;) {
        const next = page.length < this.partRoutes ? [] : await this.store.read.routes.listAfter(page.at(-1)!.tenantId, this.partRoutes);
        await send(part(page, current, next.length > 0));
        count += page.length;
        if (signal.aborted || this.closed) return undefined;
        if (next.length === 0) break;
        page = next;
      }
    } else {
      const routes = await this.store.read.routes.list();
      // A loop, not Math.max(...routes): spreading a million arguments overflows the stack.
      for (const r of routes) if (r.revision > revision) revision = r.revision;
      await send(part(routes, revision, false));
      count = routes.length;
      if (signal.aborted || this.closed) return undefined;
    }
    this.onBatch('snapshot');
    log.info({ revision, routes: count }, 'router subscribed; snapshot sent');
    return revision;
  }

  /** A batch as the response it is sent as. */
  private wire({ bytes: _bytes, encoded: _encoded, ...batch }: Batch): MessageInitShape<typeof WatchRoutesResponseSchema> {
    return { ...batch, instanceTls: this.instanceTls };
  }

  /** A router calls only as itself: the request's router_id must be the id its certificate names. */
  private async mustBeRouter(ctx: CallContext, routerId: string, what: string): Promise<void> {
    const who = principalOf(ctx);
    if (who?.kind === 'router' && who.id === routerId) return;
    const reason = `${callerOf(ctx)} may not ${what} as router "${routerId}"`;
    await auditRefusal(this.store, { time: Date.now(), principal: callerOf(ctx), method: ctx.method, reason, peer: ctx.peer });
    throw new RpcError(Code.PERMISSION_DENIED, reason, { errorCode: 'PERMISSION_DENIED' });
  }

  /** The RouteFeedService handlers: WatchRoutes, and the client reports and wakes when `calls` is given. */
  service(calls?: RouterCalls): ServiceImpl<typeof RouteFeedService> {
    return {
      reportClients: async (request, ctx) => {
        await this.mustBeRouter(ctx, request.routerId, 'report clients');
        if (!calls) throw new RpcError(Code.UNIMPLEMENTED, 'this coordinator does not take client reports');
        calls.clients.report(request.routerId, new Map(request.tenants.map((t) => [t.tenantId, t.clients])), request.complete, calls.clock());
        return { intervalMs: 0 };
      },
      reportBackendFailures: async (request, ctx) => {
        await this.mustBeRouter(ctx, request.routerId, 'report backend failures');
        const now = calls?.clock() ?? Date.now();
        // Bounded: a router sends a handful; anything past that is not news.
        for (const f of request.failures.slice(0, 1000)) {
          if (f.kind !== BackendFailureKind.REFUSED || !f.tenantId) continue;
          calls?.backendFailures?.refusedAt(f.tenantId, f.address, f.port, f.observedAt ? timestampMs(f.observedAt) : now, now);
        }
        return {};
      },
      wakeTenant: async (request, ctx) => {
        await this.mustBeRouter(ctx, request.routerId, 'wake tenants');
        if (!calls) throw new RpcError(Code.UNIMPLEMENTED, 'this coordinator does not wake tenants');
        const r = await calls.suspends.wake(request.tenantId, `router:${request.routerId}`, request.waitingClients);
        return { outcome: WAKE_OUTCOMES[r.outcome], message: r.message, retryAfterMs: r.retryAfterMs };
      },
      watchRoutes: async (request, stream, ctx) => {
        // A router watches only as itself: its request's router_id is the id its certificate names, so no router can read another's routes.
        await this.mustBeRouter(ctx, request.routerId, 'watch routes');
        const peer: RouterPeer = { routerId: request.routerId, cancelAddress: request.cancelAddress };
        const sub: Subscriber = { id: this.nextId++, peer, queue: new RouteQueue(this.maxQueuedBytes), wake: undefined };
        const since = toNumber(request.sinceRevision);
        // Subscribe before reading the catch-up, so nothing committed in between is missed;
        // batches at or below the catch-up revision are skipped below.
        this.subscribers.set(sub.id, sub);
        const log = this.log.child({ component: 'route-feed', routerId: peer.routerId });
        const send = (batch: Batch): Promise<void> => stream.send(this.wire(batch));
        try {
          const current = await this.store.read.routes.revision();
          // Sent by methods of their own: what a snapshot or a catch-up read is let go once it is
          // sent, not kept in this handler's frame for as long as the router stays connected.
          const caughtUp = since === 0 ? null : await this.sendCatchUp(since, current, send, ctx.signal, log);
          if (caughtUp === undefined) return;
          let sentRevision = caughtUp ?? (await this.sendSnapshot(request.snapshotInParts, current, send, ctx.signal, log));
          if (sentRevision === undefined) return;
          await this.peersChanged();
          while (!ctx.signal.aborted && !this.closed) {
            const batch = sub.queue.shift();
            if (batch === undefined) {
              if (sub.queue.overflowed) {
                log.warn(
                  { revision: sentRevision, maxQueuedBytes: this.maxQueuedBytes },
                  'router too far behind; closing its stream so it resumes from its revision',
                );
                return;
              }
              // The abort listener goes with the wait: one left per wait would pile up for as long as the router stays.
              await new Promise<void>((resolve) => {
                const done = (): void => {
                  ctx.signal.removeEventListener('abort', done);
                  resolve();
                };
                sub.wake = done;
                ctx.signal.addEventListener('abort', done, { once: true });
                if (this.closed) done();
              });
              continue;
            }
            const revision = toNumber(batch.revision);
            const isPeers = batch.routersChanged && batch.upserts.length === 0 && batch.deletedTenantIds.length === 0;
            if (!isPeers && revision <= sentRevision) continue;
            // A peers-only batch carries no routes, so it must not claim a revision the router has not got.
            if (isPeers) await send({ ...batch, revision: BigInt(sentRevision) });
            else await stream.send((batch.encoded ??= EncodedMessage.of(WatchRoutesResponseSchema, this.wire(batch))));
            this.onBatch(isPeers ? 'peers' : 'delta');
            if (!isPeers) sentRevision = revision;
          }
        } finally {
          this.subscribers.delete(sub.id);
          await this.peersChanged();
          log.info({}, 'router unsubscribed');
        }
      },
    };
  }
}

/** One batch of changes: the last change of each tenant wins; revision = the last change's. */
function deltaBatch(changes: readonly RouteChange[], atLeast = 0): Batch {
  const last = new Map<string, RouteChange>();
  for (const c of changes) {
    last.delete(c.tenantId);
    last.set(c.tenantId, c);
  }
  const upserts: MessageInitShape<typeof RouteSchema>[] = [];
  const deletedTenantIds: string[] = [];
  let bytes = 64;
  for (const c of last.values()) {
    if (c.route === undefined) {
      deletedTenantIds.push(c.tenantId);
      bytes += 40 + c.tenantId.length;
    } else {
      upserts.push(toProtoRoute(c.route));
      bytes += routeBytes(c.route);
    }
  }
  let revision = atLeast;
  for (const c of changes) if (c.revision > revision) revision = c.revision;
  return { snapshot: false, revision: BigInt(revision), upserts, deletedTenantIds, routers: [], routersChanged: false, bytes };
}
