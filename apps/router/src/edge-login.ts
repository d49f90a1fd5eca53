// The router's side of a client's login where the router authenticates (pooled modes, and a TLS
// client of a passthrough tenant): the per-user throttle, SCRAM against the route cache's verifier,
// and the counting of every failure — one place, so both paths refuse and count alike.
import { verifierParts } from './backend-login.js';
import { ClientReader } from './client-reader.js';
import { authenticateClient } from './edge-auth.js';
import type { PooledClient, PooledDeps, PooledOutcome } from './pooled-session.js';
import { refuse } from './refusal.js';

/** A client that proved its password: its reader (bytes after the login stay in it) and ClientKey. */
export interface EdgeLogin {
  reader: ClientReader;
  clientKey: Buffer;
  verifier: NonNullable<ReturnType<typeof verifierParts>>;
}

/**
 * Authenticates the client of `c` as `c.decision.user` of the route's tenant. Returns the login, or
 * the outcome to report when the client left or its startup time ran out; throws RouterRefusal
 * (throttled, wrong password or unknown user: the same answer) for the caller to tell the client.
 */
export async function loginAtEdge(
  c: PooledClient,
  deps: Pick<PooledDeps, 'throttle' | 'metrics' | 'verifierOf' | 'mockSecret'>,
): Promise<EdgeLogin | PooledOutcome> {
  const user = c.decision.user;
  const throttleKey = `${c.route.tenantId}\0${user}`;
  const blocked = deps.throttle.blockedFor(throttleKey, Date.now());
  if (blocked > 0) {
    deps.metrics.authFailures.inc({ reason: 'throttled' });
    throw refuse.authThrottled(user, blocked);
  }
  const verifier = verifierParts(deps.verifierOf(c.route.tenantId, user));
  const reader = new ClientReader(c.socket, c.pipelined);
  let auth;
  try {
    auth = await authenticateClient(reader, (b) => c.socket.write(b), { user, verifier, mockSecret: deps.mockSecret, tlsSocket: c.tlsSocket });
  } catch (err) {
    deps.metrics.authFailures.inc({ reason: 'protocol' });
    throw err;
  }
  if (auth.kind === 'closed') return { outcome: 'client_closed_during_auth', bytesIn: 0, bytesOut: 0 };
  if (auth.kind === 'failed' || !verifier) {
    deps.throttle.fail(throttleKey, Date.now());
    deps.metrics.authFailures.inc({ reason: verifier ? 'wrong_password' : 'unknown_user' });
    throw refuse.authFailed(user);
  }
  if (c.expired()) return { outcome: 'startup_timeout', bytesIn: 0, bytesOut: 0 };
  return { reader, clientKey: auth.clientKey, verifier };
}
