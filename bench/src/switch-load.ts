// Clients that keep a tenant busy through a switch, through the router: a writer (one autocommit
// insert at a time into acked), a reader (a count of a small range) and a prober that opens a new
// connection per query; every statement's latency and every error is kept. Used by the move and
// upgrade benchmarks.
import pg from 'pg';
import type { BenchRouter } from './fleet-launcher.js';

/** One statement that succeeded. */
export interface Sample {
  /** Epoch ms the statement ended. */
  at: number;
  ms: number;
}

/** Clients through the router: writer, reader, prober; every statement's latency kept. */
export class Load {
  readonly samples: Sample[] = [];
  readonly acked: number[] = [];
  readonly errors = new Map<string, number>();
  connects = 0;
  failedConnects = 0;
  private stopped = false;
  private running: Promise<void>[] = [];
  private next = 0;

  constructor(
    private readonly router: BenchRouter,
    private readonly id: string,
    private readonly password: string,
  ) {}

  start(): void {
    this.running = [
      this.persistent(async (c) => {
        const id = this.next++;
        await c.query('insert into acked (id) values ($1)', [id]);
        this.acked.push(id);
      }),
      this.persistent(async (c) => void (await c.query('select count(*) from acked where id < 100'))),
      this.prober(),
    ];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  private client(): pg.Client {
    const c = new pg.Client({
      host: this.router.host,
      port: this.router.port,
      user: this.id,
      database: this.id,
      password: this.password,
      connectionTimeoutMillis: 20_000,
    });
    c.on('error', () => undefined);
    return c;
  }

  private note(err: unknown): void {
    const code = (err as { code?: string }).code ?? 'no sqlstate';
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  private async persistent(statement: (c: pg.Client) => Promise<void>): Promise<void> {
    while (!this.stopped) {
      const c = this.client();
      this.connects++;
      try {
        try {
          await c.connect();
        } catch (err) {
          this.failedConnects++;
          throw err;
        }
        while (!this.stopped) {
          const t0 = performance.now();
          await statement(c);
          this.samples.push({ at: Date.now(), ms: performance.now() - t0 });
        }
      } catch (err) {
        this.note(err);
        await new Promise((r) => setTimeout(r, 20));
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  }

  private async prober(): Promise<void> {
    while (!this.stopped) {
      const c = this.client();
      this.connects++;
      const t0 = performance.now();
      try {
        await c.connect();
        await c.query('select 1');
        this.samples.push({ at: Date.now(), ms: performance.now() - t0 });
      } catch (err) {
        this.failedConnects++;
        this.note(err);
      } finally {
        await c.end().catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** The tenant's owner through the router. */
export async function ownerClient(router: BenchRouter, id: string, password: string): Promise<pg.Client> {
  const c = new pg.Client({ host: router.host, port: router.port, user: id, database: id, password });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}
