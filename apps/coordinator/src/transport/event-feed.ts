/** Live event subscribers for WatchEvents: every committed event, filtered per watcher. */
import type { EventRecord } from '../domain/model.js';
import type { Store } from '../store/contract.js';
import { commitsOf, type FeedSource } from './feed-source.js';

/** A filter of a watcher. */
export interface EventWatchFilter {
  tenantId: string;
  hostId: string;
}

/** Fans committed events out to watchers. */
export class EventFeed {
  private readonly watchers = new Set<(e: EventRecord) => void>();
  private readonly stopping = new AbortController();
  /** Aborted when the coordinator stops: watch loops end so their calls finish at once. */
  readonly closed: AbortSignal = this.stopping.signal;

  private readonly unsubscribe: () => void;

  /** `source`: where committed events come from (a follower: what it reads back from the shared store). */
  constructor(store: Store, source: FeedSource = commitsOf(store)) {
    this.unsubscribe = source((summary) => {
      for (const e of summary.events) for (const w of this.watchers) w(e);
    });
  }

  /** Ends every watch loop (they follow `closed`). */
  close(): void {
    this.unsubscribe();
    this.stopping.abort();
  }

  /** Number of watchers. */
  get size(): number {
    return this.watchers.size;
  }

  /** Calls `fn` for every event matching `filter` until the returned function is called. */
  watch(filter: EventWatchFilter, fn: (e: EventRecord) => void): () => void {
    const w = (e: EventRecord): void => {
      if (filter.tenantId && e.tenantId !== filter.tenantId) return;
      if (filter.hostId && e.hostId !== filter.hostId) return;
      fn(e);
    };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }
}
