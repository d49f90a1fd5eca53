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
import { isChunk, typeTable } from './message-tables.js';

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

/** Where the shared socket listeners find their session: the client's socket and the held server's name it. */
const LINK = Symbol('carried session');
type LinkedSocket = net.Socket & { [LINK]?: CarriedLink };

// One function each for every session (a session-mode login made ~20 closures before).
function onClientData(this: LinkedSocket, chunk: Buffer): void {
  this[LINK]?.clientData(chunk);
}
function onClientGone(this: LinkedSocket): void {
  this[LINK]?.finish('client');
}
function onClientDrain(this: LinkedSocket): void {
  this[LINK]?.resumeServer();
}
function onServerData(this: LinkedSocket, chunk: Buffer): void {
  this[LINK]?.serverData(chunk);
}
function onServerGone(this: LinkedSocket): void {
  this[LINK]?.serverGone();
}
function onServerDrain(this: LinkedSocket): void {
  this[LINK]?.resumeClient();
}

/**
 * Links `client` to `first` until the client leaves, carrying it to another server when its
 * tenant moves. `early` holds client bytes read before the link (sent first).
 */
export function lendCarriedSession(client: net.Socket, first: BackendSession, early: Buffer, carrier: SessionCarrier): CarriedSession {
  return new CarriedLink(client, first, early, carrier);
}

/** One client's session: its state in fields, its steps as methods. */
class CarriedLink implements CarriedSession {
  readonly ended: Promise<CarriedEnd>;
  readonly #client: LinkedSocket;
  readonly #carrier: SessionCarrier;
  readonly #fromClient = new MessageSplitter(collectRequest);
  #fromServer = new MessageSplitter(collectReply);
  readonly #state = new SessionState();
  #backend: BackendSession | undefined;
  #carrying = false;
  /** Set when the session ended while a carry was under way: it settles when the carry ends. */
  #endedDuringCarry: CarriedEnd['closedBy'] | undefined;
  #queued: Buffer[] = [];
  #queuedBytes = 0;
  #clientPaused = false;
  /** The server's ErrorResponse sent while the client was between transactions: a FATAL before it goes. */
  #lastWord: Buffer | undefined;
  /** Type of the last whole message the server sent. */
  #lastServerType = 0;
  #carried = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #done = false;
  #settle: (end: CarriedEnd) => void = () => undefined;
  /** The client is not read until the held server drains. */
  #blockedOnServer = false;

  constructor(client: net.Socket, first: BackendSession, early: Buffer, carrier: SessionCarrier) {
    this.#client = client as LinkedSocket;
    this.#carrier = carrier;
    this.#backend = first;
    this.ended = new Promise<CarriedEnd>((resolve) => (this.#settle = resolve));
    this.#client[LINK] = this;
    client.on('data', onClientData);
    client.on('end', onClientGone);
    client.on('close', onClientGone);
    this.#listenTo(first);
    if (early.length > 0) this.clientData(early);
    client.resume();
    first.socket.resume();
    if (client.destroyed) this.finish('client');
    else if (first.socket.destroyed && this.#backend === first && !this.#carrying) this.serverGone();
  }

  destroy(): void {
    this.#client.destroy();
    this.#backend?.socket.destroy();
  }

  resumeClient(): void {
    this.#blockedOnServer = false;
    this.#client.resume();
  }

  resumeServer(): void {
    this.#backend?.socket.resume();
  }

  /** Between transactions, every request answered, both streams at a message boundary. */
  #between(): boolean {
    return this.#state.idle && this.#fromClient.atBoundary && this.#fromServer.atBoundary;
  }

  #listenTo(b: BackendSession): void {
    const socket = b.socket as LinkedSocket;
    socket[LINK] = this;
    socket.on('data', onServerData);
    socket.on('close', onServerGone);
  }

  #detachServer(): BackendSession | undefined {
    const b = this.#backend;
    if (!b) return undefined;
    const socket = b.socket as LinkedSocket;
    socket.off('data', onServerData);
    socket.off('close', onServerGone);
    socket.off('drain', onServerDrain);
    this.#client.off('drain', onClientDrain);
    if (socket[LINK] === this) socket[LINK] = undefined;
    socket.pause();
    this.#blockedOnServer = false;
    this.#backend = undefined;
    return b;
  }

  finish(closedBy: CarriedEnd['closedBy']): void {
    if (this.#done) return;
    this.#done = true;
    const client = this.#client;
    client.off('data', onClientData);
    client.off('end', onClientGone);
    client.off('close', onClientGone);
    const b = this.#detachServer();
    if (!client.destroyed) {
      client.end();
      setTimeout(() => client.destroy(), CLOSE_GRACE_MS).unref();
    }
    if (this.#carrying) {
      this.#endedDuringCarry = closedBy;
      return;
    }
    this.#end(closedBy, b);
  }

  #end(closedBy: CarriedEnd['closedBy'], b: BackendSession | undefined): void {
    // The client's socket no longer names the session: nothing of it stays with an ended client.
    if (this.#client[LINK] === this) this.#client[LINK] = undefined;
    this.#settle({ closedBy, backend: b, reusable: this.#reusable(closedBy, b), carried: this.#carried, bytesIn: this.#bytesIn, bytesOut: this.#bytesOut });
  }

  // Both streams at a boundary: the reset reads the server from a message's start.
  #reusable(closedBy: CarriedEnd['closedBy'], b: BackendSession | undefined): boolean {
    return closedBy === 'client' && b !== undefined && !b.socket.destroyed && this.#fromClient.atBoundary && this.#fromServer.atBoundary;
  }

  /** A client message the router cannot frame (bad length): FATAL 08P01, as PostgreSQL. */
  #refuseMalformed(err: unknown): void {
    const message = err instanceof Error ? err.message : 'invalid message';
    if (!this.#client.destroyed) this.#client.write(new PgError({ code: SqlState.ProtocolViolation, message }).toErrorResponse());
    this.finish('router');
  }

  /** What a client message does to the session's state. */
  #follow(type: number, data: Buffer): void {
    const state = this.#state;
    if (type === QUERY) state.query(data);
    else if (type === PARSE) state.parse(data);
    else if (type === CLOSE) state.close(data);
    else if (SYNC_POINTS[type] === 1) state.syncPoint();
    else if (NEEDS_SYNC[type] === 1) state.unsynced();
  }

  /** Client bytes to the held server: state followed, Terminate cut out (the server outlives the client). */
  #forward(chunk: Buffer): void {
    const b = this.#backend!;
    let pieces;
    try {
      pieces = this.#fromClient.push(chunk);
    } catch (err) {
      return this.#refuseMalformed(err);
    }
    const out: Buffer[] = [];
    let terminated = false;
    for (const m of pieces) {
      if (m.type === TERMINATE) {
        terminated = true;
        break;
      }
      out.push(m.data);
      if (m.complete) this.#follow(m.type, m.data);
    }
    const bytes = !terminated && isChunk(out, chunk) ? chunk : Buffer.concat(out);
    if (bytes.length > 0 && !b.socket.write(bytes) && !this.#blockedOnServer) {
      this.#blockedOnServer = true;
      this.#client.pause();
      b.socket.once('drain', onServerDrain);
    }
    if (terminated) this.finish('client');
  }

  clientData(chunk: Buffer): void {
    this.#bytesIn += chunk.length;
    this.#take(chunk);
  }

  #take(chunk: Buffer): void {
    if (this.#carrying) return this.#queue(chunk);
    if (this.#between()) {
      // A client that says goodbye between transactions needs no server, old or new.
      if (chunk.length === 5 && chunk[0] === TERMINATE) return this.finish('client');
      // A new query: not to a server that said goodbye, nor to one the tenant is leaving.
      if (this.#lastWord !== undefined || this.#carrier.moving(this.#backend!)) {
        this.#queue(chunk);
        return this.#startCarry(this.#lastWord !== undefined ? 'server_gone' : 'switch');
      }
    }
    this.#forward(chunk);
  }

  #queue(chunk: Buffer): void {
    this.#queued.push(chunk);
    this.#queuedBytes += chunk.length;
    if (this.#queuedBytes >= QUEUE_LIMIT && !this.#clientPaused) {
      this.#clientPaused = true;
      this.#client.pause();
    }
  }

  serverData(chunk: Buffer): void {
    this.#bytesOut += chunk.length;
    let pieces;
    try {
      pieces = this.#fromServer.push(chunk);
    } catch {
      return this.finish('server');
    }
    const state = this.#state;
    const out: Buffer[] = [];
    let changed = false;
    for (const m of pieces) {
      if (this.#lastWord) {
        // More after it: it was not the server's last word after all.
        out.push(this.#lastWord);
        this.#lastWord = undefined;
        changed = true;
      }
      if (m.complete) this.#lastServerType = m.type;
      if (m.whole) {
        if (m.type === READY) state.ready(String.fromCharCode(m.data[5] ?? 0));
        else if (m.type === PARSE_COMPLETE) state.parseComplete();
        else if (m.type === CLOSE_COMPLETE) state.closeComplete();
        else if (m.type === ERROR) {
          if (state.idle && this.#fromClient.atBoundary) {
            // Nothing asked: a FATAL before the server goes (an administrator's shutdown, a
            // fence). Held until it is known whether the client goes on elsewhere.
            this.#lastWord = Buffer.from(m.data);
            changed = true;
            continue;
          }
          state.error();
        }
      }
      out.push(m.data);
    }
    const bytes = !changed && isChunk(out, chunk) ? chunk : Buffer.concat(out);
    if (bytes.length > 0 && !this.#client.write(bytes)) {
      this.#backend?.socket.pause();
      this.#client.once('drain', onClientDrain);
    }
  }

  serverGone(): void {
    if (this.#done || this.#carrying) return;
    if (this.#between()) return this.#startCarry('server_gone');
    // In the middle of a query or a transaction: the client gets the server's last word, or a
    // clean error in its place, never a bare close.
    const word = this.#lastWord ?? (this.#fromServer.atBoundary && this.#lastServerType !== ERROR ? this.#carrier.lost() : undefined);
    this.#lastWord = undefined;
    if (word && !this.#client.destroyed) this.#client.write(word);
    this.finish('server');
  }

  #attach(b: BackendSession): void {
    this.#backend = b;
    this.#listenTo(b);
    b.socket.resume();
    const waiting = this.#queued.splice(0);
    this.#queuedBytes = 0;
    for (let i = 0; i < waiting.length; i++) {
      if (this.#done) return;
      if (this.#carrying) {
        // Carried again at once (the route moved meanwhile): the rest waits on.
        for (const c of waiting.slice(i)) this.#queue(c);
        return;
      }
      this.#take(waiting[i]!);
    }
    this.#clientPaused = false;
    // Whatever paused the client (the queue limit, the old server's backpressure) is over.
    if (!this.#done && !this.#blockedOnServer) this.#client.resume();
    if (b.socket.destroyed) this.serverGone();
  }

  #startCarry(cause: CarryCause): void {
    this.#carrying = true;
    const old = this.#detachServer()!;
    const word = this.#lastWord;
    this.#lastWord = undefined;
    this.#carrier.carry(old, this.#state, cause, word).then(
      (r) => {
        this.#carrying = false;
        let next: BackendSession | undefined;
        if (r.kind === 'stay') next = old;
        else if (r.kind === 'carried') {
          next = r.backend;
          this.#carried++;
          this.#state.carried();
          this.#fromServer = new MessageSplitter(collectReply);
          this.#lastServerType = 0;
        }
        if (this.#endedDuringCarry !== undefined) return this.#end(this.#endedDuringCarry, next);
        if (!next) {
          if (r.kind === 'end' && r.reply && !this.#client.destroyed) this.#client.write(r.reply);
          return this.finish('router');
        }
        this.#attach(next);
      },
      () => {
        // The carrier settles every way it can end; a throw is a bug, ended as a lost server.
        this.#carrying = false;
        if (this.#endedDuringCarry !== undefined) return this.#end(this.#endedDuringCarry, undefined);
        if (!this.#client.destroyed) this.#client.write(this.#carrier.lost());
        this.finish('router');
      },
    );
  }
}
