// Pool mode `transaction` (README "Pool modes"): a client holds a server connection only from its
// first message after being idle until the server is idle again (ReadyForQuery 'I' with every sync
// point answered), then the connection goes back to the pool and the client's next message takes
// one again, possibly another. Message boundaries are followed in both directions: a client's sync
// points (Query, Sync, FunctionCall) and extended-protocol messages still waiting for a Sync; the
// server's ReadyForQuery and its status. Named statements are carried from server to server
// (statement-rewrite.ts, the injected replies swallowed per response-tracker.ts), and a client
// holding session state keeps its server (session-pins.ts). PostgreSQL docs, "Message Flow"
// §Simple Query, §Extended Query, §COPY Operations.
import type net from 'node:net';
import { MessageSplitter, PgError, SqlState } from '@pgs/wire-protocol';
import type { BackendSession } from './backend-login.js';
import { ResponseTracker } from './response-tracker.js';
import { SessionPins } from './session-pins.js';
import { answerParses, namedParsesThenSync } from './parse-without-server.js';
import { ClientStatements, ServerStatements } from './statement-registry.js';
import { REWRITTEN_TYPES, rewriteClientMessage } from './statement-rewrite.js';
import { isChunk, typeTable } from './message-tables.js';

/** What the link needs from the pool. */
export interface TransactionPool {
  /**
   * A server connection for the client's next transaction, to `done`: in this call when one is
   * idle, else when another client returns one; or the error (a RouterRefusal) when none comes.
   */
  acquire(done: (err: unknown, backend?: BackendSession) => void): void;
  /** As acquire, but undefined at once when every server connection is held by other clients. */
  tryAcquire?(): Promise<BackendSession | undefined>;
  /** The transaction ended cleanly: keep the connection as it is (a waiting client may take it in this call). */
  releaseIdle(backend: BackendSession): void;
  /** The client left (or broke the stream) while holding it: reset or close it. */
  releaseDirty(backend: BackendSession, reusable: boolean): void;
  /** The client became pinned to its server connection (session state) or stopped being so. */
  pinChanged?(pinned: boolean): void;
}

export interface TransactionOptions {
  /** Named statements each server connection keeps prepared (least recently used closed beyond). */
  statementsPerServer: number;
}

/** How a transaction-pooled session ended. */
export interface TransactionEnd {
  closedBy: 'client' | 'server' | 'router';
  transactions: number;
  bytesIn: number;
  bytesOut: number;
  /** Set when taking a server connection failed (sent to the client before closing). */
  error?: unknown;
}

const SYNC_POINTS = typeTable([0x51 /* Q */, 0x53 /* S */, 0x46 /* F */]);
// Extended-protocol messages that wait for a Sync (Parse, Bind, Describe, Execute, Close, Flush).
const NEEDS_SYNC = typeTable([0x50, 0x42, 0x44, 0x45, 0x43, 0x48]);
const TERMINATE = 0x58;
const READY = 0x5a;
const IDLE = 0x49;
const PARSE_COMPLETE = 0x31;
const CLOSE_COMPLETE = 0x33;
const ERROR = 0x45;
// ErrorResponse whole too: one may have to be replaced (response-tracker.ts, `fail` entries).
const TRACKED_REPLIES = typeTable([PARSE_COMPLETE, CLOSE_COMPLETE, ERROR, READY]);
const REWRITTEN = typeTable(REWRITTEN_TYPES);
const collectReply = (t: number): boolean => TRACKED_REPLIES[t] === 1;
const collectRequest = (t: number): boolean => REWRITTEN[t] === 1;
/** The server's messages this link does not look at (rows, completions) pass as one piece per run. */
const MERGED = Object.freeze({ merge: true });
/** The tracker's entry for a client's sync point (read only: one shared object, not one per transaction). */
const CLIENT_SYNC = Object.freeze({ kind: 'sync', injected: false } as const);
const CLOSE_GRACE_MS = 5000;
/** Client bytes queued while waiting for a server before the client is no longer read. */
const QUEUE_LIMIT = 64 * 1024;

/** Told once when a transaction-pooled session ended. */
export interface TransactionEndListener {
  transactionEnded(end: TransactionEnd): void;
}

/** A handle to cut the session (shutdown deadline), and to learn of its end. */
export interface TransactionSession {
  /**
   * `listener` is told when the session ends (at once if it has). A listener object rather than a
   * promise: an idle client may stay for hours, and a promise with its reaction and callbacks was a
   * tenth of what it held.
   */
  whenEnded(listener: TransactionEndListener): void;
  destroy(): void;
}

/** Where a socket's shared listeners find the link it belongs to now (a server socket changes links). */
const LINK = Symbol('transaction link');
type LinkedSocket = net.Socket & { [LINK]?: TransactionLink };

// The sockets' listeners, one function each for every client: the socket (`this`) names its link.
function clientData(this: LinkedSocket, chunk: Buffer): void {
  this[LINK]?.onClientData(chunk);
}
function clientGone(this: LinkedSocket): void {
  this[LINK]?.finish('client');
}
function serverData(this: LinkedSocket, chunk: Buffer): void {
  this[LINK]?.onServerData(chunk);
}
function serverGone(this: LinkedSocket): void {
  this[LINK]?.finish('server');
}

/**
 * Serves `client` in transaction mode until it leaves. `early` holds client bytes read before
 * (sent first). `onRefusal` turns a failed acquire into the bytes to send the client.
 */
export function serveTransactions(
  client: net.Socket,
  early: Buffer,
  pool: TransactionPool,
  onRefusal: (err: unknown) => Buffer | undefined,
  options: TransactionOptions = { statementsPerServer: 100 },
): TransactionSession {
  const link = new TransactionLink(client, pool, onRefusal, options.statementsPerServer);
  link.start(early);
  return link;
}

/**
 * One client's link. Its state is in the fields of one object and its sockets' listeners are
 * shared functions: an idle client may stay for hours, and per-client closures with their contexts
 * were most of what it held. What only a transaction needs (the server's message splitter, the
 * reply tracker, the queue) is made when one first runs.
 */
class TransactionLink implements TransactionSession {
  readonly #client: LinkedSocket;
  readonly #pool: TransactionPool;
  readonly #onRefusal: (err: unknown) => Buffer | undefined;
  readonly #statementsPerServer: number;
  readonly #fromClient = new MessageSplitter(collectRequest);
  #fromServer: MessageSplitter | undefined;
  #tracker: ResponseTracker | undefined;
  readonly #statements = new ClientStatements();
  readonly #pins = new SessionPins();
  #backend: BackendSession | undefined;
  #acquiring = false;
  #clientPaused = false;
  #queued: Buffer[] | undefined;
  #pending = 0;
  #unsynced = 0;
  #transactions = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #done = false;
  #end: TransactionEnd | undefined;
  #endListener: TransactionEndListener | undefined;
  // Made at first use: backpressure and the first acquire.
  #resumeClient: (() => void) | undefined;
  #resumeServer: (() => void) | undefined;
  #onAcquired: ((err: unknown, b?: BackendSession) => void) | undefined;

  constructor(client: net.Socket, pool: TransactionPool, onRefusal: (err: unknown) => Buffer | undefined, statementsPerServer: number) {
    this.#client = client;
    this.#pool = pool;
    this.#onRefusal = onRefusal;
    this.#statementsPerServer = statementsPerServer;
  }

  whenEnded(listener: TransactionEndListener): void {
    if (this.#end) listener.transactionEnded(this.#end);
    else this.#endListener = listener;
  }

  start(early: Buffer): void {
    const client = this.#client;
    client[LINK] = this;
    client.on('data', clientData);
    // `on`, not `once`: finish() runs once and takes them off (a once-wrapper per client costs memory).
    client.on('end', clientGone);
    client.on('close', clientGone);
    if (early.length > 0) this.onClientData(early);
    client.resume();
    if (client.destroyed) this.finish('client');
  }

  destroy(): void {
    this.#client.destroy();
    this.#backend?.socket.destroy();
  }

  /**
   * Takes the link's listeners off the held server. `pause` false: the caller hands it on in this
   * same call (the pool gives it to the next client or watches it idle, each reading it at once),
   * so pausing it would only cost a resume, a turn of the event loop, per transaction.
   */
  #detachServer(pause = true): BackendSession | undefined {
    const b = this.#backend;
    if (!b) return undefined;
    const server = b.socket as LinkedSocket;
    server.off('data', serverData);
    server.off('close', serverGone);
    server[LINK] = undefined;
    if (this.#resumeClient) server.off('drain', this.#resumeClient);
    if (this.#resumeServer) this.#client.off('drain', this.#resumeServer);
    if (pause) server.pause();
    this.#backend = undefined;
    return b;
  }

  finish(closedBy: TransactionEnd['closedBy'], error?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    const client = this.#client;
    client.off('data', clientData);
    client.off('end', clientGone);
    client.off('close', clientGone);
    client[LINK] = undefined;
    const held = this.#detachServer();
    if (held) this.#pool.releaseDirty(held, closedBy === 'client' && this.#fromClient.atBoundary && !held.socket.destroyed);
    if (this.#pins.pinned) this.#pool.pinChanged?.(false);
    if (!client.destroyed) {
      client.end();
      setTimeout(() => client.destroy(), CLOSE_GRACE_MS).unref();
    }
    const end: TransactionEnd = {
      closedBy,
      transactions: this.#transactions,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      ...(error !== undefined ? { error } : {}),
    };
    this.#end = end;
    const listener = this.#endListener;
    this.#endListener = undefined;
    listener?.transactionEnded(end);
  }

  /** A client message the router cannot read (bad length, missing terminator): FATAL 08P01, as PostgreSQL. */
  #refuseMalformed(err: unknown): void {
    const message = err instanceof Error ? err.message : 'invalid message';
    if (!this.#client.destroyed) this.#client.write(new PgError({ code: SqlState.ProtocolViolation, message }).toErrorResponse());
    this.finish('router', err);
  }

  /**
   * Forwards client bytes to the held server: counts sync points, rewrites named statements
   * (statement-rewrite.ts), follows session state (pins), cuts Terminate (the client's last message).
   */
  #forward(chunk: Buffer): void {
    const b = this.#backend!;
    const tracker = this.#tracker!;
    const out: Buffer[] = [];
    let terminated = false;
    let rewritten = false;
    let pieces;
    try {
      pieces = this.#fromClient.push(chunk);
    } catch (err) {
      return this.#refuseMalformed(err);
    }
    for (const m of pieces) {
      if (m.type === TERMINATE && m.complete) {
        terminated = true;
        rewritten = true;
        break;
      }
      if (m.whole) {
        let r;
        try {
          r = rewriteClientMessage(m.data, {
            statements: this.#statements,
            server: (b.statements ??= new ServerStatements(this.#statementsPerServer)),
            tracker,
          });
        } catch (err) {
          return this.#refuseMalformed(err);
        }
        if (r.effects && this.#pins.apply(r.effects)) this.#pool.pinChanged?.(this.#pins.pinned);
        if (r.messages.length !== 1 || r.messages[0] !== m.data) rewritten = true;
        out.push(...r.messages);
      } else out.push(m.data);
      if (!m.complete) continue;
      if (SYNC_POINTS[m.type] === 1) {
        this.#pending++;
        tracker.sent(CLIENT_SYNC);
        if (m.type === 0x53) this.#unsynced = 0;
      } else if (NEEDS_SYNC[m.type] === 1) this.#unsynced++;
    }
    // The chunk as it came when nothing was changed or held back.
    const bytes = !rewritten && isChunk(out, chunk) ? chunk : Buffer.concat(out);
    if (bytes.length > 0 && !b.socket.write(bytes)) {
      this.#client.pause();
      b.socket.once('drain', (this.#resumeClient ??= () => void this.#client.resume()));
    }
    if (terminated) this.finish('client');
  }

  #attach(b: BackendSession): void {
    this.#acquiring = false;
    if (this.#done) {
      this.#pool.releaseIdle(b);
      return;
    }
    this.#backend = b;
    // A server is released only at a message boundary with every reply in: fresh ones only after a torn end.
    if (!this.#fromServer?.atBoundary) this.#fromServer = new MessageSplitter(collectReply, undefined, MERGED);
    if (!this.#tracker?.settled) this.#tracker = new ResponseTracker();
    this.#transactions++;
    const server = b.socket as LinkedSocket;
    server[LINK] = this;
    server.on('data', serverData);
    server.on('close', serverGone);
    server.resume();
    const queued = this.#queued;
    while (queued && queued.length > 0 && this.#backend) this.#forward(queued.shift()!);
    if (this.#clientPaused) {
      this.#clientPaused = false;
      this.#client.resume();
    }
  }

  #refused(err: unknown): void {
    this.#acquiring = false;
    const reply = this.#onRefusal(err);
    if (reply && !this.#client.destroyed) this.#client.write(reply);
    this.finish('router', err);
  }

  /** Takes a server for the queued bytes (`now`: only one free at once; none free: `none()`). */
  #takeServer(now?: { none: () => void }): void {
    this.#acquiring = true;
    const pool = this.#pool;
    if (now && pool.tryAcquire) {
      this.#clientPaused = true;
      this.#client.pause();
      pool.tryAcquire().then(
        (b) => {
          if (b) return this.#attach(b);
          this.#acquiring = false;
          now.none();
        },
        (err: unknown) => this.#refused(err),
      );
      return;
    }
    // One callback for every transaction's acquire (one acquire at a time per client).
    pool.acquire((this.#onAcquired ??= (err, b) => (err !== undefined ? this.#refused(err) : this.#attach(b!))));
    this.#holdBackIfQueued();
  }

  /**
   * While it waits for a server a client's bytes are queued; past QUEUE_LIMIT the client is not
   * read until a server comes (a pause per transaction would cost a resume, a turn of the loop).
   */
  #holdBackIfQueued(): void {
    if (!this.#acquiring || this.#done || this.#clientPaused) return;
    let queuedBytes = 0;
    for (const q of this.#queued ?? []) queuedBytes += q.length;
    if (queuedBytes < QUEUE_LIMIT) return;
    this.#clientPaused = true;
    this.#client.pause();
  }

  /** Named Parses and a Sync while every server is busy: answered here (parse-without-server.ts). */
  #answerHere(parses: NonNullable<ReturnType<typeof namedParsesThenSync>>): void {
    if (this.#done) return;
    const queued = this.#queued!;
    queued.shift();
    const { reply, effects } = answerParses(parses, this.#statements);
    for (const e of effects) if (this.#pins.apply(e)) this.#pool.pinChanged?.(this.#pins.pinned);
    this.#client.write(reply);
    if (queued.length > 0) return this.#takeServer();
    this.#clientPaused = false;
    this.#client.resume();
  }

  onClientData(chunk: Buffer): void {
    this.#bytesIn += chunk.length;
    if (this.#backend) return this.#forward(chunk);
    const queued = (this.#queued ??= []);
    const between = !this.#acquiring && queued.length === 0 && this.#fromClient.atBoundary;
    // A client that says goodbye between transactions needs no server.
    if (between && chunk.length === 5 && chunk[0] === TERMINATE) return this.finish('client');
    queued.push(chunk);
    if (this.#acquiring) return this.#holdBackIfQueued();
    const parses = between && this.#pool.tryAcquire ? namedParsesThenSync(chunk) : undefined;
    if (parses) this.#takeServer({ none: () => this.#answerHere(parses) });
    else this.#takeServer();
  }

  onServerData(chunk: Buffer): void {
    this.#bytesOut += chunk.length;
    const fromServer = this.#fromServer!;
    const tracker = this.#tracker!;
    let release = false;
    let pieces;
    try {
      pieces = fromServer.push(chunk);
    } catch {
      return this.finish('server');
    }
    const out: Buffer[] = [];
    let changed = false;
    for (const m of pieces) {
      release = false;
      const action = m.complete && TRACKED_REPLIES[m.type] === 1 ? tracker.reply(m.type, m.data) : 'forward';
      if (action === 'swallow') {
        changed = true;
        continue;
      }
      if (action !== 'forward') {
        changed = true;
        out.push(action);
      } else out.push(m.data);
      if (m.type !== READY || !m.complete) continue;
      this.#pending = Math.max(0, this.#pending - 1);
      release = this.#pending === 0 && this.#unsynced === 0 && m.data[5] === IDLE && this.#fromClient.atBoundary && !this.#pins.pinned;
    }
    // The transaction is over when the server's last ReadyForQuery ends the chunk.
    release = release && fromServer.atBoundary;
    const bytes = !changed && isChunk(out, chunk) ? chunk : Buffer.concat(out);
    if (bytes.length > 0 && !this.#client.write(bytes) && !release) {
      this.#backend?.socket.pause();
      this.#client.once('drain', (this.#resumeServer ??= () => void this.#backend?.socket.resume()));
    }
    if (release) {
      const b = this.#detachServer(false);
      if (b) this.#pool.releaseIdle(b);
    }
  }
}
