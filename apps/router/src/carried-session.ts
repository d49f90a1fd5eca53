// Pool mode session: a client linked to a lent server connection for its whole session, which
// goes with it to the tenant's new primary when the tenant switches instances (a move, a
// switchover). Bytes pass both ways as in session-link.ts (a 'data' handler, pause on
// backpressure, the client's Terminate cut out), with message boundaries followed both ways and
// the session's state read from them (session-state.ts). When the client starts a query between
// transactions while its tenant is switching or has moved, or its server goes away while the
// client sits between transactions, the carrier (session-carry.ts) waits out the switch and hands
// over a server on the new primary with the session's state replayed; the client's bytes wait
// meanwhile. What cannot be carried ends with the carrier's ErrorResponse, never a bare close.
import type net from 'node:net';
import { MessageSplitter, PgError, SqlState } from '@pgs/wire-protocol';
import type { BackendSession } from './backend-login.js';
import { SessionState } from './session-state.js';

/** Why a carry was asked for. */
export type CarryCause = 'switch' | 'server_gone';

/** How a carry ended. */
export type CarryOutcome =
  /** The client goes on with `backend` (the old server is the carrier's now). */
  | { kind: 'carried'; backend: BackendSession }
  /** The tenant did not move: the client goes on with the server it had. */
  | { kind: 'stay' }
  /** The client's session ends with `reply` (the old server is the carrier's now). */
  | { kind: 'end'; reply: Buffer | undefined };

/** What the link needs to carry a client to the tenant's new primary. */
export interface SessionCarrier {
  /** True when the client's next query must not go to `backend`: its tenant is switching or has moved. */
  moving(backend: BackendSession): boolean;
  /**
   * Waits out the switch and gives the server the client goes on with. `old` is handed over
   * unless the outcome is `stay`; `serverLastWord` is the ErrorResponse the old server sent before
   * going away, if any (the client gets it when the tenant did not move).
   */
  carry(old: BackendSession, state: SessionState, cause: CarryCause, serverLastWord: Buffer | undefined): Promise<CarryOutcome>;
  /** The ErrorResponse of a server that went away mid-query without a word of its own. */
  lost(): Buffer;
}

/** How a carried session ended. */
export interface CarriedEnd {
  closedBy: 'client' | 'server' | 'router';
  /** The server the client held last, to give back; undefined when the carrier has it. */
  backend: BackendSession | undefined;
  /** That server is at a message boundary and open: it may be reset and kept. */
  reusable: boolean;
  /** How many times the client went on on another server. */
  carried: number;
  bytesIn: number;
  bytesOut: number;
}

/** A handle to cut the session (shutdown deadline). */
export interface CarriedSession {
  readonly ended: Promise<CarriedEnd>;
  destroy(): void;
}

/** A table of message type bytes: an index, not a Set's hash lookup, for every message both ways. */
function typeTable(types: Iterable<number>): Uint8Array {
  const table = new Uint8Array(256);
  for (const t of types) table[t] = 1;
  return table;
}

const QUERY = 0x51;
const PARSE = 0x50;
const CLOSE = 0x43;
const TERMINATE = 0x58;
// Sync and FunctionCall: sync points (a Query is one too, counted with its text).
const SYNC_POINTS = typeTable([0x53, 0x46]);
// Bind, Describe, Execute, Flush: wait for a Sync.
const NEEDS_SYNC = typeTable([0x42, 0x44, 0x45, 0x48]);
const PARSE_COMPLETE = 0x31;
const CLOSE_COMPLETE = 0x33;
const ERROR = 0x45;
const READY = 0x5a;
const COLLECTED_REQUESTS = typeTable([QUERY, PARSE, CLOSE]);
const COLLECTED_REPLIES = typeTable([PARSE_COMPLETE, CLOSE_COMPLETE, ERROR, READY]);
const collectRequest = (t: number): boolean => COLLECTED_REQUESTS[t] === 1;
const collectReply = (t: number): boolean => COLLECTED_REPLIES[t] === 1;
const CLOSE_GRACE_MS = 5000;
/** Client bytes queued while the client is carried before the client is no longer read. */
const QUEUE_LIMIT = 64 * 1024;

/** True when `parts` are `chunk` itself, cut in consecutive slices (nothing changed, added or held back). */
function isChunk(parts: Buffer[], chunk: Buffer): boolean {
  let at = chunk.byteOffset;
  for (const p of parts) {
    if (p.buffer !== chunk.buffer || p.byteOffset !== at) return false;
    at += p.length;
  }
  return at === chunk.byteOffset + chunk.length;
}

/**
 * Links `client` to `first` until the client leaves, carrying it to another server when its
 * tenant moves. `early` holds client bytes read before the link (sent first).
 */
export function lendCarriedSession(client: net.Socket, first: BackendSession, early: Buffer, carrier: SessionCarrier): CarriedSession {
  const fromClient = new MessageSplitter(collectRequest);
  let fromServer = new MessageSplitter(collectReply);
  const state = new SessionState();
  let backend: BackendSession | undefined = first;
  let carrying = false;
  /** Set when the session ended while a carry was under way: it settles when the carry ends. */
  let endedDuringCarry: CarriedEnd['closedBy'] | undefined;
  const queued: Buffer[] = [];
  let queuedBytes = 0;
  let clientPaused = false;
  /** The server's ErrorResponse sent while the client was between transactions: a FATAL before it goes. */
  let lastWord: Buffer | undefined;
  /** Type of the last whole message the server sent. */
  let lastServerType = 0;
  let carried = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  let done = false;
  let settle: (end: CarriedEnd) => void = () => undefined;
  const ended = new Promise<CarriedEnd>((resolve) => (settle = resolve));

  /** The client is not read until the held server drains. */
  let blockedOnServer = false;
  const resumeClient = (): void => {
    blockedOnServer = false;
    client.resume();
  };
  const resumeServer = (): void => void backend?.socket.resume();
  /** Between transactions, every request answered, both streams at a message boundary. */
  const between = (): boolean => state.idle && fromClient.atBoundary && fromServer.atBoundary;

  const detachServer = (): BackendSession | undefined => {
    const b = backend;
    if (!b) return undefined;
    b.socket.off('data', onServerData);
    b.socket.off('close', onServerGone);
    b.socket.off('drain', resumeClient);
    client.off('drain', resumeServer);
    b.socket.pause();
    blockedOnServer = false;
    backend = undefined;
    return b;
  };

  const finish = (closedBy: CarriedEnd['closedBy']): void => {
    if (done) return;
    done = true;
    client.off('data', onClientData);
    client.off('end', onClientGone);
    client.off('close', onClientGone);
    const b = detachServer();
    if (!client.destroyed) {
      client.end();
      setTimeout(() => client.destroy(), CLOSE_GRACE_MS).unref();
    }
    if (carrying) {
      endedDuringCarry = closedBy;
      return;
    }
    settle({ closedBy, backend: b, reusable: reusable(closedBy, b), carried, bytesIn, bytesOut });
  };

  // Both streams at a boundary: the reset reads the server from a message's start.
  const reusable = (closedBy: CarriedEnd['closedBy'], b: BackendSession | undefined): boolean =>
    closedBy === 'client' && b !== undefined && !b.socket.destroyed && fromClient.atBoundary && fromServer.atBoundary;

  /** A client message the router cannot frame (bad length): FATAL 08P01, as PostgreSQL. */
  const refuseMalformed = (err: unknown): void => {
    const message = err instanceof Error ? err.message : 'invalid message';
    if (!client.destroyed) client.write(new PgError({ code: SqlState.ProtocolViolation, message }).toErrorResponse());
    finish('router');
  };

  /** What a client message does to the session's state. */
  const follow = (type: number, data: Buffer): void => {
    if (type === QUERY) state.query(data);
    else if (type === PARSE) state.parse(data);
    else if (type === CLOSE) state.close(data);
    else if (SYNC_POINTS[type] === 1) state.syncPoint();
    else if (NEEDS_SYNC[type] === 1) state.unsynced();
  };

  /** Client bytes to the held server: state followed, Terminate cut out (the server outlives the client). */
  const forward = (chunk: Buffer): void => {
    const b = backend!;
    let pieces;
    try {
      pieces = fromClient.push(chunk);
    } catch (err) {
      return refuseMalformed(err);
    }
    const out: Buffer[] = [];
    let terminated = false;
    for (const m of pieces) {
      if (m.type === TERMINATE) {
        terminated = true;
        break;
      }
      out.push(m.data);
      if (m.complete) follow(m.type, m.data);
    }
    const bytes = !terminated && isChunk(out, chunk) ? chunk : Buffer.concat(out);
    if (bytes.length > 0 && !b.socket.write(bytes) && !blockedOnServer) {
      blockedOnServer = true;
      client.pause();
      b.socket.once('drain', resumeClient);
    }
    if (terminated) finish('client');
  };

  const onClientData = (chunk: Buffer): void => {
    bytesIn += chunk.length;
    take(chunk);
  };

  const take = (chunk: Buffer): void => {
    if (carrying) return queue(chunk);
    if (between()) {
      // A client that says goodbye between transactions needs no server, old or new.
      if (chunk.length === 5 && chunk[0] === TERMINATE) return finish('client');
      // A new query: not to a server that said goodbye, nor to one the tenant is leaving.
      if (lastWord !== undefined || carrier.moving(backend!)) {
        queue(chunk);
        return startCarry(lastWord !== undefined ? 'server_gone' : 'switch');
      }
    }
    forward(chunk);
  };

  const queue = (chunk: Buffer): void => {
    queued.push(chunk);
    queuedBytes += chunk.length;
    if (queuedBytes >= QUEUE_LIMIT && !clientPaused) {
      clientPaused = true;
      client.pause();
    }
  };

  const onServerData = (chunk: Buffer): void => {
    bytesOut += chunk.length;
    let pieces;
    try {
      pieces = fromServer.push(chunk);
    } catch {
      return finish('server');
    }
    const out: Buffer[] = [];
    let changed = false;
    for (const m of pieces) {
      if (lastWord) {
        // More after it: it was not the server's last word after all.
        out.push(lastWord);
        lastWord = undefined;
        changed = true;
      }
      if (m.complete) lastServerType = m.type;
      if (m.whole) {
        if (m.type === READY) state.ready(String.fromCharCode(m.data[5] ?? 0));
        else if (m.type === PARSE_COMPLETE) state.parseComplete();
        else if (m.type === CLOSE_COMPLETE) state.closeComplete();
        else if (m.type === ERROR) {
          if (state.idle && fromClient.atBoundary) {
            // Nothing asked: a FATAL before the server goes (an administrator's shutdown, a
            // fence). Held until it is known whether the client goes on elsewhere.
            lastWord = Buffer.from(m.data);
            changed = true;
            continue;
          }
          state.error();
        }
      }
      out.push(m.data);
    }
    const bytes = !changed && isChunk(out, chunk) ? chunk : Buffer.concat(out);
    if (bytes.length > 0 && !client.write(bytes)) {
      backend?.socket.pause();
      client.once('drain', resumeServer);
    }
  };

  const onServerGone = (): void => {
    if (done || carrying) return;
    if (between()) return startCarry('server_gone');
    // In the middle of a query or a transaction: the client gets the server's last word, or a
    // clean error in its place, never a bare close.
    const word = lastWord ?? (fromServer.atBoundary && lastServerType !== ERROR ? carrier.lost() : undefined);
    lastWord = undefined;
    if (word && !client.destroyed) client.write(word);
    finish('server');
  };

  const attach = (b: BackendSession): void => {
    backend = b;
    b.socket.on('data', onServerData);
    b.socket.once('close', onServerGone);
    b.socket.resume();
    const waiting = queued.splice(0);
    queuedBytes = 0;
    for (let i = 0; i < waiting.length; i++) {
      if (done) return;
      if (carrying) {
        // Carried again at once (the route moved meanwhile): the rest waits on.
        for (const c of waiting.slice(i)) queue(c);
        return;
      }
      take(waiting[i]!);
    }
    clientPaused = false;
    // Whatever paused the client (the queue limit, the old server's backpressure) is over.
    if (!done && !blockedOnServer) client.resume();
    if (b.socket.destroyed) onServerGone();
  };

  const startCarry = (cause: CarryCause): void => {
    carrying = true;
    const old = detachServer()!;
    const word = lastWord;
    lastWord = undefined;
    carrier.carry(old, state, cause, word).then(
      (r) => {
        carrying = false;
        let next: BackendSession | undefined;
        if (r.kind === 'stay') next = old;
        else if (r.kind === 'carried') {
          next = r.backend;
          carried++;
          state.carried();
          fromServer = new MessageSplitter(collectReply);
          lastServerType = 0;
        }
        if (endedDuringCarry !== undefined) {
          const closedBy = endedDuringCarry;
          return settle({ closedBy, backend: next, reusable: reusable(closedBy, next), carried, bytesIn, bytesOut });
        }
        if (!next) {
          if (r.kind === 'end' && r.reply && !client.destroyed) client.write(r.reply);
          return finish('router');
        }
        attach(next);
      },
      () => {
        // The carrier settles every way it can end; a throw is a bug, ended as a lost server.
        carrying = false;
        if (endedDuringCarry !== undefined) return settle({ closedBy: endedDuringCarry, backend: undefined, reusable: false, carried, bytesIn, bytesOut });
        if (!client.destroyed) client.write(carrier.lost());
        finish('router');
      },
    );
  };

  const onClientGone = (): void => finish('client');

  client.on('data', onClientData);
  client.once('end', onClientGone);
  client.once('close', onClientGone);
  first.socket.on('data', onServerData);
  first.socket.once('close', onServerGone);
  if (early.length > 0) onClientData(early);
  client.resume();
  first.socket.resume();
  if (client.destroyed) finish('client');
  else if (first.socket.destroyed && backend === first && !carrying) onServerGone();

  return {
    ended,
    destroy: () => {
      client.destroy();
      backend?.socket.destroy();
    },
  };
}
