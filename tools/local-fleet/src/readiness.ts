/** Waiting for things with a deadline: an HTTP endpoint answering 200, a TCP port accepting, a condition. */
import http from 'node:http';
import net from 'node:net';

const POLL_MS = 200;

/** Thrown when a wait passes its deadline; says what was awaited. */
export class NotReadyError extends Error {
  override readonly name = 'NotReadyError';
}

/**
 * Polls `check` until it returns a value other than undefined. `abort` is polled too, so a child
 * that died ends the wait at once with its own error instead of a timeout.
 */
export async function waitUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, abort?: () => Error | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const failure = abort?.();
    if (failure) throw failure;
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const last = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new NotReadyError(`${what} not ready after ${Math.round(timeoutMs / 1000)}s${last}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Resolves true when GET url answers 200 within 2 s. */
export function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Resolves true when host:port accepts a TCP connection within 2 s. */
export function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}
