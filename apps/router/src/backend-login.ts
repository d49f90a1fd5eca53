// Logging into a tenant's instance on a client's behalf with the ClientKey its SCRAM proof revealed
// (PostgreSQL docs, "Message Flow" §Start-up and §SASL Authentication): the router never knows the
// password, the instance holds the same verifier as the route. What the server says during start
// (ParameterStatus, BackendKeyData, NegotiateProtocolVersion) is kept, for every client the
// connection will serve.
import type net from 'node:net';
import { parseScramVerifier, ScramClientKeyLogin, SCRAM_SHA_256, type ScramVerifierParts } from '@pgs/security';
import {
  AuthenticationCode,
  decodeBackendMessage,
  decodeSaslMechanisms,
  encodeSaslInitialResponse,
  encodeSaslResponse,
  encodeFrame,
  type ErrorFields,
  type Frame,
} from '@pgs/wire-protocol';
import { connectBackend, type BackendConnectOptions } from './backend-connect.js';
import { readUntilReady } from './backend-reader.js';
import { refuse } from './refusal.js';
import type { RouteEntry } from './route.js';
import type { ServerStatements } from './statement-registry.js';

/** A logged-in server connection, as the pool keeps it. */
export interface BackendSession {
  readonly id: number;
  readonly socket: net.Socket;
  /** The route it was reached by (a pooled session is dropped when the route moves). */
  readonly route: RouteEntry;
  readonly processId: number;
  readonly secretKey: Buffer;
  /** The server's ParameterStatus values, kept current across resets. */
  readonly params: Map<string, string>;
  /**
   * The ParameterStatus set but application_name, encoded once for the hello of every client the
   * connection serves; dropped when a parameter changes.
   */
  helloParams?: Buffer | undefined;
  /** The server's NegotiateProtocolVersion, replayed to each client. */
  readonly negotiate: Buffer | undefined;
  /** The application_name the session has now (set per client). */
  applicationName: string;
  /** Epoch ms of the last return to the pool. */
  idleSince: number;
  /** The StoredKey of the verifier it logged in with: a password change retires the connection. */
  readonly storedKey: Buffer;
  /** Named statements the router prepared on it (transaction mode); gone with DISCARD ALL. */
  statements?: ServerStatements;
}

/** How a login ended when the server answered. */
export type LoginResult = { kind: 'ready'; backend: BackendSession } | { kind: 'server_error'; fields: ErrorFields };

/** What a login needs. */
export interface LoginOptions {
  connect: BackendConnectOptions;
  /** Deadline for the whole login, connect excluded. */
  timeoutMs: number;
}

let nextId = 1;

/** Verifiers parsed so far (every login and every pooled return asks); dropped whole past PARSED_MAX. */
const parsed = new Map<string, ScramVerifierParts | undefined>();
const PARSED_MAX = 10_000;

/** The user's verifier parts; a verifier the router cannot read is a login failure, not a crash. */
export function verifierParts(text: string | undefined): ScramVerifierParts | undefined {
  if (text === undefined) return undefined;
  if (parsed.has(text)) return parsed.get(text);
  const parts = parseScramVerifier(text);
  if (parsed.size >= PARSED_MAX) parsed.clear();
  parsed.set(text, parts);
  return parts;
}

/**
 * Connects, sends `startup`, answers SCRAM with `clientKey`, and reads until ReadyForQuery.
 * Throws RouterRefusal when the server cannot be reached or the login cannot be completed.
 */
export async function loginBackend(
  route: RouteEntry,
  startup: Buffer,
  applicationName: string,
  clientKey: Buffer,
  verifier: ScramVerifierParts,
  o: LoginOptions,
): Promise<LoginResult> {
  const { socket, route: reached } = await connectBackend(route, o.connect);
  socket.on('error', () => undefined);
  socket.write(startup);
  const scram = new ScramClientKeyLogin(clientKey, verifier.serverKey, verifier);
  const params = new Map<string, string>();
  let key: { processId: number; secretKey: Buffer } | undefined;
  let negotiate: Buffer | undefined;
  let error: ErrorFields | undefined;
  const onFrame = (f: Frame): void => {
    const msg = decodeBackendMessage(f);
    switch (msg.kind) {
      case 'authentication':
        if (msg.code === AuthenticationCode.Sasl) {
          if (!decodeSaslMechanisms(msg.data).includes(SCRAM_SHA_256)) throw new Error('the server does not offer SCRAM-SHA-256');
          socket.write(encodeSaslInitialResponse(SCRAM_SHA_256, Buffer.from(scram.clientFirst())));
        } else if (msg.code === AuthenticationCode.SaslContinue) {
          socket.write(encodeSaslResponse(Buffer.from(scram.clientFinal(msg.data.toString('utf8')))));
        } else if (msg.code === AuthenticationCode.SaslFinal) {
          scram.checkServerFinal(msg.data.toString('utf8'));
        } else if (msg.code !== AuthenticationCode.Ok) {
          throw new Error(`the server asks for authentication method ${msg.code}; the router logs in with SCRAM-SHA-256 only`);
        }
        break;
      case 'parameter-status':
        params.set(msg.name, msg.value);
        break;
      case 'backend-key-data':
        key = { processId: msg.processId, secretKey: Buffer.from(msg.secretKey) };
        break;
      case 'negotiate-protocol-version':
        negotiate = encodeFrame(f.type, Buffer.from(f.body));
        break;
      case 'error-response':
        error = msg.fields;
        break;
      default:
        break;
    }
  };
  try {
    const { leftover } = await readUntilReady(socket, onFrame, o.timeoutMs);
    if (leftover.length > 0) throw new Error('the server sent messages after ReadyForQuery during login');
    if (!key) throw new Error('the server sent no BackendKeyData');
    const backend: BackendSession = {
      id: nextId++,
      socket,
      route: reached,
      processId: key.processId,
      secretKey: key.secretKey,
      params,
      negotiate,
      applicationName,
      idleSince: 0,
      storedKey: verifier.storedKey,
    };
    return { kind: 'ready', backend };
  } catch (err) {
    socket.destroy();
    // A refusal at start (no such database, too many connections...) ends the connection: tell it as the server said it.
    if (error) return { kind: 'server_error', fields: error };
    throw refuse.backendLoginFailed(route.tenantId, err);
  }
}
