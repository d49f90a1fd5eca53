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
/** The tracker's entry for a client's sync point (read only: one shared object, not one per transaction). */
const CLIENT_SYNC = Object.freeze({ kind: 'sync', injected: false } as const);
const CLOSE_GRACE_MS = 5000;
/** Client bytes queued while waiting for a server before the client is no longer read. */
const QUEUE_LIMIT = 64 * 1024;

/** A handle to cut the session (shutdown deadline). */
export interface TransactionSession {
  readonly ended: Promise<TransactionEnd>;
  destroy(): void;
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
  const fromClient = new MessageSplitter(collectRequest);
  let fromServer = new MessageSplitter(collectReply);
  let tracker = new ResponseTracker();
  const statements = new ClientStatements();
  const pins = new SessionPins();
  let backend: BackendSession | undefined;
  let acquiring = false;
  let clientPaused = false;
  const queued: Buffer[] = [];
  let pending = 0;
  let unsynced = 0;
  let transactions = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  let done = false;
  let settle: (end: TransactionEnd) => void = () => undefined;
  const ended = new Promise<TransactionEnd>((resolve) => (settle = resolve));

  const resumeClient = (): void => void client.resume();
  const resumeServer = (): void => void backend?.socket.resume();

  /**
   * Takes the link's listeners off the held server. `pause` false: the caller hands it on in this
   * same call (the pool gives it to the next client or watches it idle, each reading it at once),
   * so pausing it would only cost a resume, a turn of the event loop, per transaction.
   */
  const detachServer = (pause = true): BackendSession | undefined => {
    const b = backend;
    if (!b) return undefined;
    b.socket.off('data', onServerData);
    b.socket.off('close', onServerGone);
    b.socket.off('drain', resumeClient);
    client.off('drain', resumeServer);
    if (pause) b.socket.pause();
    backend = undefined;
    return b;
  };

  const finish = (closedBy: TransactionEnd['closedBy'], error?: unknown): void => {
    if (done) return;
    done = true;
    client.off('data', onClientData);
    client.off('end', onClientGone);
    client.off('close', onClientGone);
    const held = detachServer();
    if (held) pool.releaseDirty(held, closedBy === 'client' && fromClient.atBoundary && !held.socket.destroyed);
    if (pins.pinned) pool.pinChanged?.(false);
    if (!client.destroyed) {
      client.end();
      setTimeout(() => client.destroy(), CLOSE_GRACE_MS).unref();
    }
    settle({ closedBy, transactions, bytesIn, bytesOut, ...(error !== undefined ? { error } : {}) });
  };

  /** A client message the router cannot read (bad length, missing terminator): FATAL 08P01, as PostgreSQL. */
  const refuseMalformed = (err: unknown): void => {
    const message = err instanceof Error ? err.message : 'invalid message';
    if (!client.destroyed) client.write(new PgError({ code: SqlState.ProtocolViolation, message }).toErrorResponse());
    finish('router', err);
  };

  /**
   * Forwards client bytes to the held server: counts sync points, rewrites named statements
   * (statement-rewrite.ts), follows session state (pins), cuts Terminate (the client's last message).
   */
  const forward = (chunk: Buffer): void => {
    const b = backend!;
    const out: Buffer[] = [];
    let terminated = false;
    let rewritten = false;
    let pieces;
    try {
      pieces = fromClient.push(chunk);
    } catch (err) {
      return refuseMalformed(err);
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
          r = rewriteClientMessage(m.data, { statements, server: (b.statements ??= new ServerStatements(options.statementsPerServer)), tracker });
        } catch (err) {
          return refuseMalformed(err);
        }
        if (r.effects && pins.apply(r.effects)) pool.pinChanged?.(pins.pinned);
        if (r.messages.length !== 1 || r.messages[0] !== m.data) rewritten = true;
        out.push(...r.messages);
      } else out.push(m.data);
      if (!m.complete) continue;
      if (SYNC_POINTS[m.type] === 1) {
        pending++;
        tracker.sent(CLIENT_SYNC);
        if (m.type === 0x53) unsynced = 0;
      } else if (NEEDS_SYNC[m.type] === 1) unsynced++;
    }
    // The chunk as it came when nothing was changed or held back.
    const bytes = !rewritten && isChunk(out, chunk) ? chunk : Buffer.concat(out);
    if (bytes.length > 0 && !b.socket.write(bytes)) {
      client.pause();
      b.socket.once('drain', resumeClient);
    }
    if (terminated) finish('client');
  };

  const attach = (b: BackendSession): void => {
    acquiring = false;
    if (done) {
      pool.releaseIdle(b);
      return;
    }
    backend = b;
    // A server is released only at a message boundary with every reply in: fresh ones only after a torn end.
    if (!fromServer.atBoundary) fromServer = new MessageSplitter(collectReply);
    if (!tracker.settled) tracker = new ResponseTracker();
    transactions++;
    b.socket.on('data', onServerData);
    b.socket.on('close', onServerGone);
    b.socket.resume();
    while (queued.length > 0 && backend) forward(queued.shift()!);
    if (clientPaused) {
      clientPaused = false;
      client.resume();
    }
  };

  const refused = (err: unknown): void => {
    acquiring = false;
    const reply = onRefusal(err);
    if (reply && !client.destroyed) client.write(reply);
    finish('router', err);
  };

  // One callback for every transaction's acquire (one acquire at a time per client).
  const onAcquired = (err: unknown, b?: BackendSession): void => (err !== undefined ? refused(err) : attach(b!));

  /** Takes a server for the queued bytes (`now`: only one free at once; none free: `none()`). */
  const takeServer = (now?: { none: () => void }): void => {
    acquiring = true;
    if (now && pool.tryAcquire) {
      clientPaused = true;
      client.pause();
      pool.tryAcquire().then((b) => {
        if (b) return attach(b);
        acquiring = false;
        now.none();
      }, refused);
      return;
    }
    pool.acquire(onAcquired);
    holdBackIfQueued();
  };

  /**
   * While it waits for a server a client's bytes are queued; past QUEUE_LIMIT the client is not
   * read until a server comes (a pause per transaction would cost a resume, a turn of the loop).
   */
  const holdBackIfQueued = (): void => {
    if (!acquiring || done || clientPaused) return;
    let queuedBytes = 0;
    for (const q of queued) queuedBytes += q.length;
    if (queuedBytes < QUEUE_LIMIT) return;
    clientPaused = true;
    client.pause();
  };

  /** Named Parses and a Sync while every server is busy: answered here (parse-without-server.ts). */
  const answerHere = (parses: NonNullable<ReturnType<typeof namedParsesThenSync>>): void => {
    if (done) return;
    queued.shift();
    const { reply, effects } = answerParses(parses, statements);
    for (const e of effects) if (pins.apply(e)) pool.pinChanged?.(pins.pinned);
    client.write(reply);
    if (queued.length > 0) return takeServer();
    clientPaused = false;
    client.resume();
  };

  const onClientData = (chunk: Buffer): void => {
    bytesIn += chunk.length;
    if (backend) return forward(chunk);
    const between = !acquiring && queued.length === 0 && fromClient.atBoundary;
    // A client that says goodbye between transactions needs no server.
    if (between && chunk.length === 5 && chunk[0] === TERMINATE) return finish('client');
    queued.push(chunk);
    if (acquiring) return holdBackIfQueued();
    const parses = between && pool.tryAcquire ? namedParsesThenSync(chunk) : undefined;
    if (parses) takeServer({ none: () => answerHere(parses) });
    else takeServer();
  };

  const onServerData = (chunk: Buffer): void => {
    bytesOut += chunk.length;
    let release = false;
    let pieces;
    try {
      pieces = fromServer.push(chunk);
    } catch {
      return finish('server');
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
      pending = Math.max(0, pending - 1);
      release = pending === 0 && unsynced === 0 && m.data[5] === IDLE && fromClient.atBoundary && !pins.pinned;
    }
    // The transaction is over when the server's last ReadyForQuery ends the chunk.
    release = release && fromServer.atBoundary;
    const bytes = !changed && isChunk(out, chunk) ? chunk : Buffer.concat(out);
    if (bytes.length > 0 && !client.write(bytes) && !release) {
      backend?.socket.pause();
      client.once('drain', resumeServer);
    }
    if (release) {
      const b = detachServer(false);
      if (b) pool.releaseIdle(b);
    }
  };

  const onClientGone = (): void => finish('client');
  const onServerGone = (): void => finish('server');

  client.on('data', onClientData);
  client.once('end', onClientGone);
  client.once('close', onClientGone);
  if (early.length > 0) onClientData(early);
  client.resume();
  if (client.destroyed) finish('client');

  return {
    ended,
    destroy: () => {
      client.destroy();
      backend?.socket.destroy();
    },
  };
}
