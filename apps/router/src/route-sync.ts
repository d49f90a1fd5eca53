// Follows the coordinator's route feed into the cache. The router never waits for it: it serves
// from the cache from the start and keeps doing so while the feed is down, reconnecting with backoff.
import type { Metadata } from '@grpc/grpc-js';
import type { RouteFeedService } from '@pgs/proto';
import type { Client } from '@pgs/rpc';
import type { Logger } from '@pgs/service-kit';
import type { RouteCache } from './route-cache.js';
import { SnapshotParts, watchRequest } from './route-feed-mapper.js';

/** Where the feed stands, for /healthz and metrics. */
export interface SyncStatus {
  connected: boolean;
  revision: number;
  /** Epoch ms the cache was last known in sync (0 = never). */
  syncedAt: number;
  /** Seconds since the cache was last known in sync; 0 while the feed is live. */
  staleSeconds: number;
  reconnects: number;
  lastError: string | undefined;
}

/** Options of RouteSync. */
export interface RouteSyncOptions {
  client: Client<typeof RouteFeedService>;
  cache: RouteCache;
  routerId: string;
  /** The cancel address this router announces (host:port). */
  cancelAddress: () => string;
  log: Logger;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** Called after each applied batch (e.g. to refresh the peer list). */
  onBatch?: (info: { revision: number; upserts: number; deletes: number; snapshot: boolean; peersChanged: boolean }) => void;
  now?: () => number;
  /** Metadata on every watch (the identity claim of an --insecure router). */
  callMetadata?: Metadata;
}

/** Keeps the route cache following WatchRoutes(since = cached revision). */
export class RouteSync {
  readonly #o: RouteSyncOptions;
  readonly #now: () => number;
  readonly #stop = new AbortController();
  #running: Promise<void> | undefined;
  #connected = false;
  #reconnects = 0;
  #lastError: string | undefined;
  #stream: { cancel(): void } | undefined;

  constructor(options: RouteSyncOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Starts following the feed in the background. */
  start(): void {
    this.#running ??= this.#loop();
  }

  /** Stops following; the cache keeps what it has. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#stream?.cancel();
    await this.#running;
  }

  /** The feed's state and the cache's staleness. */
  status(): SyncStatus {
    const { cache } = this.#o;
    const syncedAt = cache.syncedAt;
    const staleSeconds = this.#connected ? 0 : syncedAt === 0 ? Number.POSITIVE_INFINITY : Math.max(0, (this.#now() - syncedAt) / 1000);
    return { connected: this.#connected, revision: cache.revision, syncedAt, staleSeconds, reconnects: this.#reconnects, lastError: this.#lastError };
  }

  async #loop(): Promise<void> {
    const { log, backoffMinMs, backoffMaxMs } = this.#o;
    let delay = backoffMinMs;
    while (!this.#stop.signal.aborted) {
      const gotMessages = await this.#follow();
      if (this.#stop.signal.aborted) break;
      this.#reconnects++;
      if (gotMessages) delay = backoffMinMs;
      // Full jitter, so a fleet of routers does not reconnect in step after a coordinator restart.
      const wait = Math.round(delay / 2 + (Math.random() * delay) / 2);
      log.debug({ waitMs: wait }, 'route feed reconnect scheduled');
      await sleep(wait, this.#stop.signal);
      delay = Math.min(backoffMaxMs, delay * 2);
    }
  }

  /** One WatchRoutes call until it ends; true when it delivered at least one batch. */
  async #follow(): Promise<boolean> {
    const { client, cache, log, routerId } = this.#o;
    let got = false;
    const since = cache.revision;
    const stream = client.watchRoutes(watchRequest(since, routerId, this.#o.cancelAddress()), {
      signal: this.#stop.signal,
      ...(this.#o.callMetadata ? { metadata: this.#o.callMetadata } : {}),
    });
    this.#stream = stream;
    // A snapshot in parts is applied whole at its last part; a stream lost before then leaves the cache as it was.
    const parts = new SnapshotParts();
    try {
      for await (const res of stream) {
        const batch = parts.add(res);
        if (batch === undefined) continue;
        const result = cache.apply(batch, this.#now());
        if (!this.#connected) log.info({ sinceRevision: since, revision: result.revision, snapshot: batch.snapshot }, 'route feed live');
        this.#connected = true;
        this.#lastError = undefined;
        got = true;
        if (result.applied) {
          log.debug({ revision: result.revision, upserts: result.upserts, deletes: result.deletes, snapshot: batch.snapshot }, 'route batch applied');
          this.#o.onBatch?.({
            revision: result.revision,
            upserts: result.upserts,
            deletes: result.deletes,
            snapshot: batch.snapshot,
            peersChanged: batch.routers !== undefined,
          });
        }
      }
      if (!this.#stop.signal.aborted) this.#lastError = 'feed ended';
    } catch (err) {
      this.#lastError = err instanceof Error ? err.message : String(err);
      if (!this.#stop.signal.aborted) log.warn({ err: this.#lastError, revision: cache.revision }, 'route feed lost; serving from cache');
    } finally {
      // We were in sync up to the moment the feed went away.
      if (this.#connected) cache.markSynced(this.#now());
      this.#connected = false;
      this.#stream = undefined;
    }
    return got;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
