/**
 * Failed connects to tenants' instances, told to the coordinator: a refused connect (nothing
 * listens at the address) is one of the signals that confirm a lost host there (the agent's broken
 * stream being another), so it goes out at once, batched per turn of the event loop. Small and
 * rate-limited: at most one failure per tenant and kind per `minGapMs`, and a report is dropped
 * (not retried) when the coordinator cannot be reached: it is only worth something right away.
 */
import type { Logger } from '@pgs/service-kit';

/** How a connect to an instance failed. */
export type BackendFailureKind = 'refused' | 'timeout';

/** One failed connect. */
export interface BackendFailureNote {
  tenantId: string;
  address: string;
  port: number;
  kind: BackendFailureKind;
  /** Epoch ms (this router's clock). */
  at: number;
}

/** Classifies a connect error: refused, timed out, or neither (TLS, reset: not reported). */
export function failureKind(err: unknown): BackendFailureKind | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ETIMEDOUT' || (err instanceof Error && /timed out after/.test(err.message))) return 'timeout';
  return undefined;
}

/** Collects failures and sends them. */
export class BackendFailureReporter {
  private readonly lastSent = new Map<string, number>();
  private pending: BackendFailureNote[] = [];
  private scheduled = false;

  constructor(
    private readonly o: {
      send: (failures: BackendFailureNote[]) => Promise<void>;
      log: Logger;
      minGapMs?: number;
      clock?: () => number;
    },
  ) {}

  /** Notes one failure; sent with the others of this turn unless one of its kind went out recently. */
  note(f: BackendFailureNote): void {
    const key = `${f.tenantId}\u0000${f.kind}`;
    const now = (this.o.clock ?? Date.now)();
    if (now - (this.lastSent.get(key) ?? -Infinity) < (this.o.minGapMs ?? 1000)) return;
    this.lastSent.set(key, now);
    if (this.lastSent.size > 10_000) this.lastSent.clear();
    this.pending.push(f);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      await this.o.send(batch);
    } catch (err) {
      this.o.log.debug({ err, failures: batch.length }, 'backend failures not reported (the coordinator is unreachable)');
    }
  }
}
