/**
 * What one router's route-feed stream has not been sent yet, bounded by the bytes it holds. A
 * router that stops reading (a stalled process, a slow link) would otherwise make the coordinator
 * keep every route change committed since, for as long as it stays connected: bounded by batches
 * alone, 10,000 batches of a few hundred routes each (a group of tenant creates) is gigabytes.
 * Past the bound the queue is dropped at once and the stream ends after what is in flight; the
 * router reconnects from the revision it applied and gets the changes from the store's route
 * history, or a snapshot when it is further behind than the history.
 *
 * Every subscriber's queue holds the same batch objects (one per commit), so what the feed holds
 * in all is the longest queue's, never the sum.
 */

/** One batch's weight in the queue: the feed computes it once per commit. */
export interface Weighed {
  bytes: number;
}

/** A rough size of a route as the feed holds it (an init object with its strings and its users). */
export function routeBytes(r: {
  tenantId: string;
  hostId: string;
  address: string;
  reason: string;
  users: ReadonlyArray<{ name: string; scramVerifier: string }>;
}): number {
  let bytes = 200 + r.tenantId.length + r.hostId.length + r.address.length + r.reason.length;
  for (const u of r.users) bytes += 80 + u.name.length + u.scramVerifier.length;
  return bytes;
}

/** A subscriber's unsent batches, cut off past `maxBytes` or `maxBatches`. */
export class RouteQueue<B extends Weighed> {
  private items: B[] = [];
  private head = 0;
  private held = 0;
  /** Set once the bound was passed: nothing more is queued, and the stream is to end. */
  overflowed = false;

  constructor(
    private readonly maxBytes: number,
    private readonly maxBatches = 10_000,
  ) {}

  /** Bytes queued now (an estimate: see routeBytes). */
  get bytes(): number {
    return this.held;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** Queues `batch`; past the bound drops everything queued and returns false. */
  push(batch: B): boolean {
    if (this.overflowed) return false;
    if (this.length + 1 > this.maxBatches || this.held + batch.bytes > this.maxBytes) {
      this.overflowed = true;
      this.items = [];
      this.head = 0;
      this.held = 0;
      return false;
    }
    this.items.push(batch);
    this.held += batch.bytes;
    return true;
  }

  /** The oldest batch, removed; undefined when empty. */
  shift(): B | undefined {
    if (this.head >= this.items.length) return undefined;
    const batch = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as B;
    this.held -= batch.bytes;
    // Compact now and then: shift() on a long array is linear, and the consumed slots still count.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return batch;
  }
}
