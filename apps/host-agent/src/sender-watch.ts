/**
 * Each running replica's walreceiver, looked at every few hundred milliseconds over the replica's
 * kept superuser connection (kept-connections.ts, shared with the health round): when a primary's host dies, its replicas' walreceivers lose
 * their sender at once (the connection closes), and that is one of the independent signals the
 * coordinator confirms a lost host with (libs/tenancy primaryLoss). The health round (every few
 * seconds) is far too slow for it. The transition rule is libs/tenancy
 * nextSenderWatch; this file only looks.
 */
import type { Logger } from '@pgs/service-kit';
import { nextSenderWatch, type SenderWatchState } from '@pgs/tenancy';
import type { KeptConnections } from './kept-connections.js';

/** One replica to look at. */
export interface WatchedReplica {
  tenantId: string;
  /** Its postmaster's pid (a restart starts the watch over). */
  pid: number;
}

/** Watches replicas' walreceivers. */
export class SenderWatch {
  private readonly states = new Map<string, SenderWatchState>();

  constructor(
    private readonly connections: KeptConnections,
    private readonly log: Logger,
    private readonly clock: () => number,
  ) {}

  /** When the replica lost its sender (0: it did not, or it is not watched). */
  lostAt(tenantId: string): number {
    return this.states.get(tenantId)?.lostAt ?? 0;
  }

  /** Looks at every replica once; returns the tenants whose lostAt changed. */
  async look(replicas: readonly WatchedReplica[]): Promise<string[]> {
    const watched = new Set(replicas.map((r) => r.tenantId));
    for (const tenantId of [...this.states.keys()]) if (!watched.has(tenantId)) this.forget(tenantId);
    const changed: string[] = [];
    await Promise.all(
      replicas.map(async (r) => {
        const streaming = await this.streaming(r.tenantId);
        if (streaming === undefined) return;
        const before = this.states.get(r.tenantId);
        const next = nextSenderWatch(before, { pid: r.pid, streaming, now: this.clock() });
        this.states.set(r.tenantId, next);
        if ((before?.lostAt ?? 0) !== next.lostAt) changed.push(r.tenantId);
      }),
    );
    return changed;
  }

  /** Stops watching a tenant's instance (no longer a running replica); its connection stays for the health round. */
  forget(tenantId: string): void {
    this.states.delete(tenantId);
  }

  /** Whether the walreceiver streams now; undefined when the replica cannot be asked (it says nothing then). */
  private async streaming(tenantId: string): Promise<boolean | undefined> {
    try {
      const r = await this.connections.use(tenantId, (client) => client.query<{ status: string }>('select status from pg_stat_wal_receiver'));
      return r.rows[0]?.status === 'streaming';
    } catch (err) {
      this.log.debug({ tenantId, err }, 'walreceiver not readable; reconnecting on the next look');
      return undefined;
    }
  }
}
