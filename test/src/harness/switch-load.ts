import pg from 'pg';
import { connect, type Endpoint, type Login } from './pg-clients.js';

/** One client's view of a switch: what it got acknowledged, what failed, and how long each statement took. */
export interface LoadStats {
  /** Acknowledged writes (ids), in order. */
  acked: number[];
  failures: Array<{ at: number; code: string; message: string; client: string }>;
  /** [epoch ms at the end, latency ms] of every statement that succeeded. */
  latencies: Array<[number, number]>;
  /** New connections opened and how many failed. */
  connects: number;
  connectFailures: number;
}

/**
 * Clients that keep a tenant busy through a switch, each on its own persistent connection: a
 * writer (one autocommit insert of consecutive ids at a time), a reader (a count), and a prober
 * that opens a new connection for every query. Any error is recorded and the client reconnects;
 * only acknowledged inserts count as written.
 */
export class SwitchLoad {
  readonly stats: LoadStats = { acked: [], failures: [], latencies: [], connects: 0, connectFailures: 0 };
  private stopped = false;
  private running: Promise<void>[] = [];
  private nextId = 0;

  constructor(
    private readonly at: Endpoint,
    private readonly login: Login,
    private readonly table: string,
  ) {}

  start(): void {
    this.running = [
      this.persistent('writer', (c) => this.write(c)),
      this.persistent('reader', (c) => c.query(`select count(*) from ${this.table}`).then(() => undefined)),
      this.prober(),
    ];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  /** Longest statement latency (ms) that ended at or after `from`. */
  longestPause(from = 0): number {
    return Math.max(0, ...this.stats.latencies.filter(([at]) => at >= from).map(([, ms]) => ms));
  }

  private async write(c: pg.Client): Promise<void> {
    const id = this.nextId++;
    await c.query(`insert into ${this.table} (id) values ($1)`, [id]);
    this.stats.acked.push(id);
  }

  private async persistent(name: string, statement: (c: pg.Client) => Promise<void>): Promise<void> {
    while (!this.stopped) {
      let client: pg.Client | undefined;
      try {
        this.stats.connects += 1;
        client = await connect(this.at, this.login, 15_000).catch((err: unknown) => {
          this.stats.connectFailures += 1;
          throw err;
        });
        while (!this.stopped) {
          const t0 = performance.now();
          await statement(client);
          this.stats.latencies.push([Date.now(), performance.now() - t0]);
        }
      } catch (err) {
        this.record(name, err);
        await new Promise((r) => setTimeout(r, 20));
      } finally {
        await client?.end().catch(() => undefined);
      }
    }
  }

  /** A new connection per query: a switch must never make one fail. */
  private async prober(): Promise<void> {
    while (!this.stopped) {
      const t0 = performance.now();
      this.stats.connects += 1;
      try {
        const c = await connect(this.at, this.login, 15_000);
        try {
          await c.query('select 1');
          this.stats.latencies.push([Date.now(), performance.now() - t0]);
        } finally {
          await c.end().catch(() => undefined);
        }
      } catch (err) {
        this.stats.connectFailures += 1;
        this.record('prober', err);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private record(client: string, err: unknown): void {
    const e = err as { code?: string; message?: string };
    this.stats.failures.push({ at: Date.now(), code: e.code ?? 'NO_SQLSTATE', message: e.message ?? String(err), client });
  }
}
