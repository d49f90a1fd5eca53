/**
 * Light query loops of a density run's active tenants: one client each through a router, a
 * query every `periodMs`, each answer's latency recorded with when it was sent, so a run can
 * read the loops' latency over any window (before the wakes, during them). A failed query is
 * counted and the client reconnects; the loops stop when asked and close their clients.
 */
import pg from 'pg';
import type { BenchRouter } from './fleet-launcher.js';
import { BENCH_PASSWORD } from './fleet-tenants.js';

/** One answered query: sent at (epoch ms), latency (ms). */
export interface LoopSample {
  at: number;
  ms: number;
}

/** Running loops. */
export interface QueryLoops {
  samples: LoopSample[];
  /** Queries that failed (the client then reconnects). */
  readonly errors: number;
  /** Latencies of the queries sent in [from, to) (epoch ms). */
  between(from: number, to: number): number[];
  stop(): Promise<void>;
}

/** Starts a loop per tenant of `ids` through `router`: connect, then `sql` every `periodMs` until stopped. */
export function startQueryLoops(router: BenchRouter, ids: readonly string[], periodMs: number, sql = 'select count(*) from pg_class'): QueryLoops {
  const samples: LoopSample[] = [];
  let errors = 0;
  let running = true;
  // Pauses in progress, cut short by stop().
  const pauses = new Set<() => void>();
  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        pauses.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      pauses.add(done);
    });
  const loop = async (id: string): Promise<void> => {
    while (running) {
      const client = new pg.Client({ host: router.host, port: router.port, user: id, database: id, password: BENCH_PASSWORD, connectionTimeoutMillis: 30_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        while (running) {
          const at = Date.now();
          const t0 = performance.now();
          await client.query(sql);
          samples.push({ at, ms: performance.now() - t0 });
          await pause(periodMs);
        }
      } catch {
        errors++;
        if (running) await pause(periodMs);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  };
  const all = ids.map((id) => loop(id));
  return {
    samples,
    get errors() {
      return errors;
    },
    between: (from, to) => samples.filter((s) => s.at >= from && s.at < to).map((s) => s.ms),
    stop: async () => {
      running = false;
      for (const done of [...pauses]) done();
      await Promise.all(all);
    },
  };
}
