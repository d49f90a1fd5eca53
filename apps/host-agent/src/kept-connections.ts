/**
 * One kept superuser connection per running instance, for the agent's periodic looks (health,
 * archive status, a replica's walreceiver). Opening a connection forks a PostgreSQL backend that
 * builds its caches and exits again: measured on this project's machines at 30-47 ms of CPU each,
 * against ~2 ms for the health statement on a connection kept open. With a look every two seconds
 * per instance, a connection per look was most of what fifty idle instances cost a host.
 *
 * A kept connection always belongs to the server that runs now: when that server stops or restarts,
 * its backend ends with it, the next query fails, and the connection is dropped and opened again at
 * the next look. Queries from several looks on one connection wait for each other (pg queues them).
 * The backend is excluded from the instance's own counts by pg_backend_pid() in the statements.
 */
import type pg from 'pg';
import type { Logger } from '@pgs/service-kit';
import { AgentError } from './errors.js';
import type { InstanceAdmin } from './instance-admin.js';

/** A look that has no answer by then is given up and its connection dropped (a stopped or frozen server never answers). */
const LOOK_TIMEOUT_MS = 5000;

/** Kept connections, one per tenant instance. */
export class KeptConnections {
  private readonly clients = new Map<string, Promise<pg.Client>>();
  private closed = false;

  constructor(
    private readonly admin: Pick<InstanceAdmin, 'open'>,
    private readonly log: Logger,
    private readonly lookTimeoutMs = LOOK_TIMEOUT_MS,
  ) {}

  /**
   * Runs `fn` on the tenant's kept connection, opening it first if there is none. A failure drops
   * the connection, so the next call starts on a fresh one. A kept connection can have died since
   * its last use (its backend was ended, the server restarted): `fn` then runs once more on a
   * fresh connection before the failure counts, unless it went unanswered for lookTimeoutMs (a
   * server that does not answer on a connection it has would not on a new one either). `fn` must be
   * safe to run twice (the looks only read).
   *
   * `keep: false` runs `fn` on a connection of its own, closed after it, and lets a kept one go:
   * for an instance whose looks are rare or cheap enough that a backend held for it (3.5-4 MiB of
   * memory) costs more than a fork per look.
   */
  async use<T>(tenantId: string, fn: (client: pg.Client) => Promise<T>, keep = true): Promise<T> {
    if (this.closed || !keep) {
      this.forget(tenantId);
      return this.once(tenantId, fn);
    }
    const kept = this.clients.get(tenantId);
    if (kept) {
      try {
        return await this.run(tenantId, kept, fn);
      } catch (err) {
        // Dropped by run(); a fresh connection (or one another look opened meanwhile) says whether the instance answers.
        if (err instanceof AgentError && err.code === 'LOOK_TIMEOUT') throw err;
      }
    }
    return this.run(tenantId, this.current(tenantId), fn);
  }

  /** The tenant's kept connection, opened now if there is none. */
  private current(tenantId: string): Promise<pg.Client> {
    const kept = this.clients.get(tenantId);
    if (kept) return kept;
    const opening = this.admin.open(tenantId);
    this.clients.set(tenantId, opening);
    // A failed connect is dropped here; the caller sees its error from run().
    opening.catch(() => this.drop(tenantId, opening));
    return opening;
  }

  /** Closes the tenant's kept connection (its instance stopped or went away). */
  forget(tenantId: string): void {
    const opened = this.clients.get(tenantId);
    if (opened) this.drop(tenantId, opened);
  }

  /** Closes every kept connection; later calls each open and close their own. */
  close(): void {
    this.closed = true;
    for (const tenantId of [...this.clients.keys()]) this.forget(tenantId);
  }

  private async once<T>(tenantId: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await this.admin.open(tenantId);
    try {
      return await this.answered(tenantId, fn(client));
    } finally {
      client.end().catch((err: unknown) => this.log.debug({ tenantId, err }, 'closing a connection'));
    }
  }

  private async run<T>(tenantId: string, opened: Promise<pg.Client>, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await opened;
    try {
      return await this.answered(tenantId, fn(client));
    } catch (err) {
      this.drop(tenantId, opened);
      throw err;
    }
  }

  /** `look`, or LOOK_TIMEOUT once it has gone unanswered for lookTimeoutMs. */
  private async answered<T>(tenantId: string, look: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const unanswered = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AgentError('LOOK_TIMEOUT', `the instance of ${tenantId} did not answer within ${this.lookTimeoutMs} ms`)),
        this.lookTimeoutMs,
      );
    });
    try {
      return await Promise.race([look, unanswered]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops `opened` if it is still the tenant's connection (a newer one is left alone). */
  private drop(tenantId: string, opened: Promise<pg.Client>): void {
    if (this.clients.get(tenantId) === opened) this.clients.delete(tenantId);
    opened.then(
      (client) => client.end().catch((err: unknown) => this.log.debug({ tenantId, err }, 'closing a kept connection')),
      () => undefined,
    );
  }
}
