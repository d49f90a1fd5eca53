/**
 * The agent's lease from the coordinator (coordinator README, "the lease rule the agent must
 * honour"). It runs from when the agent SENT the message the coordinator answered (the Hello for a
 * Welcome, a heartbeat for a LeaseRenewal), never from when the answer arrived, so the agent's
 * deadline is never later than the one the coordinator computes. When it runs out, the instances
 * that must not outlive it (primaries with replicas) are fenced by the listener at once.
 *
 * The deadline is also kept in a small file, so an agent restarted within a lease knows when the
 * previous one ends: the file is written at most once a second and always holds a deadline no later
 * than the real one (it only ever moves forward), so a restarted agent fences early, never late.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '@pgs/service-kit';
import { leaseExpired, renewedLeaseDeadline } from '@pgs/tenancy';

/** What the lease needs. */
export interface LeaseOptions {
  /** Where the deadline is kept across agent restarts (undefined: memory only). */
  file: string | undefined;
  log: Logger;
  clock?: () => number;
}

/** How far the persisted deadline may lag behind the real one before it is written again. */
const PERSIST_STEP_MS = 1000;

/** The lease. */
export class Lease {
  private expiresAt: number;
  private persistedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly clock: () => number;
  private readonly listeners: Array<() => void> = [];
  private expiredFired: boolean;

  constructor(private readonly o: LeaseOptions) {
    this.clock = o.clock ?? Date.now;
    this.expiresAt = this.load();
    this.persistedAt = this.expiresAt;
    this.expiredFired = false;
  }

  /** Epoch ms at which the lease runs out (0: never held). */
  get deadline(): number {
    return this.expiresAt;
  }

  /** True while the lease holds. */
  valid(): boolean {
    return !leaseExpired(this.expiresAt, this.clock());
  }

  /** Calls `listener` every time the lease runs out. */
  onExpire(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Starts watching the deadline (call once the listeners are in place). */
  start(): void {
    this.arm();
  }

  /** The coordinator answered a message sent at `sentAt` (agent clock): the lease now runs until sentAt + leaseMs. */
  renew(sentAt: number, leaseMs: number): void {
    const next = renewedLeaseDeadline(this.expiresAt, sentAt, leaseMs);
    if (next <= this.expiresAt) return;
    this.expiresAt = next;
    if (this.clock() < next) this.expiredFired = false;
    if (next - this.persistedAt >= PERSIST_STEP_MS) this.persist(next);
    this.arm();
  }

  /** Stops the timer. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    clearTimeout(this.timer);
    const wait = this.expiresAt - this.clock();
    if (wait > 0) {
      this.timer = setTimeout(() => this.arm(), Math.min(wait, 2 ** 31 - 1));
      return;
    }
    this.timer = undefined;
    if (this.expiredFired) return;
    this.expiredFired = true;
    this.o.log.warn({ expiredAt: this.expiresAt }, 'lease from the coordinator expired; fencing primaries that must not outlive it');
    for (const l of this.listeners) l();
  }

  private load(): number {
    if (!this.o.file) return 0;
    try {
      const parsed = JSON.parse(fs.readFileSync(this.o.file, 'utf8')) as { expiresAt?: unknown };
      return typeof parsed.expiresAt === 'number' && Number.isFinite(parsed.expiresAt) ? parsed.expiresAt : 0;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.o.log.warn({ err, file: this.o.file }, 'lease file unreadable; the lease counts as expired');
      return 0;
    }
  }

  private persist(expiresAt: number): void {
    if (!this.o.file) return;
    try {
      const tmp = path.join(path.dirname(this.o.file), `.${path.basename(this.o.file)}.${process.pid}.tmp`);
      fs.writeFileSync(tmp, `${JSON.stringify({ expiresAt })}\n`, { mode: 0o600 });
      fs.renameSync(tmp, this.o.file);
      this.persistedAt = expiresAt;
    } catch (err) {
      // The on-disk deadline stays the older (earlier) one, which is the safe direction.
      this.o.log.warn({ err, file: this.o.file }, 'lease deadline not persisted');
    }
  }
}
