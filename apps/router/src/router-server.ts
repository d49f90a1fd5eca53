// The listening sockets: clients on --listen, forwarded cancels on --cancel-listen. Tracks open
// connections so a stop can let them finish up to a deadline.
import net from 'node:net';
import type { Logger } from '@pgs/service-kit';
import { StartupDecoder } from '@pgs/wire-protocol';
import type { CancelRouter } from './cancel-routing.js';
import { serveConnection, type ConnectionDeps, type ConnectionHandle } from './client-connection.js';
import type { HostPort } from './listen-address.js';

/** How long a peer has to deliver a forwarded CancelRequest. */
const CANCEL_READ_TIMEOUT_MS = 5000;

function listen(server: net.Server, at: HostPort): Promise<HostPort> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({ host: addr.address, port: addr.port });
    });
  });
}

/** The router's listeners and its open connections. */
export class RouterServer {
  readonly #deps: ConnectionDeps;
  readonly #log: Logger;
  readonly #clients: net.Server;
  #cancels: net.Server | undefined;
  /** Open connections by id, each with the handle that cuts it. */
  readonly #open = new Map<number, ConnectionHandle>();
  #nextId = 1;
  #stopping = false;
  /** Set while a stop waits for the open connections to close. */
  #drained: (() => void) | undefined;
  /** Called by each connection once it is closed and logged (one function for all: no promise per connection). */
  readonly #closedConnection = (connId: number): void => {
    this.#open.delete(connId);
    if (this.#open.size === 0) this.#drained?.();
  };

  constructor(deps: ConnectionDeps) {
    this.#deps = deps;
    this.#log = deps.log;
    this.#clients = net.createServer({ noDelay: true }, (socket) => this.#accept(socket));
    this.#clients.on('error', (err) => this.#log.error({ err }, 'client listener error'));
  }

  /** Open client connections. */
  get open(): number {
    return this.#open.size;
  }

  /** Starts accepting clients. */
  listen(at: HostPort): Promise<HostPort> {
    return listen(this.#clients, at);
  }

  /** Starts accepting CancelRequests forwarded by peer routers. */
  async listenForCancels(at: HostPort, cancels: CancelRouter): Promise<HostPort> {
    const server = net.createServer((socket) => this.#acceptCancel(socket, cancels));
    server.on('error', (err) => this.#log.error({ err }, 'cancel listener error'));
    this.#cancels = server;
    return listen(server, at);
  }

  /**
   * Stops accepting; open connections may finish until `deadlineMs`, then are cut. Resolves when
   * every connection is closed.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    const closed = Promise.all([
      new Promise<void>((resolve) => this.#clients.close(() => resolve())),
      new Promise<void>((resolve) => (this.#cancels ? this.#cancels.close(() => resolve()) : resolve())),
    ]);
    this.#log.info({ open: this.#open.size, deadlineMs }, 'draining client connections');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => (timer = setTimeout(() => resolve('deadline'), deadlineMs)));
    const all = new Promise<'drained'>((resolve) => {
      if (this.#open.size === 0) resolve('drained');
      else this.#drained = () => resolve('drained');
    });
    const first = await Promise.race([all, deadline]);
    clearTimeout(timer);
    if (first === 'deadline') {
      this.#log.warn({ open: this.#open.size }, 'shutdown deadline reached; closing the remaining connections');
      for (const handle of this.#open.values()) handle.destroy();
      await all;
    }
    await closed;
  }

  #accept(socket: net.Socket): void {
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    const connId = this.#nextId++;
    // serveConnection handles its own failures and calls back once the connection is closed.
    this.#open.set(connId, serveConnection(socket, connId, this.#deps, this.#closedConnection));
  }

  #acceptCancel(socket: net.Socket, cancels: CancelRouter): void {
    const decoder = new StartupDecoder();
    socket.setTimeout(CANCEL_READ_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      let step;
      try {
        step = decoder.push(chunk);
      } catch (err) {
        this.#log.debug({ err: (err as Error).message, peer: socket.remoteAddress }, 'bad packet on the cancel listener');
        socket.destroy();
        return;
      }
      if (step.kind === 'need-more') return;
      socket.removeAllListeners('data');
      socket.pause();
      if (step.packet.kind !== 'cancel-request') {
        socket.destroy();
        return;
      }
      // Closed once the cancel went out, so the forwarding router knows it was handled.
      void cancels.handle(step.packet.processId, step.packet.secretKey, true).finally(() => socket.destroy());
    });
  }
}
