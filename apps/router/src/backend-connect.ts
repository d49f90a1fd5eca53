// Opening the connection to a tenant's instance (TCP, then TLS when the fleet wants it: backend-tls.ts),
// with a bounded retry when the route moved meanwhile (e.g. a failover published a new address while
// we were connecting to the old one).
import net from 'node:net';
import { failureKind, type BackendFailureNote } from './backend-failure-report.js';
import { BackendTlsError, startBackendTls, type BackendTlsPolicy } from './backend-tls.js';
import { holdUntilServed, isHeld } from './route-hold.js';
import { checkRoutable } from './routing.js';
import { refuse } from './refusal.js';
import type { RouteEntry } from './route.js';

/** Connect settings. */
export interface BackendConnectOptions {
  timeoutMs: number;
  /** Extra attempts allowed, each only after the route changed. */
  retries: number;
  /** How long to wait for a changed route after a failure before refusing. */
  routeChangeWaitMs: number;
  /** A route that changed to a held state (a switch) is waited through for up to this long; 0 = refused at once. */
  holdTimeoutMs?: number;
  lookup(tenantId: string): RouteEntry | undefined;
  /** TLS to instances (absent: plain TCP, as in tests without a fleet CA). */
  tls?: BackendTlsPolicy;
  /** Told how each connect's leg ended up: TLS, plaintext (TLS off), or refused for TLS. */
  onTls?: (result: 'tls' | 'plaintext' | 'not_offered' | 'failed') => void;
  /** Told of each TCP connect that was refused or timed out (the coordinator hears of it). */
  onConnectFailed?: (failure: BackendFailureNote) => void;
}

/** A connected backend socket and the route it was reached by. */
export interface BackendConnection {
  socket: net.Socket;
  route: RouteEntry;
  attempts: number;
}

/** One TCP connect with a timeout; Nagle off, since the router forwards small protocol messages. */
export function connectTcp(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => socket.destroy(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`)), timeoutMs);
    // Stays attached after connect (a late error before the link takes over must not crash us).
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
  });
}

function sameTarget(a: RouteEntry, b: RouteEntry): boolean {
  return a.address === b.address && a.port === b.port && a.state === b.state && a.revision === b.revision;
}

async function waitForRouteChange(tenantId: string, from: RouteEntry, options: BackendConnectOptions): Promise<RouteEntry | undefined> {
  const deadline = Date.now() + options.routeChangeWaitMs;
  for (;;) {
    const now = options.lookup(tenantId);
    if (!now || !sameTarget(now, from)) return now;
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The connected socket as the fleet wants it: upgraded to verified TLS, or as it is when TLS is off. */
async function secure(socket: net.Socket, route: RouteEntry, options: BackendConnectOptions): Promise<net.Socket> {
  if (!options.tls?.enabled()) {
    options.onTls?.('plaintext');
    return socket;
  }
  try {
    const caPem = options.tls.caPem();
    if (caPem === undefined)
      throw new BackendTlsError('the fleet wants TLS to instances but this router knows no fleet CA to verify them with (it runs --insecure)', 'failed');
    const upgraded = await startBackendTls(socket, route.address, caPem, options.timeoutMs);
    options.onTls?.('tls');
    return upgraded;
  } catch (err) {
    socket.destroy();
    options.onTls?.(err instanceof BackendTlsError ? err.result : 'failed');
    throw err instanceof BackendTlsError
      ? err
      : new BackendTlsError(`TLS to the instance at ${route.address} failed: ${(err as Error).message}`, 'failed', { cause: err });
  }
}

/**
 * Connects to the route's backend. On failure it looks at the cache: a changed, routable route
 * is tried (at most `retries` more times); a route that became held (a switch) is waited through
 * first; one that became unroutable refuses with that state; no change within `routeChangeWaitMs`
 * refuses as backend_unreachable (08006).
 */
export async function connectBackend(route: RouteEntry, options: BackendConnectOptions): Promise<BackendConnection> {
  let current = route;
  for (let attempt = 1; ; attempt++) {
    try {
      const socket = await connectTcp(current.address, current.port, options.timeoutMs);
      return { socket: await secure(socket, current, options), route: current, attempts: attempt };
    } catch (err) {
      const kind = failureKind(err);
      if (kind) options.onConnectFailed?.({ tenantId: current.tenantId, address: current.address, port: current.port, kind, at: Date.now() });
      // A certificate that does not verify will not verify a moment later: refuse at once.
      if (err instanceof BackendTlsError) throw refuse.backendUnreachable(current.tenantId, err);
      if (attempt > options.retries) throw refuse.backendUnreachable(current.tenantId, err);
      const next = await waitForRouteChange(current.tenantId, current, options);
      if (!next) {
        if (options.lookup(current.tenantId) === undefined) throw refuse.unknownTenant(current.tenantId, false);
        throw refuse.backendUnreachable(current.tenantId, err);
      }
      // The instance went away because a switch began: wait for where it goes next.
      const served =
        isHeld(next) && (options.holdTimeoutMs ?? 0) > 0
          ? await holdUntilServed(next, { lookup: options.lookup, timeoutMs: options.holdTimeoutMs ?? 0 })
          : next;
      checkRoutable(served);
      current = served;
    }
  }
}
