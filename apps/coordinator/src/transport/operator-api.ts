/**
 * CoordinatorService over gRPC: thin handlers that map proto to domain, call the services and
 * map back. Validation and rules live in the services and libs/tenancy; status codes come from
 * operator-errors.ts. The guard (security/access.ts) has authenticated and authorized each call;
 * handlers name the caller in events and hide other tenants from tenant-scoped callers.
 */
import { DEFAULT_TENANT_SPEC, validateHostId, validateTenantId, type HostState, type RestoreTarget, type TenantStatus } from '@pgs/tenancy';
import { HostState as ProtoHostState, TenantStatus as ProtoTenantStatus, type CoordinatorService } from '@pgs/proto';
import { Code, RpcError, type ServiceImpl } from '@pgs/rpc';
import { tenantFilterOf } from '@pgs/security';
import type { BackupScheduler } from '../services/backup-scheduler.js';
import type { BackupService } from '../services/backup-service.js';
import type { CoordinatorContext } from '../services/context.js';
import type { EventFeed } from './event-feed.js';
import type { FailoverManager } from '../services/failover-manager.js';
import type { MoveManager } from '../services/move-manager.js';
import type { UpgradeManager } from '../services/upgrade-manager.js';
import { PreconditionError } from '../domain/errors.js';
import { fleetStatus } from '../services/fleet-status.js';
import type { HostService } from '../services/host-service.js';
import type { InitSqlRunner } from '../services/init-sql-runner.js';
import { fromProtoBackupType, toProtoBackup, toProtoOverview, toProtoRestore, toProtoWindow } from './mappers/backup-mapper.js';
import { enumName, fromTimestamp, toNumber, toProtoRoute } from './mappers/common-mapper.js';
import {
  fromProtoInitScripts,
  fromProtoSpec,
  toProtoDatabase,
  toProtoEvent,
  toProtoHost,
  toProtoTenant,
  toProtoUpgrade,
  toProtoUser,
  toProtoVersion,
} from './mappers/operator-mapper.js';
import type { EventRecord } from '../domain/model.js';
import type { ObjectService } from '../services/object-service.js';
import type { RestoreService } from '../services/restore-service.js';
import type { RouteFeed } from './route-feed.js';
import { callerOf } from '../security/access.js';
import type { TokenService } from '../security/token-service.js';
import type { SuspendService } from '../services/suspend-service.js';
import type { TenantService } from '../services/tenant-service.js';

/** The services the operator API calls. */
export interface OperatorDeps {
  ctx: CoordinatorContext;
  tenants: TenantService;
  objects: ObjectService;
  hosts: HostService;
  routes: RouteFeed;
  events: EventFeed;
  failover: FailoverManager;
  moves: MoveManager;
  /** Absent in tests that build the API without one: UpgradeTenant then answers UNIMPLEMENTED. */
  upgrades?: UpgradeManager;
  tokens: TokenService;
  backups: BackupService;
  restores: RestoreService;
  backupScheduler: BackupScheduler;
  initSql: InitSqlRunner;
  suspends: SuspendService;
}

/** Page size: 0 = 100, at most 1000. */
function pageSize(n: number): number {
  return n === 0 ? 100 : Math.min(n, 1000);
}

/** The CoordinatorService implementation. */
export function operatorService(deps: OperatorDeps): ServiceImpl<typeof CoordinatorService> {
  const { ctx, tenants, objects, hosts } = deps;
  return {
    async createTenant(req, call) {
      const { view, generatedPassword } = await tenants.create(
        {
          id: req.id,
          spec: fromProtoSpec(req.spec, DEFAULT_TENANT_SPEC),
          ownerPassword: req.ownerPassword,
          idempotencyKey: req.idempotencyKey,
          initSql: fromProtoInitScripts(req.initSql),
          holdInitSql: req.holdInitSql,
        },
        callerOf(call),
      );
      return { tenant: toProtoTenant(view), generatedPassword };
    },
    async getTenant(req) {
      const d = await tenants.get(req.id);
      const backup = await deps.backups.overview(d.tenant);
      return {
        tenant: toProtoTenant(d),
        route: d.route ? toProtoRoute(d.route) : undefined,
        users: d.users.map(toProtoUser),
        databases: d.databases.map(toProtoDatabase),
        recentEvents: d.recentEvents.map(toProtoEvent),
        backup: backup ? toProtoOverview(backup) : undefined,
      };
    },
    async listTenants(req, call) {
      const filter = {
        status: enumName<TenantStatus>(ProtoTenantStatus, req.status),
        hostId: req.hostId || undefined,
        labels: Object.keys(req.labels).length ? { ...req.labels } : undefined,
      };
      // A tenant-scoped caller pages through its own tenants only: no hint of the others, not even the total.
      const visible = tenantFilterOf(call);
      const scoped = visible ? { ...filter, ids: [...visible] } : filter;
      const { views, nextToken, total } = await tenants.list(scoped, { size: pageSize(req.page?.pageSize ?? 0), token: req.page?.pageToken ?? '' });
      return { tenants: views.map(toProtoTenant), page: { nextPageToken: nextToken, totalSize: total } };
    },
    async updateTenant(req, call) {
      const current = (await tenants.get(req.id)).tenant;
      return { tenant: toProtoTenant(await tenants.update(req.id, toNumber(req.revision), fromProtoSpec(req.spec, current.spec), callerOf(call))) };
    },
    async deleteTenant(req, call) {
      return { tenant: toProtoTenant(await tenants.delete(req.id, toNumber(req.revision), callerOf(call))) };
    },
    async startTenant(req, call) {
      return { tenant: toProtoTenant(await tenants.start(req.id, callerOf(call))) };
    },
    async stopTenant(req, call) {
      return { tenant: toProtoTenant(await tenants.stop(req.id, callerOf(call))) };
    },
    async suspendTenant(req, call) {
      const id = validateTenantId(req.id, 'id');
      await deps.suspends.suspend(id, callerOf(call), 'operator', `by ${callerOf(call)}`);
      return { tenant: toProtoTenant(await tenants.get(id)) };
    },
    async resumeTenant(req, call) {
      const id = validateTenantId(req.id, 'id');
      await deps.suspends.resume(id, callerOf(call));
      return { tenant: toProtoTenant(await tenants.get(id)) };
    },
    async setTenantAccess(req, call) {
      return { tenant: toProtoTenant(await tenants.setAccess(req.id, req.externalAccess, callerOf(call))) };
    },
    async runInitSql(req, call) {
      const id = validateTenantId(req.tenantId, 'tenant_id');
      await deps.initSql.release(id, callerOf(call));
      return { tenant: toProtoTenant(await tenants.view(ctx.store.read, (await tenants.get(id)).tenant)) };
    },
    async recreateTenant(req, call) {
      if (req.fromBackup && req.acceptDataLoss) {
        throw new RpcError(Code.INVALID_ARGUMENT, 'give exactly one of accept_data_loss (back EMPTY) and from_backup (back from its backup)', {
          errorCode: 'RECREATE_MODE_AMBIGUOUS',
        });
      }
      if (!req.fromBackup) return { tenant: toProtoTenant(await tenants.recreate(req.id, req.acceptDataLoss, callerOf(call))) };
      const { tenant, restore } = await deps.restores.recreate(req.id, fromTimestamp(req.toTime), callerOf(call));
      return { tenant: toProtoTenant(await tenants.view(ctx.store.read, tenant)), restore: toProtoRestore(restore) };
    },
    async restoreTenant(req, call) {
      const t = req.target;
      if (t.case === undefined || (t.case === 'latest' && !t.value)) {
        throw new RpcError(Code.INVALID_ARGUMENT, 'give the restore target: to_time, to_backup_id or latest', {
          errorCode: 'RESTORE_TARGET_MISSING',
          details: { field: 'target' },
        });
      }
      const target: RestoreTarget =
        t.case === 'toTime'
          ? { kind: 'time', time: fromTimestamp(t.value) }
          : t.case === 'toBackupId'
            ? { kind: 'backup', backupId: t.value }
            : { kind: 'latest' };
      const { tenant, restore } = await deps.restores.restore(
        { id: req.id, target, asTenantId: req.asTenantId, inPlace: req.inPlace, idempotencyKey: req.idempotencyKey },
        callerOf(call),
      );
      return { tenant: toProtoTenant(await tenants.view(ctx.store.read, tenant)), restore: toProtoRestore(restore) };
    },
    async getRestore(req) {
      return { restore: toProtoRestore(await deps.restores.get(req.tenantId, req.id)) };
    },
    async createBackup(req, call) {
      return { backup: toProtoBackup(await deps.backups.create(req.tenantId, fromProtoBackupType(req.type), req.idempotencyKey, callerOf(call))) };
    },
    async listBackups(req) {
      const { backups, window } = await deps.backups.list(req.tenantId, req.all);
      return { backups: backups.map(toProtoBackup), window: toProtoWindow(window) };
    },
    async getBackup(req) {
      return { backup: toProtoBackup(await deps.backups.get(req.tenantId, req.backupId)) };
    },
    async deleteBackup(req, call) {
      return { backup: toProtoBackup(await deps.backups.delete(req.tenantId, req.backupId, req.force, callerOf(call))) };
    },
    async switchoverTenant(req, call) {
      await tenants.get(req.id); // NOT_FOUND / INVALID_ARGUMENT first
      await deps.failover.switchover(req.id, req.toHostId, callerOf(call));
      return { tenant: toProtoTenant(await tenants.get(req.id)) };
    },
    async moveTenant(req, call) {
      await tenants.get(req.id); // NOT_FOUND / INVALID_ARGUMENT first
      if (req.toHostId === '')
        throw new RpcError(Code.INVALID_ARGUMENT, 'give the host to move to (to_host_id)', { errorCode: 'TO_HOST_MISSING', details: { field: 'to_host_id' } });
      validateHostId(req.toHostId, 'to_host_id');
      if (req.memberHostId !== '') validateHostId(req.memberHostId, 'member_host_id');
      await deps.moves.start(req.id, req.toHostId, req.memberHostId, callerOf(call));
      if (req.wait) await deps.moves.wait(req.id);
      const steps = deps.moves.get(req.id)?.steps ?? [];
      return {
        tenant: toProtoTenant(await tenants.get(req.id)),
        steps: steps.map((s) => ({ name: s.name, durationMs: BigInt(s.durationMs), detail: s.detail })),
      };
    },

    async upgradeTenant(req, call) {
      await tenants.get(req.id); // NOT_FOUND / INVALID_ARGUMENT first
      const upgrades = deps.upgrades;
      if (!upgrades) throw new RpcError(Code.UNIMPLEMENTED, 'this coordinator runs no upgrades', { errorCode: 'UPGRADES_OFF' });
      const who = callerOf(call);
      const a = req.action;
      switch (a.case) {
        case 'toMajor':
          if (a.value < 10 || a.value > 99)
            throw new RpcError(Code.INVALID_ARGUMENT, `to_major must be a PostgreSQL major such as 18 (got ${a.value})`, {
              errorCode: 'INVALID_MAJOR',
              details: { field: 'to_major' },
            });
          await upgrades.start(req.id, a.value, { replicaIdentityFull: req.replicaIdentityFull, principal: who });
          break;
        case 'rollback':
        case 'finalize':
          if (!a.value)
            throw new RpcError(Code.INVALID_ARGUMENT, `${a.case} must be true when given`, { errorCode: 'INVALID_ACTION', details: { field: a.case } });
          await upgrades.request(req.id, a.case, who);
          break;
        default:
          throw new RpcError(Code.INVALID_ARGUMENT, 'say what to do: to_major (start an upgrade), rollback or finalize', {
            errorCode: 'ACTION_MISSING',
            details: { field: 'action' },
          });
      }
      let view = await upgrades.get(req.id);
      if (req.wait) {
        const outcome = view === undefined ? upgrades.finished.get(req.id) : await upgrades.wait(req.id);
        if (outcome && !outcome.ok) throw new PreconditionError('UPGRADE_ABANDONED', outcome.reason);
        view = (await upgrades.get(req.id)) ?? (outcome?.ok ? outcome.view : undefined);
      }
      return { tenant: toProtoTenant(await tenants.get(req.id)), upgrade: view ? toProtoUpgrade(view) : undefined };
    },

    async createUser(req, call) {
      return {
        user: toProtoUser(
          await objects.createUser(
            { tenantId: req.tenantId, name: req.name, password: req.password, description: req.description, idempotencyKey: req.idempotencyKey },
            callerOf(call),
          ),
        ),
      };
    },
    async getUser(req) {
      return { user: toProtoUser(await objects.getUser(req.tenantId, req.name)) };
    },
    async listUsers(req) {
      return { users: (await objects.listUsers(req.tenantId)).map(toProtoUser) };
    },
    async updateUserPassword(req, call) {
      return { user: toProtoUser(await objects.updatePassword(req.tenantId, req.name, req.password, callerOf(call))) };
    },
    async deleteUser(req, call) {
      await objects.deleteUser(req.tenantId, req.name, callerOf(call));
      return {};
    },

    async createDatabase(req, call) {
      return {
        database: toProtoDatabase(
          await objects.createDatabase(
            { tenantId: req.tenantId, name: req.name, owner: req.owner, description: req.description, idempotencyKey: req.idempotencyKey },
            callerOf(call),
          ),
        ),
      };
    },
    async getDatabase(req) {
      return { database: toProtoDatabase(await objects.getDatabase(req.tenantId, req.name)) };
    },
    async listDatabases(req) {
      return { databases: (await objects.listDatabases(req.tenantId)).map(toProtoDatabase) };
    },
    async deleteDatabase(req, call) {
      await objects.deleteDatabase(req.tenantId, req.name, callerOf(call));
      return {};
    },

    async listHosts(req) {
      return { hosts: (await hosts.list(enumName<HostState>(ProtoHostState, req.state))).map(toProtoHost) };
    },
    async getHost(req) {
      const { view, tenants: onHost } = await hosts.get(req.id);
      return { host: toProtoHost(view), tenants: (await Promise.all(onHost.map((t) => tenants.view(ctx.store.read, t)))).map(toProtoTenant) };
    },
    async cordonHost(req, call) {
      return { host: toProtoHost(await hosts.cordon(req.id, callerOf(call))) };
    },
    async uncordonHost(req, call) {
      return { host: toProtoHost(await hosts.uncordon(req.id, callerOf(call))) };
    },
    async drainHost(req, call) {
      const r = await hosts.drain(req.id, callerOf(call), req.parallel);
      return { host: toProtoHost(r.view), moves: r.moves, blocked: r.blocked };
    },

    async listVersions() {
      return { versions: ctx.versions.versions.map(toProtoVersion) };
    },
    async listRoutes(_req, call) {
      const visible = tenantFilterOf(call);
      const routes = (await ctx.store.read.routes.list()).filter((r) => !visible || visible.has(r.tenantId));
      return { routes: routes.map(toProtoRoute), revision: BigInt(await ctx.store.read.routes.revision()), routers: visible ? [] : deps.routes.peers() };
    },
    async listEvents(req, call) {
      const limit = req.limit === 0 ? 100 : Math.min(req.limit, 1000);
      const visible = tenantFilterOf(call);
      const events = await ctx.store.read.events.list({
        tenantId: req.tenantId || undefined,
        hostId: req.hostId || undefined,
        afterId: toNumber(req.afterId),
        limit,
      });
      return { events: events.filter((e) => !visible || visible.has(e.tenantId)).map(toProtoEvent) };
    },
    async watchEvents(req, stream, call) {
      const visible = tenantFilterOf(call);
      const maysee = (e: EventRecord): boolean => !visible || visible.has(e.tenantId);
      const queue: EventRecord[] = [];
      let wake: (() => void) | undefined;
      const stop = deps.events.watch({ tenantId: req.tenantId, hostId: req.hostId }, (e) => {
        if (!maysee(e)) return;
        queue.push(e);
        wake?.();
      });
      // One listener per call on the feed's shared signal (removed below), waking the wait when the coordinator stops.
      const onClosed = (): void => wake?.();
      deps.events.closed.addEventListener('abort', onClosed, { once: true });
      try {
        let lastId = 0;
        const after = toNumber(req.afterId);
        if (after > 0) {
          for (;;) {
            const page = await ctx.store.read.events.list({
              tenantId: req.tenantId || undefined,
              hostId: req.hostId || undefined,
              afterId: Math.max(after, lastId),
              limit: 1000,
            });
            for (const e of page) {
              if (maysee(e)) await stream.send({ event: toProtoEvent(e) });
              lastId = e.id;
            }
            if (page.length < 1000) break;
          }
        }
        const closed = deps.events.closed;
        while (!call.signal.aborted && !closed.aborted) {
          const e = queue.shift();
          if (!e) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              call.signal.addEventListener('abort', () => resolve(), { once: true });
              if (closed.aborted) resolve();
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
        deps.events.closed.removeEventListener('abort', onClosed);
      }
    },
    async getFleetStatus() {
      const s = await fleetStatus(ctx, deps.routes.size, ctx.backup ? deps.backupScheduler.health : undefined);
      return { ...s, routeRevision: BigInt(s.routeRevision) };
    },

    async createJoinToken(req, call) {
      return deps.tokens.createJoinToken({ kind: req.kind, componentId: req.componentId, ttlSeconds: req.ttlSeconds }, callerOf(call));
    },
    async createOperatorToken(req, call) {
      const { token } = await deps.tokens.createOperatorToken(
        { name: req.name, role: req.role, tenantIds: req.tenantIds, ttlSeconds: req.ttlSeconds },
        callerOf(call),
      );
      return { token };
    },
    async listOperatorTokens() {
      return {
        tokens: (await deps.tokens.listOperatorTokens()).map((t) => ({
          name: t.name,
          role: t.role ?? '',
          tenantIds: [...t.tenantIds],
          expiresAt: new Date(t.expiresAtMs).toISOString(),
        })),
      };
    },
    async revokeOperatorToken(req, call) {
      await deps.tokens.revokeOperatorToken(req.name, callerOf(call));
      return {};
    },
    async rotateEncryptionKey(_req, call) {
      return deps.tokens.rotateEncryptionKey(callerOf(call));
    },
  };
}
