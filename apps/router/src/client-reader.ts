// Typed messages from a client after its startup packet (PostgreSQL docs, "Message Flow"
// §Start-up: the client's authentication replies). Used only while the router itself
// authenticates the client; afterwards bytes are piped without framing.
import type net from 'node:net';
import { MessageFramer, type Frame } from '@pgs/wire-protocol';

/** Largest client message accepted during authentication (SASL messages are a few hundred bytes). */
const MAX_AUTH_MESSAGE = 10_000;

/** Where the socket's listeners, one function each for every reader, find their reader. */
const READER = Symbol('client reader');
type ReadSocket = net.Socket & { [READER]?: ClientReader };

function onReaderData(this: ReadSocket, chunk: Buffer): void {
  this[READER]?.feed(chunk);
}

function onReaderEnd(this: ReadSocket): void {
  this[READER]?.feed(null);
}

/**
 * Reads whole messages from a client socket; bytes that arrived with the startup packet come
 * first. The socket's 'data' events feed it (one listener for the whole login: a listener added
 * and removed per message, and paused-mode reads, cost more than the login's own work). A message
 * nobody asked for yet pauses the socket, so a client cannot make the router buffer more than a
 * chunk before it is authenticated.
 */
export class ClientReader {
  readonly #socket: ReadSocket;
  #framer: MessageFramer | undefined = new MessageFramer({ maxMessageSize: MAX_AUTH_MESSAGE });
  #pending: Frame[] = [];
  #first: Buffer | undefined;
  #ended = false;
  #failed: unknown;
  #waiter: { resolve(f: Frame | null): void; reject(err: unknown): void } | undefined;

  constructor(socket: net.Socket, pipelined: Buffer) {
    this.#socket = socket;
    this.#first = pipelined.length > 0 ? pipelined : undefined;
  }

  /** The next message, or null when the client closed. Rejects with ProtocolError on a malformed stream. */
  next(): Promise<Frame | null> {
    if (this.#first) {
      const first = this.#first;
      this.#first = undefined;
      this.#push(first);
    }
    if (this.#pending.length > 0) return Promise.resolve(this.#pending.shift()!);
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (this.#ended) return Promise.resolve(null);
    if (!this.#framer) return Promise.reject(new Error('ClientReader used after takeRemainder'));
    const socket = this.#socket;
    if (socket[READER] !== this) {
      if (socket.readableEnded || socket.destroyed) return Promise.resolve(null);
      socket[READER] = this;
      socket.on('data', onReaderData);
      socket.on('end', onReaderEnd);
      socket.on('close', onReaderEnd);
    }
    socket.resume();
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  /** A chunk from the socket, or null at its end. */
  feed(chunk: Buffer | null): void {
    if (chunk === null) this.#ended = true;
    else this.#push(chunk);
    const waiter = this.#waiter;
    if (waiter) {
      if (this.#pending.length > 0) {
        this.#waiter = undefined;
        waiter.resolve(this.#pending.shift()!);
      } else if (this.#failed !== undefined) {
        this.#waiter = undefined;
        waiter.reject(this.#failed);
      } else if (this.#ended) {
        this.#waiter = undefined;
        waiter.resolve(null);
      }
    }
    // Messages nobody asked for yet: the kernel keeps the rest until somebody does.
    if (this.#pending.length > 0) this.#socket.pause();
  }

  #push(chunk: Buffer): void {
    if (!this.#framer || this.#failed !== undefined) return;
    try {
      // Frames may be views into the chunk: copy their bodies, the chunk is not ours to keep.
      for (const f of this.#framer.push(chunk)) this.#pending.push({ ...f, body: Buffer.from(f.body) });
    } catch (err) {
      this.#failed = err;
    }
  }

  /**
   * Bytes read past the last message handed out (the client sent them early): to forward first.
   * The reader is done after it: the socket is paused and no longer read by it.
   */
  takeRemainder(): Buffer {
    const socket = this.#socket;
    if (socket[READER] === this) {
      // Paused before the listener goes: a flowing socket without a 'data' listener drops bytes.
      socket.pause();
      socket.off('data', onReaderData);
      socket.off('end', onReaderEnd);
      socket.off('close', onReaderEnd);
      socket[READER] = undefined;
    }
    if (this.#first) {
      const first = this.#first;
      this.#first = undefined;
      this.#push(first);
    }
    const frames = this.#pending.map((f) => Buffer.concat([Buffer.from([f.type, 0, 0, 0, 0]), f.body]));
    for (const b of frames) b.writeUInt32BE(b.length - 1, 1);
    this.#pending = [];
    const rest = this.#framer?.takeRemainder();
    // An idle client may stay for hours: its framer's buffers go now.
    this.#framer = undefined;
    return frames.length === 0 ? (rest ?? Buffer.alloc(0)) : Buffer.concat([...frames, ...(rest ? [rest] : [])]);
  }
}
