/**
 * Ports for instances from the agent's range (--port-range). A port is handed out when no other
 * instance of this agent holds it and nothing else listens on it at the host's address (checked by
 * binding it, then releasing it).
 */
import net from 'node:net';
import { AgentError } from '../errors.js';

/** An inclusive port range. */
export interface PortRange {
  first: number;
  last: number;
}

/** Parses "20000-20999". */
export function parsePortRange(text: string): PortRange | undefined {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  return first >= 1 && last <= 65535 && first <= last ? { first, last } : undefined;
}

/** True when a TCP listener can bind `port` on `address` right now. */
export function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Picks a port in `range` not in `taken` and bindable on `address`; starts after the last pick to spread reuse. */
export class PortAllocator {
  private cursor: number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly range: PortRange,
    private readonly address: string,
  ) {
    this.cursor = range.first;
  }

  /** Whether `port` lies in the range. */
  inRange(port: number): boolean {
    return port >= this.range.first && port <= this.range.last;
  }

  /**
   * A free port, or AgentError NO_FREE_PORT. Calls are answered one at a time: concurrent creates
   * would otherwise all start at the same cursor, and a port they probe is free again as soon as the
   * probe closes it, long before the instance that got it listens. With the cursor moved past each
   * pick, a port goes out again only after the whole range was handed out.
   */
  allocate(taken: ReadonlySet<number> | (() => ReadonlySet<number>)): Promise<number> {
    const next = this.queue.then(() => this.pick(typeof taken === 'function' ? taken() : taken));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async pick(taken: ReadonlySet<number>): Promise<number> {
    const size = this.range.last - this.range.first + 1;
    for (let i = 0; i < size; i++) {
      const port = this.range.first + ((this.cursor - this.range.first + i) % size);
      if (taken.has(port)) continue;
      if (await canBind(this.address, port)) {
        this.cursor = port + 1 > this.range.last ? this.range.first : port + 1;
        return port;
      }
    }
    throw new AgentError('NO_FREE_PORT', `no free port in ${this.range.first}-${this.range.last} on ${this.address}`);
  }
}
