/** What the main thread and its lease thread tell each other (see lease-thread.ts and lease-worker.ts). */
import type { Leadership, LeaseTimings } from '@pgs/tenancy';

/** The lease thread's start-up data. */
export interface LeaseThreadData {
  holder: string;
  address: string;
  /** The store's servers, one URL each (the primary is looked for among them). */
  urls: string[];
  timings: LeaseTimings;
  /** How long the main thread may go without running before the lease is let go. */
  maxStallMs: number;
  /** The shared slots (lease-slots.ts). */
  slots: BigInt64Array;
}

/** Main thread → lease thread. */
export type ToLeaseThread = { type: 'tick'; id: number } | { type: 'stop'; release: boolean };

/** Lease thread → main thread. */
export type FromLeaseThread =
  | { type: 'change'; leadership: Leadership }
  | { type: 'ticked'; id: number }
  | { type: 'stopped' }
  | { type: 'log'; level: 'info' | 'warn'; obj: object; msg: string | undefined };
