// Pool mode NONE for a client on TLS while the router's leg to the instance is TLS too: the client's
// SCRAM cannot pass through. A client that supports channel binding binds its proof to the
// certificate it sees (the router's), and the instance checks it against its own certificate and
// refuses ("SCRAM channel binding check failed"); stripping SCRAM-SHA-256-PLUS from the instance's
// offer does not help, since PostgreSQL then refuses the client's "y" flag on a TLS connection as a
// downgrade (auth-scram.c, read_client_first_message), and the gs2 header is covered by the proof.
// So the router authenticates such a client itself (SCRAM-SHA-256-PLUS bound to its own certificate,
// against the route's verifier), logs into a server connection of the client's own with the
// recovered ClientKey, and then relays bytes as passthrough does. The server connection is never
// pooled: it ends with the client.
import { encodeBackendKeyData, encodeParameterStatus, encodeReadyForQuery, encodeErrorResponse } from '@pgs/wire-protocol';
import { loginBackend } from './backend-login.js';
import { loginAtEdge } from './edge-login.js';
import type { PooledClient, PooledDeps, PooledOutcome } from './pooled-session.js';
import { startupForBackend } from './routing.js';
import { lendSession } from './session-link.js';

const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

/** Serves one client to its end; throws RouterRefusal for refusals (the caller tells the client). */
export async function serveAuthenticatedPassthrough(
  c: PooledClient,
  deps: Omit<PooledDeps, 'pool' | 'waitTimeoutMs' | 'statementsPerServer'>,
): Promise<PooledOutcome> {
  const { decision, route, packet } = c;
  const edge = await loginAtEdge(c, deps);
  if (!('reader' in edge)) return edge;
  const { reader, clientKey, verifier } = edge;

  const appName = packet.parameters.get('application_name') ?? '';
  const login = await loginBackend(route, startupForBackend(packet, decision), appName, clientKey, verifier, {
    connect: deps.connect,
    timeoutMs: deps.loginTimeoutMs,
  });
  if (login.kind === 'server_error') {
    if (!c.socket.destroyed) c.socket.end(encodeErrorResponse(login.fields));
    return { outcome: 'server_refused', sqlstate: login.fields.code, bytesIn: 0, bytesOut: 0 };
  }
  const backend = login.backend;
  const where = { backend: `${backend.route.address}:${backend.route.port}`, backendPid: backend.processId };
  const close = (): void => {
    if (!backend.socket.destroyed) backend.socket.end(TERMINATE);
  };
  if (c.expired() || c.socket.destroyed) {
    close();
    return { outcome: c.expired() ? 'startup_timeout' : 'client_closed_during_startup', ...where, bytesIn: 0, bytesOut: 0 };
  }
  const issued = deps.keys.issue({
    processId: backend.processId,
    secretKey: backend.secretKey,
    host: backend.route.address,
    port: backend.route.port,
    tenantId: route.tenantId,
  });
  try {
    const hello: Buffer[] = [];
    if (backend.negotiate) hello.push(backend.negotiate);
    for (const [name, value] of backend.params) hello.push(encodeParameterStatus(name, value));
    hello.push(encodeBackendKeyData(issued.processId, issued.secretKey), encodeReadyForQuery('I'));
    c.socket.write(Buffer.concat(hello));
    c.ready();
    const session = lendSession(c.socket, backend.socket, reader.takeRemainder());
    c.lent(session);
    const end = await session.ended;
    return { outcome: `closed_by_${end.closedBy}`, ...where, bytesIn: end.bytesIn, bytesOut: end.bytesOut };
  } finally {
    close();
    deps.keys.release(issued);
  }
}
