/**
 * The memory a coordinator's main thread and its lease thread share. The lease thread writes what
 * it may act on (the epoch and until when); the main thread reads it synchronously on every write
 * and command, so how long the main thread's own turns take never delays what the lease thread
 * knows, and the main thread writes when it last ran, so the lease thread can tell a busy main
 * thread from a hung one.
 *
 * Times are process-wide monotonic milliseconds (`monotonicMs`): `performance.now()` counts from
 * each thread's own start and would not compare across threads.
 */
import type { Leadership } from '@pgs/tenancy';

const EPOCH = 0;
const ACT_UNTIL_US = 1;
const MAIN_BEAT_US = 2;
const SLOTS = 3;

/** Monotonic milliseconds, the same clock in every thread of the process. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/** The shared slots: allocate in the main thread, pass to the lease thread as workerData. */
export function newLeaseSlots(): BigInt64Array {
  const slots = new BigInt64Array(new SharedArrayBuffer(SLOTS * BigInt64Array.BYTES_PER_ELEMENT));
  Atomics.store(slots, MAIN_BEAT_US, BigInt(Math.round(monotonicMs() * 1000)));
  return slots;
}

/**
 * Publishes a state of the lease loop. A new epoch's deadline is stored before the epoch itself and
 * a follower's epoch (0) first of all, so a reader that sees an epoch sees that epoch's deadline or a
 * later one of the same epoch, never an earlier epoch's.
 */
export function publishLeadership(slots: BigInt64Array, l: Leadership): void {
  if (l.role !== 'leader') {
    Atomics.store(slots, EPOCH, 0n);
    return;
  }
  const epoch = BigInt(l.epoch);
  if (Atomics.load(slots, EPOCH) !== epoch) Atomics.store(slots, EPOCH, 0n);
  Atomics.store(slots, ACT_UNTIL_US, BigInt(Math.floor(l.actUntil * 1000)));
  Atomics.store(slots, EPOCH, epoch);
}

/** The epoch this process may act on at `now` (monotonic ms), or undefined. */
export function readLeadership(slots: BigInt64Array, now: number): { epoch: number; actUntil: number } | undefined {
  for (;;) {
    const epoch = Atomics.load(slots, EPOCH);
    if (epoch === 0n) return undefined;
    const actUntil = Number(Atomics.load(slots, ACT_UNTIL_US)) / 1000;
    if (Atomics.load(slots, EPOCH) !== epoch) continue; // changed hands while read: read again
    return now < actUntil ? { epoch: Number(epoch), actUntil } : undefined;
  }
}

/** The main thread says it ran just now. */
export function beat(slots: BigInt64Array): void {
  Atomics.store(slots, MAIN_BEAT_US, BigInt(Math.round(monotonicMs() * 1000)));
}

/** How long ago (ms) the main thread last said it ran. */
export function sinceBeat(slots: BigInt64Array, now: number): number {
  return now - Number(Atomics.load(slots, MAIN_BEAT_US)) / 1000;
}
