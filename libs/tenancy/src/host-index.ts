/**
 * Host numbers kept sorted by (free memory, host number), so a placement finds the best-fitting
 * host with a binary search instead of scanning the fleet. Memory orders the index because it is
 * the resource PostgreSQL instances run out of first and the one never over-committed.
 * Moves are memmoves inside one Int32Array: cheap for fleets of thousands of hosts.
 */
import { PgsError } from './errors.js';

/** A sorted view over some hosts of a fleet, by free memory. */
export class HostIndex {
  private readonly order: Int32Array;
  private length = 0;

  /** `freeMemory` is shared with the fleet state and read at every comparison. */
  constructor(
    private readonly freeMemory: Float64Array,
    members: readonly number[],
  ) {
    this.order = new Int32Array(members.length);
    const sorted = [...members].sort((a, b) => this.compare(a, freeMemory[a] as number, b));
    this.order.set(sorted);
    this.length = sorted.length;
  }

  /** Number of hosts in the index. */
  get size(): number {
    return this.length;
  }

  /** The host at sorted position i. */
  at(i: number): number {
    return this.order[i] as number;
  }

  /** Orders host a (with free memory `memA`) against host b by its current free memory. */
  private compare(a: number, memA: number, b: number): number {
    const memB = this.freeMemory[b] as number;
    return memA !== memB ? memA - memB : a - b;
  }

  /** First position whose host sorts at or after (memory, host). */
  lowerBound(memory: number, host: number): number {
    let low = 0;
    let high = this.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.before(mid, memory, host)) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** True when the host at position `pos` sorts strictly before (memory, host). */
  private before(pos: number, memory: number, host: number): boolean {
    const h = this.order[pos] as number;
    const m = this.freeMemory[h] as number;
    return m < memory || (m === memory && h < host);
  }

  /**
   * Re-sorts `host` after its free memory changed from `previousMemory` (the fleet state has
   * already written the new value into the shared array).
   */
  update(host: number, previousMemory: number): void {
    const from = this.findPosition(host, previousMemory);
    const memory = this.freeMemory[host] as number;
    // Remove, then insert at the new place; only the hosts in between shift by one.
    this.order.copyWithin(from, from + 1, this.length);
    this.length--;
    const to = this.lowerBound(memory, host);
    this.order.copyWithin(to + 1, to, this.length);
    this.order[to] = host;
    this.length++;
  }

  /** Position of `host`, found by its memory as the index last sorted it. */
  private findPosition(host: number, memory: number): number {
    let low = 0;
    let high = this.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const h = this.order[mid] as number;
      // Every other host still sorts by its current memory, which is what it was sorted by.
      const m = h === host ? memory : (this.freeMemory[h] as number);
      if (m < memory || (m === memory && h < host)) low = mid + 1;
      else high = mid;
    }
    if (low >= this.length || this.order[low] !== host) throw new PgsError('INTERNAL', `host ${host} is not in this index`);
    return low;
  }
}
