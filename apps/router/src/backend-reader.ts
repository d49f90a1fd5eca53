// Reading a backend's messages while the router itself talks to it (login, session reset): each
// message goes to a handler until ReadyForQuery, within a deadline. PostgreSQL docs, "Message Flow"
// §Start-up and §Simple Query. Outside these phases bytes are piped, not framed.
import type net from 'node:net';
import { BackendMessageType, MessageFramer, type Frame } from '@pgs/wire-protocol';

/** Largest server message accepted while the router reads (auth, parameters, command tags, errors). */
const MAX_MESSAGE = 1024 * 1024;

/** The backend went away or did not answer in time. */
export class BackendGoneError extends Error {
  override readonly name = 'BackendGoneError';
}

/**
 * Feeds the socket's messages to `onFrame` until ReadyForQuery (included), then pauses the socket
 * and resolves with its transaction status and any bytes read past it. Rejects when the socket
 * closes, the deadline passes, a message is malformed, or `onFrame` throws.
 */
export function readUntilReady(socket: net.Socket, onFrame: (f: Frame) => void, timeoutMs: number): Promise<{ status: string; leftover: Buffer }> {
  return new Promise((resolve, reject) => {
    const framer = new MessageFramer({ maxMessageSize: MAX_MESSAGE });
    const isReady = (f: Frame): boolean => f.type === BackendMessageType.ReadyForQuery;
    const finish = (err: Error | undefined, status = ''): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) reject(err);
      else resolve({ status, leftover: framer.takeRemainder() });
    };
    const onData = (chunk: Buffer): void => {
      try {
        for (const f of framer.push(chunk, isReady)) {
          onFrame(f);
          if (isReady(f)) return finish(undefined, String.fromCharCode(f.body[0] ?? 0));
        }
      } catch (err) {
        finish(err as Error);
      }
    };
    const onClose = (): void => finish(new BackendGoneError('the server closed the connection'));
    const timer = setTimeout(() => finish(new BackendGoneError(`the server did not answer within ${timeoutMs} ms`)), timeoutMs);
    if (socket.destroyed) return finish(new BackendGoneError('the server connection is closed'));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}
