/**
 * Bearer tokens on the REST API: each route stands for one CoordinatorService RPC and
 * is checked against the same role table as gRPC; 401 without a valid token, 403 when the role or
 * tenant scope does not allow it. Refusals are audited with the principal. The caller of the
 * request being served is kept in an AsyncLocalStorage so the handlers can name it in events.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type http from 'node:http';
import { Code, RpcError } from '@pgs/rpc';
import { authenticateOperatorToken, authorize, hashToken, parseBearer, type OperatorPrincipal } from '@pgs/security';
import type { Store } from '../store/contract.js';
import { auditRefusal, principalName } from './access.js';

/** Who is calling a REST route, and which tenants it may see (undefined = all). */
export interface RestCaller {
  readonly name: string;
  readonly tenantFilter: ReadonlySet<string> | undefined;
}

/** The RPC each REST route stands for (routes not listed need no token). */
export const REST_RPC: Readonly<Record<string, string>> = Object.freeze({
  versions: 'ListVersions',
  version: 'ListVersions',
  'instances.create': 'CreateTenant',
  'instances.list': 'ListTenants',
  'instances.get': 'GetTenant',
  'instances.update': 'UpdateTenant',
  'instances.delete': 'DeleteTenant',
  'instances.start': 'StartTenant',
  'instances.stop': 'StopTenant',
  'instances.suspend': 'SuspendTenant',
  'instances.resume': 'ResumeTenant',
  'instances.access': 'SetTenantAccess',
  'instances.move': 'MoveTenant',
  'instances.upgrade': 'UpgradeTenant',
  'users.create': 'CreateUser',
  'users.list': 'ListUsers',
  'users.get': 'GetUser',
  'users.update': 'UpdateUserPassword',
  'users.delete': 'DeleteUser',
  'databases.create': 'CreateDatabase',
  'databases.list': 'ListDatabases',
  'databases.get': 'GetDatabase',
  'databases.delete': 'DeleteDatabase',
  'backups.create': 'CreateBackup',
  'backups.list': 'ListBackups',
  'backups.get': 'GetBackup',
  'backups.delete': 'DeleteBackup',
  'instances.restore': 'RestoreTenant',
  'restores.get': 'GetRestore',
  fleet: 'GetFleetStatus',
  routes: 'ListRoutes',
  'hosts.list': 'ListHosts',
  'hosts.get': 'GetHost',
  'events.list': 'ListEvents',
  'events.stream': 'WatchEvents',
});

const current = new AsyncLocalStorage<RestCaller>();

/** Runs `fn` as `caller`. */
export function runAsCaller<T>(caller: RestCaller, fn: () => T): T {
  return current.run(caller, fn);
}

/** The caller of the REST request being served (for audit events). */
export function restCaller(): RestCaller {
  const caller = current.getStore();
  // Every /v1 route runs inside runAsCaller; reaching here without one is a wiring bug.
  if (!caller) throw new Error('REST handler ran without an authenticated caller');
  return caller;
}

/** True when the current REST caller may see `tenantId`. */
export function restMaySee(tenantId: string): boolean {
  const filter = restCaller().tenantFilter;
  return filter === undefined || filter.has(tenantId);
}

/**
 * Authenticates and authorizes a REST request for `route` on `tenantId` (the path's instance, if
 * any). Throws RpcError UNAUTHENTICATED (401) / PERMISSION_DENIED (403).
 */
export async function authorizeRest(
  req: http.IncomingMessage,
  route: string,
  tenantId: string | undefined,
  deps: { store: Store; clock: () => number },
): Promise<RestCaller> {
  const rpc = REST_RPC[route];
  if (rpc === undefined) return { name: 'anonymous', tenantFilter: undefined };
  const token = parseBearer(Array.isArray(req.headers.authorization) ? req.headers.authorization[0] : req.headers.authorization);
  let principal: OperatorPrincipal | undefined;
  let reason = 'no credentials: send Authorization: Bearer <operator token>';
  if (token !== undefined) {
    const result = authenticateOperatorToken(token, await deps.store.read.tokens.find(hashToken(token)), new Date(deps.clock()));
    if (result.ok) principal = result.principal;
    else reason = `bearer token refused: ${result.refusal}`;
  }
  const decision = principal ? authorize(principal, rpc, tenantId) : undefined;
  if (!decision?.allow) {
    const why = decision && !decision.allow ? decision.reason : reason;
    const code = decision ? Code.PERMISSION_DENIED : Code.UNAUTHENTICATED;
    await auditRefusal(deps.store, {
      time: deps.clock(),
      principal: principalName(principal),
      method: `REST ${req.method ?? ''} ${route} (${rpc})`,
      tenantId,
      reason: why,
      peer: req.socket.remoteAddress ?? '',
    });
    throw new RpcError(code, why, { errorCode: code === Code.UNAUTHENTICATED ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED' });
  }
  return { name: principalName(principal), tenantFilter: decision.tenantFilter };
}
