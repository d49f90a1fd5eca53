// After ReadyForQuery the router gets out of the way: each chunk read on one side is written to the
// other, no parsing, no per-chunk bookkeeping (byte counts come from the sockets at close). A plain
// 'data' handler with pause/resume on backpressure does what stream.pipe() does with less work per
// chunk (pipe's ondata wrapper, its 'unpipe'/'error' plumbing and its drain counter). Each side is
// closed when the other goes.
import type net from 'node:net';

/** How long a side may take to flush and close after its peer went away, before it is cut. */
const CLOSE_GRACE_MS = 5000;

/**
 * Half-closes `socket` unless it is already ending or gone. Node builds an error object, stack
 * trace included, for end() on a finished or destroyed stream: measured at 6% of the router's CPU
 * per connection under `pgbench -C`, where both sides routinely close at once.
 */
function endOnce(socket: net.Socket): void {
  if (!socket.writableEnded && !socket.destroyed) socket.end();
}

/**
 * Copies `from` to `to` until `from` ends: write each chunk as it comes; when `to`'s buffer is full
 * stop reading until it drains (the kernel's socket buffers then push back on the sender). A clean
 * end is passed on as a half-close.
 */
function forward(from: net.Socket, to: net.Socket, inspect?: (chunk: Buffer) => void): void {
  const resume = (): void => {
    from.resume();
  };
  from.on('data', (chunk: Buffer) => {
    if (inspect) inspect(chunk);
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', resume);
    }
  });
  from.once('end', () => endOnce(to));
  // The handshake left the socket paused (it read in paused mode); a 'data' listener alone does not resume it.
  from.resume();
}

/**
 * True when `chunk` ends with a Terminate message ('X', length 4). A client says goodbye with it;
 * PostgreSQL then closes, often before the client's own end of stream reaches the router.
 */
function endsWithTerminate(chunk: Buffer): boolean {
  const n = chunk.length;
  return n >= 5 && chunk[n - 1] === 4 && chunk[n - 2] === 0 && chunk[n - 3] === 0 && chunk[n - 4] === 0 && chunk[n - 5] === 0x58;
}

/** Which side ended a linked connection first. */
export interface LinkEnd {
  closedBy: 'client' | 'server';
  clientError: Error | undefined;
  serverError: Error | undefined;
}

/**
 * A client socket linked to a backend socket. Client -> server bytes flow from the start (the
 * client's auth messages go through untouched); server -> client is piped once `open()` is called
 * (the router reads the server's startup messages itself until then).
 */
export class Link {
  /** Resolves when both sockets are closed. */
  readonly closed: Promise<LinkEnd>;
  readonly #client: net.Socket;
  readonly #server: net.Socket;

  constructor(client: net.Socket, server: net.Socket) {
    this.#client = client;
    this.#server = server;
    let closedBy: LinkEnd['closedBy'] | undefined;
    let clientSaidGoodbye = false;
    let clientError: Error | undefined;
    let serverError: Error | undefined;
    client.on('error', (err) => (clientError ??= err));
    server.on('error', (err) => (serverError ??= err));
    // Who ended first is decided by the first end of stream (FIN, or TLS close_notify), not by the
    // first 'close': a TLS client's socket closes a tick or more after its end, by which time a
    // backend that got the client's Terminate may already have closed its side.
    client.once('end', () => (closedBy ??= 'client'));
    server.once('end', () => (closedBy ??= 'server'));
    // A clean close is passed on as a half-close (pending bytes still flush); an error cuts the other side.
    const follow = (other: net.Socket, side: LinkEnd['closedBy'], hadError: boolean): void => {
      closedBy ??= side;
      if (other.destroyed) return;
      if (hadError) other.destroy();
      else {
        endOnce(other);
        setTimeout(() => other.destroy(), CLOSE_GRACE_MS).unref();
      }
    };
    const clientClosed = new Promise<void>((resolve) =>
      client.once('close', (hadError) => {
        follow(server, 'client', hadError);
        resolve();
      }),
    );
    const serverClosed = new Promise<void>((resolve) =>
      server.once('close', (hadError) => {
        follow(client, 'server', hadError);
        resolve();
      }),
    );
    this.closed = Promise.all([clientClosed, serverClosed]).then(() => ({
      closedBy: clientSaidGoodbye ? 'client' : (closedBy ?? 'client'),
      clientError,
      serverError,
    }));
    if (client.destroyed) server.destroy();
    else forward(client, server, (chunk) => (clientSaidGoodbye = endsWithTerminate(chunk)));
  }

  /** Starts server -> client: `leftover` (bytes read past ReadyForQuery) first, then everything else. */
  open(leftover: Buffer): void {
    if (leftover.length > 0) this.#client.write(leftover);
    forward(this.#server, this.#client);
  }

  /** Cuts the server side only (the client is being told why). */
  destroyServer(): void {
    this.#server.destroy();
  }

  /** Cuts both sides now (shutdown deadline, refusal after linking). */
  destroy(): void {
    this.#client.destroy();
    this.#server.destroy();
  }
}
