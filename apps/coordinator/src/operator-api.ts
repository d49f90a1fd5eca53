/**
 * CoordinatorService over gRPC: thin handlers that map proto to domain, call the services and
 * map back. Validation and rules live in the services and libs/tenancy; status codes come from
 * operator-errors.ts. Until the security issue adds operator tokens, every caller is "operator".
 */
import { DEFAULT_TENANT_SPEC, type HostState, type TenantStatus } from '@pgs/tenancy';
import { HostState as ProtoHostState, TenantStatus as ProtoTenantStatus, type CoordinatorService } from '@pgs/proto';
import type { ServiceImpl } from '@pgs/rpc';
import type { CoordinatorContext } from './context.js';
import { NotImplementedError } from './errors.js';
import type { EventFeed } from './event-feed.js';
import type { FailoverManager } from './failover-manager.js';
import { fleetStatus } from './fleet-status.js';
import type { HostService } from './host-service.js';
import { enumName, toNumber, toProtoRoute } from './mappers/common-mapper.js';
import { fromProtoSpec, toProtoDatabase, toProtoEvent, toProtoHost, toProtoTenant, toProtoUser, toProtoVersion } from './mappers/operator-mapper.js';
import type { EventRecord } from './model.js';
import type { ObjectService } from './object-service.js';
import type { RouteFeed } from './route-feed.js';
import type { TenantService } from './tenant-service.js';

/** The services the operator API calls. */
export interface OperatorDeps {
  ctx: CoordinatorContext;
  tenants: TenantService;
  objects: ObjectService;
  hosts: HostService;
  routes: RouteFeed;
  events: EventFeed;
  failover: FailoverManager;
}

const OPERATOR = 'operator';

function securityIssue(what: string): never {
  throw new NotImplementedError('SECURITY_NOT_IMPLEMENTED', `${what} arrives with the security baseline issue (operator tokens, join tokens, key rotation); it is not available yet`);
}

/** Page size: 0 = 100, at most 1000. */
function pageSize(n: number): number {
  return n === 0 ? 100 : Math.min(n, 1000);
}

/** The CoordinatorService implementation. */
export function operatorService(deps: OperatorDeps): ServiceImpl<typeof CoordinatorService> {
  const { ctx, tenants, objects, hosts } = deps;
  return {
    async createTenant(req) {
      const { view, generatedPassword } = tenants.create(
        { id: req.id, spec: fromProtoSpec(req.spec, DEFAULT_TENANT_SPEC), ownerPassword: req.ownerPassword, idempotencyKey: req.idempotencyKey },
        OPERATOR,
      );
      return { tenant: toProtoTenant(view), generatedPassword };
    },
    async getTenant(req) {
      const d = tenants.get(req.id);
      return {
        tenant: toProtoTenant(d),
        route: d.route ? toProtoRoute(d.route) : undefined,
        users: d.users.map(toProtoUser),
        databases: d.databases.map(toProtoDatabase),
        recentEvents: d.recentEvents.map(toProtoEvent),
      };
    },
    async listTenants(req) {
      const { views, nextToken, total } = tenants.list(
        { status: enumName<TenantStatus>(ProtoTenantStatus, req.status), hostId: req.hostId || undefined, labels: Object.keys(req.labels).length ? { ...req.labels } : undefined },
        { size: pageSize(req.page?.pageSize ?? 0), token: req.page?.pageToken ?? '' },
      );
      return { tenants: views.map(toProtoTenant), page: { nextPageToken: nextToken, totalSize: total } };
    },
    async updateTenant(req) {
      const current = tenants.get(req.id).tenant;
      return { tenant: toProtoTenant(tenants.update(req.id, toNumber(req.revision), fromProtoSpec(req.spec, current.spec), OPERATOR)) };
    },
    async deleteTenant(req) {
      return { tenant: toProtoTenant(tenants.delete(req.id, toNumber(req.revision), OPERATOR)) };
    },
    async startTenant(req) {
      return { tenant: toProtoTenant(tenants.start(req.id, OPERATOR)) };
    },
    async stopTenant(req) {
      return { tenant: toProtoTenant(tenants.stop(req.id, OPERATOR)) };
    },
    async setTenantAccess(req) {
      return { tenant: toProtoTenant(tenants.setAccess(req.id, req.externalAccess, OPERATOR)) };
    },
    async recreateTenant(req) {
      return { tenant: toProtoTenant(tenants.recreate(req.id, req.acceptDataLoss, OPERATOR)) };
    },
    async switchoverTenant(req) {
      tenants.get(req.id); // NOT_FOUND / INVALID_ARGUMENT first
      await deps.failover.switchover(req.id, req.toHostId, OPERATOR);
      return { tenant: toProtoTenant(tenants.get(req.id)) };
    },

    async createUser(req) {
      return { user: toProtoUser(objects.createUser({ tenantId: req.tenantId, name: req.name, password: req.password, description: req.description, idempotencyKey: req.idempotencyKey }, OPERATOR)) };
    },
    async getUser(req) {
      return { user: toProtoUser(objects.getUser(req.tenantId, req.name)) };
    },
    async listUsers(req) {
      return { users: objects.listUsers(req.tenantId).map(toProtoUser) };
    },
    async updateUserPassword(req) {
      return { user: toProtoUser(objects.updatePassword(req.tenantId, req.name, req.password, OPERATOR)) };
    },
    async deleteUser(req) {
      objects.deleteUser(req.tenantId, req.name, OPERATOR);
      return {};
    },

    async createDatabase(req) {
      return {
        database: toProtoDatabase(objects.createDatabase({ tenantId: req.tenantId, name: req.name, owner: req.owner, description: req.description, idempotencyKey: req.idempotencyKey }, OPERATOR)),
      };
    },
    async getDatabase(req) {
      return { database: toProtoDatabase(objects.getDatabase(req.tenantId, req.name)) };
    },
    async listDatabases(req) {
      return { databases: objects.listDatabases(req.tenantId).map(toProtoDatabase) };
    },
    async deleteDatabase(req) {
      objects.deleteDatabase(req.tenantId, req.name, OPERATOR);
      return {};
    },

    async listHosts(req) {
      return { hosts: hosts.list(enumName<HostState>(ProtoHostState, req.state)).map(toProtoHost) };
    },
    async getHost(req) {
      const { view, tenants: onHost } = hosts.get(req.id);
      return { host: toProtoHost(view), tenants: onHost.map((t) => toProtoTenant(tenants.view(ctx.store, t))) };
    },
    async cordonHost(req) {
      return { host: toProtoHost(hosts.cordon(req.id, OPERATOR)) };
    },
    async uncordonHost(req) {
      return { host: toProtoHost(hosts.uncordon(req.id, OPERATOR)) };
    },
    async drainHost(req) {
      const r = hosts.drain(req.id, OPERATOR);
      return { host: toProtoHost(r.view), moves: r.moves, blocked: r.blocked };
    },

    async listVersions() {
      return { versions: ctx.versions.versions.map(toProtoVersion) };
    },
    async listRoutes() {
      return { routes: ctx.store.listRoutes().map(toProtoRoute), revision: BigInt(ctx.store.routeRevision()), routers: deps.routes.peers() };
    },
    async listEvents(req) {
      const limit = req.limit === 0 ? 100 : Math.min(req.limit, 1000);
      return { events: ctx.store.listEvents({ tenantId: req.tenantId || undefined, hostId: req.hostId || undefined, afterId: toNumber(req.afterId), limit }).map(toProtoEvent) };
    },
    async watchEvents(req, stream, call) {
      const queue: EventRecord[] = [];
      let wake: (() => void) | undefined;
      const stop = deps.events.watch({ tenantId: req.tenantId, hostId: req.hostId }, (e) => {
        queue.push(e);
        wake?.();
      });
      try {
        let lastId = 0;
        const after = toNumber(req.afterId);
        if (after > 0) {
          for (;;) {
            const page = ctx.store.listEvents({ tenantId: req.tenantId || undefined, hostId: req.hostId || undefined, afterId: Math.max(after, lastId), limit: 1000 });
            for (const e of page) {
              await stream.send({ event: toProtoEvent(e) });
              lastId = e.id;
            }
            if (page.length < 1000) break;
          }
        }
        while (!call.signal.aborted) {
          const e = queue.shift();
          if (!e) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              call.signal.addEventListener('abort', () => resolve(), { once: true });
            });
            wake = undefined;
            continue;
          }
          if (e.id <= lastId) continue;
          await stream.send({ event: toProtoEvent(e) });
          lastId = e.id;
        }
      } finally {
        stop();
      }
    },
    async getFleetStatus() {
      const s = fleetStatus(ctx, deps.routes.size);
      return { ...s, routeRevision: BigInt(s.routeRevision) };
    },

    async createJoinToken() {
      return securityIssue('join tokens');
    },
    async createOperatorToken() {
      return securityIssue('operator tokens');
    },
    async listOperatorTokens() {
      return securityIssue('operator tokens');
    },
    async revokeOperatorToken() {
      return securityIssue('operator tokens');
    },
    async rotateEncryptionKey() {
      return securityIssue('encryption key rotation');
    },
  };
}
