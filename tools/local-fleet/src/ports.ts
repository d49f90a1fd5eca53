/** Picking ports on loopback: the first free one from a preferred base. */
import net from 'node:net';

/** True when `host:port` can be bound right now. */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The first free port from `base` upwards (at most 200 tries), skipping `taken`. */
export async function firstFreePort(host: string, base: number, taken: ReadonlySet<number> = new Set()): Promise<number> {
  for (let port = base; port < Math.min(base + 200, 65536); port++) {
    if (!taken.has(port) && (await isPortFree(host, port))) return port;
  }
  throw new Error(`no free port on ${host} from ${base} to ${base + 199}`);
}
