// Carrying a session-mode client to its tenant's new primary (carried-session.ts asks): wait out
// the switch (route SWITCHING, held as every switch is, route-hold.ts), and when the route then
// names another instance, close the old server, take one on the new primary from the pool and run
// the session's replayable state there (its SETs, its SQL PREPAREs, its named statements) before the
// client's next message. A session that cannot be carried (temporary tables, LISTEN, advisory locks,
// WITH HOLD cursors, a PREPARE in a transaction or beside other statements, a SET the router cannot
// replay) ends with 57P01 and a message that says the
// tenant moved and to reconnect. A server that went away while the tenant stays where it was is
// not a move: the client gets that server's own last word (or 08006), as PostgreSQL tells it.
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeErrorResponse, encodeQuery, PgError, SqlState } from '@pgs/wire-protocol';
import type { Acquired } from './session-pool.js';
import type { BackendSession } from './backend-login.js';
import { readUntilReady } from './backend-reader.js';
import type { CarryCause, CarryOutcome, SessionCarrier } from './carried-session.js';
import { RouterRefusal, refuse } from './refusal.js';
import { holdUntilServed, isHeld } from './route-hold.js';
import type { RouteEntry } from './route.js';
import { checkRoutable } from './routing.js';
import type { Blocker, SessionReplay, SessionState } from './session-state.js';

/** What carrying one client needs. */
export interface CarrierDeps {
  tenantId: string;
  lookup(tenantId: string): RouteEntry | undefined;
  /** How long a client is held while its tenant switches. */
  holdTimeoutMs: number;
  /** After its server went away, how long to wait for the route to say the tenant is switching or moved. */
  routeChangeWaitMs: number;
  /** Time to replay the session's state on the new server. */
  replayTimeoutMs: number;
  /** A server connection for the client where its tenant is now (the pool's acquire; may throw a refusal). */
  acquire(): Promise<Acquired>;
  /** A server connection the client leaves behind, closed (never lent again). */
  discard(backend: BackendSession): void;
  /** The client's cancel key now stands for `backend`. */
  retarget(backend: BackendSession): void;
  /** True once the client is gone (a hold ends). */
  clientGone(): boolean;
  /** Counts how carries end. */
  counted?(result: 'carried' | 'not_carried' | 'failed'): void;
}

/** How often the route is looked at while waiting for it to change. */
const POLL_MS = 20;
const SYNC = Buffer.from([0x53, 0, 0, 0, 4]);

/** True when `now` names another instance than the one `backend` was reached by. */
function movedFrom(backend: BackendSession, now: RouteEntry): boolean {
  const was = backend.route;
  return now.address !== was.address || now.port !== was.port || now.hostId !== was.hostId;
}

const BLOCKER_TEXT: Record<Blocker, string> = {
  temp_table: 'temporary tables',
  listen: 'LISTEN',
  advisory_lock: 'advisory locks',
  hold_cursor: 'WITH HOLD cursors',
  prepare: 'prepared statements made with PREPARE inside a transaction or beside other statements',
  set: 'settings the router cannot replay (SET inside a transaction or beside other statements, set_config)',
  unreadable: 'messages the router could not read',
};

function quoted(id: string): string {
  return `"${id.slice(0, 63)}"`;
}

/** The session holds state the new primary cannot be given: it ends, the client reconnects. */
export function notCarried(tenantId: string, blockers: readonly Blocker[]): PgError {
  return new PgError({
    code: SqlState.AdminShutdown,
    message: `terminating connection because tenant ${quoted(tenantId)} moved to another instance`,
    detail: `This session holds state that cannot be carried to the new instance: ${blockers.map((b) => BLOCKER_TEXT[b]).join(', ')}.`,
    hint: 'Reconnect: a new session starts on the new instance.',
  });
}

/** The session's settings or statements could not be made again on the new primary. */
export function replayFailed(tenantId: string): PgError {
  return new PgError({
    code: SqlState.AdminShutdown,
    message: `terminating connection because tenant ${quoted(tenantId)} moved to another instance`,
    detail: "The session's settings or prepared statements could not be restored on the new instance.",
    hint: 'Reconnect: a new session starts on the new instance.',
  });
}

/** The server went away mid-query or mid-transaction without an ErrorResponse of its own. */
export function connectionLost(tenantId: string): PgError {
  return new PgError({
    code: SqlState.ConnectionFailure,
    message: `the connection to the instance of tenant ${quoted(tenantId)} was lost`,
    detail: 'The server closed the connection in the middle of a query or a transaction; its outcome is unknown.',
    hint: 'Reconnect and check whether the last transaction committed.',
  });
}

/** The bytes that tell a client `err` (a refusal's own reply, a PgError's ErrorResponse). */
function replyOf(err: unknown, tenantId: string): Buffer {
  if (err instanceof RouterRefusal) return err.replyBytes();
  if (err instanceof PgError) return err.toErrorResponse();
  return connectionLost(tenantId).toErrorResponse();
}

/**
 * Runs the session's SETs, then its SQL PREPAREs (one Query each, in order), and its named Parses
 * (then a Sync) on a new server. True when every one of them succeeded and the session is idle.
 */
export async function replaySession(backend: BackendSession, replay: SessionReplay, timeoutMs: number): Promise<boolean> {
  const queries = [...replay.sets, ...replay.prepares];
  const messages = queries.map((sql) => encodeQuery(sql));
  if (replay.parses.length > 0) messages.push(...replay.parses, SYNC);
  if (messages.length === 0) return true;
  const answers = queries.length + (replay.parses.length > 0 ? 1 : 0);
  const deadline = Date.now() + timeoutMs;
  let failed = false;
  try {
    backend.socket.write(Buffer.concat(messages));
    for (let i = 0; i < answers; i++) {
      const { status, leftover } = await readUntilReady(
        backend.socket,
        (f) => {
          if (f.type === 0x45 /* ErrorResponse */) failed = true;
        },
        Math.max(1, deadline - Date.now()),
      );
      if (leftover.length > 0) backend.socket.unshift(leftover);
      if (failed || status !== 'I') return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** The carrier of one session-mode client. */
export function sessionCarrier(d: CarrierDeps): SessionCarrier {
  return new Carrier(d);
}

/** One object per session-mode client, its steps on the prototype (no closures made per login). */
class Carrier implements SessionCarrier {
  readonly #d: CarrierDeps;

  constructor(d: CarrierDeps) {
    this.#d = d;
  }

  #end(reply: Buffer | undefined, result: 'not_carried' | 'failed'): CarryOutcome {
    this.#d.counted?.(result);
    return { kind: 'end', reply };
  }

  /** After its server went away: the route once it says switching or moved, or as it is at the deadline. */
  async #routeAfterLoss(old: BackendSession): Promise<RouteEntry | undefined> {
    const d = this.#d;
    const deadline = Date.now() + d.routeChangeWaitMs;
    for (;;) {
      const now = d.lookup(d.tenantId);
      if (!now || isHeld(now) || movedFrom(old, now) || Date.now() >= deadline || d.clientGone()) return now;
      await sleep(POLL_MS);
    }
  }

  moving(backend: BackendSession): boolean {
    const now = this.#d.lookup(this.#d.tenantId);
    return now === undefined || isHeld(now) || movedFrom(backend, now);
  }

  lost(): Buffer {
    return connectionLost(this.#d.tenantId).toErrorResponse();
  }

  async carry(old: BackendSession, state: SessionState, cause: CarryCause, lastWord: Buffer | undefined): Promise<CarryOutcome> {
    const d = this.#d;
    let now = cause === 'server_gone' ? await this.#routeAfterLoss(old) : d.lookup(d.tenantId);
    try {
      if (now && isHeld(now)) now = await holdUntilServed(now, { lookup: (id) => d.lookup(id), timeoutMs: d.holdTimeoutMs, abandoned: () => d.clientGone() });
    } catch (err) {
      d.discard(old);
      return this.#end(replyOf(err, d.tenantId), 'failed');
    }
    if (d.clientGone()) {
      d.discard(old);
      return { kind: 'end', reply: undefined };
    }
    if (!now) {
      d.discard(old);
      return this.#end(refuse.unknownTenant(d.tenantId, false).replyBytes(), 'failed');
    }
    if (!movedFrom(old, now)) {
      // Not a move (a switch that was called off, a server ended on its own).
      if (cause === 'switch' && !old.socket.destroyed) return { kind: 'stay' };
      d.discard(old);
      return this.#end(lastWord ?? connectionLost(d.tenantId).toErrorResponse(), 'failed');
    }
    d.discard(old);
    const blockers = state.blockers;
    if (blockers.length > 0) return this.#end(notCarried(d.tenantId, blockers).toErrorResponse(), 'not_carried');
    let got: Acquired;
    try {
      checkRoutable(now);
      got = await d.acquire();
    } catch (err) {
      return this.#end(replyOf(err, d.tenantId), 'failed');
    }
    if (got.kind === 'server_error') return this.#end(encodeErrorResponse(got.fields), 'failed');
    if (!(await replaySession(got.backend, state.replay(), d.replayTimeoutMs))) {
      d.discard(got.backend);
      return this.#end(replayFailed(d.tenantId).toErrorResponse(), 'failed');
    }
    d.retarget(got.backend);
    d.counted?.('carried');
    return { kind: 'carried', backend: got.backend };
  }
}
