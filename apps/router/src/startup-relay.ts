// Between the replayed startup packet and ReadyForQuery the router reads what the server says
// (PostgreSQL docs, "Message Flow" §Start-up): it forwards every message, swaps BackendKeyData for
// a key of its own, and notes an ErrorResponse. At ReadyForQuery it steps aside.
//
// When the router's leg to the server is TLS and the client's is not, the server offers
// SCRAM-SHA-256-PLUS, which a client on a plaintext connection must not see: libpq refuses it ("server
// offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection", its guard against a stripped
// TLS). The offer is passed on without it; the client then sends the "n" flag (no binding), which
// PostgreSQL accepts on any connection (auth-scram.c, read_client_first_message).
import type net from 'node:net';
import {
  AuthenticationCode,
  BackendMessageType,
  decodeBackendMessage,
  decodeSaslMechanisms,
  encodeAuthentication,
  encodeBackendKeyData,
  encodeSaslMechanisms,
  MessageFramer,
  type ErrorFields,
  type Frame,
} from '@pgs/wire-protocol';
import type { IssuedKey } from './cancel-keys.js';

/** Largest server message accepted before ReadyForQuery (auth, parameters, notices are small). */
const MAX_STARTUP_MESSAGE = 1024 * 1024;

/** Frames (re-encoded: type, length, body) and ready-made messages, in order, as one buffer. */
function concatMessages(parts: ReadonlyArray<Frame | Buffer>): Buffer {
  let total = 0;
  for (const p of parts) total += Buffer.isBuffer(p) ? p.length : 5 + p.body.length;
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const p of parts) {
    if (Buffer.isBuffer(p)) {
      off += p.copy(out, off);
      continue;
    }
    out[off] = p.type;
    out.writeUInt32BE(p.body.length + 4, off + 1);
    off += 5 + p.body.copy(out, off + 5);
  }
  return out;
}

/** How the startup phase ended. */
export type RelayOutcome =
  { kind: 'ready'; key: IssuedKey | undefined; leftover: Buffer } | { kind: 'server_error'; error: ErrorFields } | { kind: 'server_closed' };

/**
 * Forwards the server's startup messages to the client until ReadyForQuery. `issueKey` turns the
 * server's BackendKeyData into the key the client gets. The backend socket is left paused after
 * ReadyForQuery; `leftover` holds bytes that came after it in the same read (to forward first).
 */
export function relayStartup(
  client: net.Socket,
  backend: net.Socket,
  issueKey: (processId: number, secretKey: Buffer) => IssuedKey,
  options: { withoutChannelBinding?: boolean } = {},
): Promise<RelayOutcome> {
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
        finish(err as Error);
      }
    };
    const forward = (frames: Frame[]): void => {
      // Every message of the chunk goes out in one write: the stream machinery costs more per
      // write than the copy does (a dozen ParameterStatus messages come in one read).
      const out: Array<Frame | Buffer> = [];
      let ready = false;
      for (const f of frames) {
        if (f.type === BackendMessageType.BackendKeyData) {
          const msg = decodeBackendMessage(f);
          if (msg.kind === 'backend-key-data') {
            key = issueKey(msg.processId, msg.secretKey);
            out.push(encodeBackendKeyData(key.processId, key.secretKey));
            continue;
          }
        }
        if (
          options.withoutChannelBinding &&
          f.type === BackendMessageType.Authentication &&
          f.body.length >= 4 &&
          f.body.readUInt32BE(0) === AuthenticationCode.Sasl
        ) {
          const offered = decodeSaslMechanisms(f.body.subarray(4));
          const kept = offered.filter((m) => !m.endsWith('-PLUS'));
          if (kept.length !== offered.length) {
            out.push(encodeAuthentication(AuthenticationCode.Sasl, encodeSaslMechanisms(kept)));
            continue;
          }
        }
        if (f.type === BackendMessageType.ErrorResponse) {
          const msg = decodeBackendMessage(f);
          if (msg.kind === 'error-response') error = msg.fields;
        }
        out.push(f);
        if (isReady(f)) {
          ready = true;
          break;
        }
      }
      if (out.length > 0) client.write(concatMessages(out));
      if (ready) {
        backend.pause();
        finish({ kind: 'ready', key, leftover: framer.takeRemainder() });
      }
    };
    const onEnd = (): void => finish(error ? { kind: 'server_error', error } : { kind: 'server_closed' });
    backend.on('data', onData);
    backend.once('end', onEnd);
    backend.once('close', onEnd);
  });
}
