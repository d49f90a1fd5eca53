// Typed messages from a client after its startup packet, read in paused mode (PostgreSQL docs,
// "Message Flow" §Start-up: the client's authentication replies). Used only while the router
// itself authenticates the client; afterwards bytes are piped without framing.
import type net from 'node:net';
import { MessageFramer, type Frame } from '@pgs/wire-protocol';
import { nextChunk } from './handshake.js';

/** Largest client message accepted during authentication (SASL messages are a few hundred bytes). */
const MAX_AUTH_MESSAGE = 10_000;

/** Reads whole messages from a client socket; bytes that arrived with the startup packet come first. */
export class ClientReader {
  readonly #socket: net.Socket;
  #framer: MessageFramer | undefined = new MessageFramer({ maxMessageSize: MAX_AUTH_MESSAGE });
  #pending: Frame[] = [];
  #first: Buffer | undefined;

  constructor(socket: net.Socket, pipelined: Buffer) {
    this.#socket = socket;
    this.#first = pipelined.length > 0 ? pipelined : undefined;
  }

  /** The next message, or null when the client closed. Throws ProtocolError on a malformed stream. */
  async next(): Promise<Frame | null> {
    while (this.#pending.length === 0) {
      const chunk = this.#first ?? (await nextChunk(this.#socket));
      this.#first = undefined;
      if (chunk === null) return null;
      // Frames may be views into the chunk: copy their bodies, the chunk is not ours to keep.
      if (!this.#framer) throw new Error('ClientReader used after takeRemainder');
      this.#pending = this.#framer.push(chunk).map((f) => ({ ...f, body: Buffer.from(f.body) }));
    }
    return this.#pending.shift()!;
  }

  /** Bytes read past the last message handed out (the client sent them early): to forward first. The reader is done after it. */
  takeRemainder(): Buffer {
    const frames = this.#pending.map((f) => Buffer.concat([Buffer.from([f.type, 0, 0, 0, 0]), f.body]));
    for (const b of frames) b.writeUInt32BE(b.length - 1, 1);
    this.#pending = [];
    const rest = this.#framer?.takeRemainder();
    // An idle client may stay for hours: its framer's buffers go now.
    this.#framer = undefined;
    return frames.length === 0 ? (rest ?? Buffer.alloc(0)) : Buffer.concat([...frames, ...(rest ? [rest] : [])]);
  }
}
