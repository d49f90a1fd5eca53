import { connect, type Endpoint, type Login } from './pg-clients.js';
import { pause } from './poll.js';

/** One connection attempt that failed: when, at which endpoint, and what the client saw. */
export interface FailedAttempt {
  at: number;
  endpoint: string;
  code: string;
  message: string;
}

/**
 * A client behind a load balancer: each operation is a new connection (round robin over the
 * endpoints) that inserts one row and disconnects; a failed attempt is retried at once on the
 * next endpoint, as a TCP load balancer with health checks (or a driver with several hosts, e.g.
 * libpq's `host=a,b`) would. An operation fails only when every endpoint failed it. Only
 * acknowledged inserts count as written.
 */
export class BalancedClient {
  readonly acked: number[] = [];
  /** Attempts that failed (each was retried on the next endpoint). */
  readonly failedAttempts: FailedAttempt[] = [];
  /** Operations that failed on every endpoint. */
  readonly failedOps: FailedAttempt[][] = [];
  operations = 0;
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly login: Login,
    private readonly options: { table: string; idBase: number; connectTimeoutMs: number; pauseMs: number },
  ) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async once(at: Endpoint, id: number): Promise<void> {
    const client = await connect(at, this.login, this.options.connectTimeoutMs);
    try {
      await client.query(`insert into ${this.options.table} (id, via) values ($1, $2)`, [id, `${at.host}:${at.port}`]);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async loop(): Promise<void> {
    let seq = 0;
    while (!this.stopped) {
      const id = this.options.idBase + seq;
      const first = seq % this.endpoints.length;
      seq += 1;
      this.operations += 1;
      const failures: FailedAttempt[] = [];
      for (let k = 0; k < this.endpoints.length; k++) {
        const at = this.endpoints[(first + k) % this.endpoints.length] as Endpoint;
        try {
          await this.once(at, id);
          this.acked.push(id);
          break;
        } catch (err) {
          const e = err as Error & { code?: string };
          // A retry that finds its id taken: the earlier attempt committed but its answer was lost.
          if (k > 0 && e.code === '23505') {
            this.acked.push(id);
            break;
          }
          const failed = { at: Date.now(), endpoint: `${at.host}:${at.port}`, code: e.code ?? 'NO_SQLSTATE', message: e.message };
          failures.push(failed);
          this.failedAttempts.push(failed);
        }
      }
      if (failures.length === this.endpoints.length) this.failedOps.push(failures);
      await pause(this.options.pauseMs);
    }
  }
}
