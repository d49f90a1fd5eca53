// Between the replayed startup packet and ReadyForQuery the router reads what the server says
// (PostgreSQL docs, "Message Flow" §Start-up): it forwards every message, swaps BackendKeyData for
// a key of its own, and notes an ErrorResponse. At ReadyForQuery it steps aside.
import type net from 'node:net';
import { BackendMessageType, decodeBackendMessage, encodeBackendKeyData, encodeFrame, MessageFramer, type ErrorFields, type Frame } from '@pgs/wire-protocol';
import type { IssuedKey } from './cancel-keys.js';

/** Largest server message accepted before ReadyForQuery (auth, parameters, notices are small). */
const MAX_STARTUP_MESSAGE = 1024 * 1024;

/** How the startup phase ended. */
export type RelayOutcome =
  | { kind: 'ready'; key: IssuedKey | undefined; leftover: Buffer }
  | { kind: 'server_error'; error: ErrorFields }
  | { kind: 'server_closed' };

/**
 * Forwards the server's startup messages to the client until ReadyForQuery. `issueKey` turns the
 * server's BackendKeyData into the key the client gets. The backend socket is left paused after
 * ReadyForQuery; `leftover` holds bytes that came after it in the same read (to forward first).
 */
export function relayStartup(client: net.Socket, backend: net.Socket, issueKey: (processId: number, secretKey: Buffer) => IssuedKey): Promise<RelayOutcome> {
  return new Promise((resolve, reject) => {
    const framer = new MessageFramer({ maxMessageSize: MAX_STARTUP_MESSAGE });
    let key: IssuedKey | undefined;
    let error: ErrorFields | undefined;
    const isReady = (f: Frame): boolean => f.type === BackendMessageType.ReadyForQuery;
    const finish = (outcome: RelayOutcome | Error): void => {
      backend.off('data', onData);
      backend.off('end', onEnd);
      backend.off('close', onEnd);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const onData = (chunk: Buffer): void => {
      // A malformed server message must fail this connection, never throw out of the event handler.
      try {
        forward(framer.push(chunk, isReady));
      } catch (err) {
        client.uncork();
        finish(err as Error);
      }
    };
    const forward = (frames: Frame[]): void => {
      client.cork();
      for (const f of frames) {
        if (f.type === BackendMessageType.BackendKeyData) {
          const msg = decodeBackendMessage(f);
          if (msg.kind === 'backend-key-data') {
            key = issueKey(msg.processId, msg.secretKey);
            client.write(encodeBackendKeyData(key.processId, key.secretKey));
            continue;
          }
        }
        if (f.type === BackendMessageType.ErrorResponse) {
          const msg = decodeBackendMessage(f);
          if (msg.kind === 'error-response') error = msg.fields;
        }
        client.write(encodeFrame(f.type, f.body));
        if (isReady(f)) {
          backend.pause();
          client.uncork();
          finish({ kind: 'ready', key, leftover: framer.takeRemainder() });
          return;
        }
      }
      client.uncork();
    };
    const onEnd = (): void => finish(error ? { kind: 'server_error', error } : { kind: 'server_closed' });
    backend.on('data', onData);
    backend.once('end', onEnd);
    backend.once('close', onEnd);
  });
}
