import { connect, type Endpoint, type Login } from './pg-clients.js';

/**
 * A client that inserts consecutive ids into `table` at one endpoint (a router, or an instance
 * directly), one autocommit statement each, reconnecting after any error. Only acknowledged
 * inserts count: an id whose statement failed may or may not have committed.
 */
export class RowWriter {
  readonly acked: number[] = [];
  /** Epoch ms of each acknowledged insert, in order. */
  readonly ackedAt: number[] = [];
  readonly failures: Array<{ at: number; code: string }> = [];
  /** Statements tried, including connection attempts that failed. */
  tries = 0;
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly at: Endpoint,
    private readonly login: Login,
    private readonly options: { table: string; connectTimeoutMs: number },
  ) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** Epoch ms of the first failed write at or after `t`. */
  firstFailureAfter(t: number): number | undefined {
    return this.failures.find((x) => x.at >= t)?.at;
  }

  /**
   * When writes resumed after `t`: the first acknowledgement after the first failure at or after
   * `t` (a commit in flight when the host dies may still be acknowledged just after `t`).
   */
  firstAckAfter(t: number): number | undefined {
    const broke = this.firstFailureAfter(t);
    return broke === undefined ? undefined : this.ackedAt.find((a) => a > broke);
  }

  private async loop(): Promise<void> {
    let next = 0;
    const sql = `insert into ${this.options.table} (id) values ($1)`;
    while (!this.stopped) {
      let client;
      try {
        client = await connect(this.at, this.login, this.options.connectTimeoutMs);
        while (!this.stopped) {
          this.tries += 1;
          await client.query(sql, [next]);
          this.acked.push(next);
          this.ackedAt.push(Date.now());
          next += 1;
        }
      } catch (err) {
        if (client === undefined) this.tries += 1;
        next += 1;
        this.failures.push({ at: Date.now(), code: (err as { code?: string }).code ?? 'NO_SQLSTATE' });
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        await client?.end().catch(() => undefined);
      }
    }
  }
}
