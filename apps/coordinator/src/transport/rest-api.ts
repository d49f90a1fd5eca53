/**
 * The JSON REST API in its public, documented shape, over the same services as the gRPC API, plus
 * /openapi.json. Errors are `{ "error": { "code", "error_code", "message", "field"? } }` with the
 * HTTP status of the gRPC code (400, 404, 409, 501, 503). Create requests honour an
 * `Idempotency-Key` header.
 */
import type http from 'node:http';
import { DEFAULT_TENANT_SPEC, validateHostId, validateTenantId } from '@pgs/tenancy';
import { Code, RpcError } from '@pgs/rpc';
import type { Logger } from '@pgs/service-kit';
import type { TenantBackupHealth } from '../services/backup-scheduler.js';
import type { BackupService } from '../services/backup-service.js';
import type { CoordinatorContext } from '../services/context.js';
import type { EventFeed } from './event-feed.js';
import { notFound } from '../domain/errors.js';
import { fleetStatus } from '../services/fleet-status.js';
import type { HostService } from '../services/host-service.js';
import type { MoveManager } from '../services/move-manager.js';
import type { UpgradeManager, UpgradeView } from '../services/upgrade-manager.js';
import { PreconditionError } from '../domain/errors.js';
import { backupStateJson, eventJson, hostJson } from './mappers/rest-fleet-mapper.js';
import { asObject, databaseJson, instanceJson, ownerName, read, specFromInstance, userJson, versionJson } from './mappers/rest-mapper.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { ObjectService } from '../services/object-service.js';
import { openApiDocument } from './openapi.js';
import { httpStatusOf, toRpcError } from './operator-errors.js';
import { backupRoutes } from './rest-backup-routes.js';
import { EVENT_STREAM_PATH, serveEventStream } from './rest-event-stream.js';
import type { RestoreService } from '../services/restore-service.js';
import type { RouteFeed } from './route-feed.js';
import type { SuspendService } from '../services/suspend-service.js';
import { authorizeRest, restCaller, restMaySee, runAsCaller } from '../security/rest-auth.js';
import type { TenantService } from '../services/tenant-service.js';

/** What the REST handlers use. */
export interface RestDeps {
  ctx: CoordinatorContext;
  tenants: TenantService;
  objects: ObjectService;
  hosts: HostService;
  moves: MoveManager;
  /** Suspend and resume by hand (the same service, and so the same errors, as gRPC SuspendTenant and ResumeTenant). */
  suspends: SuspendService;
  /** Absent: POST .../upgrade answers 501. */
  upgrades?: UpgradeManager;
  routes: RouteFeed;
  metrics: CoordinatorMetrics;
  log: Logger;
  backups: BackupService;
  restores: RestoreService;
  /** The backup walk's per-tenant health (fleet problems); undefined when backups are off. */
  backupHealth?: ReadonlyMap<string, TenantBackupHealth> | undefined;
  /** Committed events for GET /v1/events/stream (the feed gRPC WatchEvents follows). */
  events: EventFeed;
}

interface Reply {
  status: number;
  body: unknown;
}

type Handler = (params: string[], body: unknown, req: http.IncomingMessage) => Reply | Promise<Reply>;

const MAX_BODY = 1 << 20;

function readBody(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new RpcError(Code.INVALID_ARGUMENT, `request body larger than ${MAX_BODY} bytes`, { details: { field: 'body' } }));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new RpcError(Code.INVALID_ARGUMENT, `the body is not JSON: ${(err as Error).message}`, { details: { field: 'body' } }));
      }
    });
    req.on('error', reject);
  });
}

function header(req: http.IncomingMessage, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

/** The route table of the REST API: [method, pattern, name, handler]. */
function routesOf(d: RestDeps): [string, RegExp, string, Handler][] {
  const { ctx, tenants, objects } = d;
  const since = new Date(ctx.clock()).toISOString();
  const seg = '([^/]+)';
  // The backup walk's state of a tenant, when backups are on and the walk has seen it.
  const withBackupState = (json: Record<string, unknown>): Record<string, unknown> => {
    const health = d.backupHealth?.get(json.uuid as string);
    return health ? { ...json, backup_state: backupStateJson(health) } : json;
  };
  const instance = async (id: string): Promise<Reply> => {
    const details = await tenants.get(id);
    return { status: 200, body: withBackupState(instanceJson(details, details.route)) };
  };
  return [
    ['GET', /^\/openapi\.json$/, 'openapi', () => ({ status: 200, body: openApiDocument() })],
    [
      'GET',
      /^\/v1\/types\/postgres\/versions\/?$/,
      'versions',
      () => ({ status: 200, body: { versions: ctx.versions.versions.map((v) => versionJson(v, since)) } }),
    ],
    [
      'GET',
      new RegExp(`^/v1/types/postgres/versions/${seg}$`),
      'version',
      ([id]) => {
        const v = ctx.versions.versions.find((x) => x.id === id);
        if (!v) throw notFound.version(id ?? '');
        return { status: 200, body: versionJson(v, since) };
      },
    ],
    [
      'POST',
      /^\/v1\/postgres\/instances\/?$/,
      'instances.create',
      async (_p, raw, req) => {
        const body = asObject(raw);
        const id = read.str(body, 'name') ?? '';
        const { view, generatedPassword } = await tenants.create(
          {
            id,
            spec: specFromInstance(body, DEFAULT_TENANT_SPEC),
            ownerPassword: read.str(body, 'password') ?? '',
            idempotencyKey: header(req, 'idempotency-key'),
          },
          restCaller().name,
        );
        return {
          status: 201,
          body: {
            ...instanceJson(view, await ctx.store.read.routes.get(view.tenant.id)),
            ...(generatedPassword ? { generated_password: generatedPassword } : {}),
          },
        };
      },
    ],
    [
      'GET',
      /^\/v1\/postgres\/instances\/?$/,
      'instances.list',
      async () => {
        // A tenant-scoped token's filter goes to the database: only its own tenants are read.
        const scope = restCaller().tenantFilter;
        const { views } = await tenants.list(scope ? { ids: [...scope] } : {}, { size: 1_000_000, token: '' });
        return {
          status: 200,
          body: { instances: await Promise.all(views.map(async (v) => withBackupState(instanceJson(v, await ctx.store.read.routes.get(v.tenant.id))))) },
        };
      },
    ],
    ['GET', new RegExp(`^/v1/postgres/instances/${seg}$`), 'instances.get', async ([id]) => instance(id ?? '')],
    [
      'PUT',
      new RegExp(`^/v1/postgres/instances/${seg}$`),
      'instances.update',
      async ([id = ''], raw, req) => {
        const body = asObject(raw);
        const current = (await tenants.get(id)).tenant;
        // The revision read: in the body, or as If-Match (an ETag is the revision).
        const revision = read.num(body, 'revision') ?? Number(header(req, 'if-match').replaceAll('"', '') || NaN);
        await tenants.update(id, Number.isNaN(revision) ? -1 : revision, specFromInstance(body, current.spec), restCaller().name);
        return instance(id);
      },
    ],
    [
      'DELETE',
      new RegExp(`^/v1/postgres/instances/${seg}$`),
      'instances.delete',
      async ([id = ''], _b, req) => {
        const view = await tenants.delete(id, Number(header(req, 'if-match').replaceAll('"', '') || 0), restCaller().name);
        return { status: 202, body: instanceJson(view) };
      },
    ],
    [
      'POST',
      new RegExp(`^/v1/postgres/instances/${seg}/move$`),
      'instances.move',
      async ([id = ''], raw) => {
        const body = asObject(raw);
        await tenants.get(id);
        const to = read.str(body, 'to_host_id') ?? '';
        if (to === '')
          throw new RpcError(Code.INVALID_ARGUMENT, 'give the host to move to (to_host_id)', {
            errorCode: 'TO_HOST_MISSING',
            details: { field: 'to_host_id' },
          });
        validateHostId(to, 'to_host_id');
        const member = read.str(body, 'member_host_id') ?? '';
        if (member !== '') validateHostId(member, 'member_host_id');
        const move = await d.moves.start(id, to, member, restCaller().name);
        if (read.bool(body, 'wait') ?? false) await d.moves.wait(id);
        const steps = (d.moves.get(id) ?? move).steps.map((st) => ({ name: st.name, duration_ms: st.durationMs, detail: st.detail }));
        return {
          status: 200,
          body: { ...((await instance(id)).body as Record<string, unknown>), move: { from_host_id: move.fromHostId, to_host_id: move.toHostId, steps } },
        };
      },
    ],
    [
      'POST',
      new RegExp(`^/v1/postgres/instances/${seg}/upgrade$`),
      'instances.upgrade',
      async ([id = ''], raw) => {
        const body = asObject(raw);
        await tenants.get(id);
        const upgrades = d.upgrades;
        if (!upgrades) throw new RpcError(Code.UNIMPLEMENTED, 'this coordinator runs no upgrades', { errorCode: 'UPGRADES_OFF' });
        const to = read.num(body, 'to_major');
        const rollback = read.bool(body, 'rollback') ?? false;
        const finalize = read.bool(body, 'finalize') ?? false;
        if ([to !== undefined, rollback, finalize].filter(Boolean).length !== 1)
          throw new RpcError(Code.INVALID_ARGUMENT, 'give exactly one of to_major, rollback: true or finalize: true', {
            errorCode: 'ACTION_MISSING',
            details: { field: 'to_major' },
          });
        if (to !== undefined) {
          if (!Number.isInteger(to) || to < 10 || to > 99)
            throw new RpcError(Code.INVALID_ARGUMENT, `to_major must be a PostgreSQL major such as 18 (got ${to})`, {
              errorCode: 'INVALID_MAJOR',
              details: { field: 'to_major' },
            });
          await upgrades.start(id, to, { replicaIdentityFull: read.bool(body, 'replica_identity_full') ?? false, principal: restCaller().name });
        } else await upgrades.request(id, rollback ? 'rollback' : 'finalize', restCaller().name);
        let view: UpgradeView | undefined = await upgrades.get(id);
        if (read.bool(body, 'wait') ?? false) {
          const outcome = view === undefined ? upgrades.finished.get(id) : await upgrades.wait(id);
          if (outcome && !outcome.ok) throw new PreconditionError('UPGRADE_ABANDONED', outcome.reason);
          view = (await upgrades.get(id)) ?? (outcome?.ok ? outcome.view : undefined);
        }
        const upgrade = view && {
          phase: view.phase,
          from_major: view.fromMajor,
          to_major: view.toMajor,
          from_host_id: view.fromHostId,
          to_host_id: view.toHostId,
          reason: view.reason,
          copy_ms: view.copyMs,
          switch_ms: view.switchMs,
          keep_until: view.keepUntil > 0 ? new Date(view.keepUntil).toISOString() : null,
        };
        return { status: 200, body: { ...((await instance(id)).body as Record<string, unknown>), upgrade: upgrade ?? null } };
      },
    ],
    [
      'POST',
      new RegExp(`^/v1/postgres/instances/${seg}/start$`),
      'instances.start',
      async ([id = '']) => ({ status: 200, body: instanceJson(await tenants.start(id, restCaller().name)) }),
    ],
    [
      'POST',
      new RegExp(`^/v1/postgres/instances/${seg}/stop$`),
      'instances.stop',
      async ([id = '']) => ({ status: 200, body: instanceJson(await tenants.stop(id, restCaller().name)) }),
    ],
    [
      'POST',
      new RegExp(`^/v1/postgres/instances/${seg}/suspend$`),
      'instances.suspend',
      async ([id = '']) => {
        const tenantId = validateTenantId(id, 'id');
        await d.suspends.suspend(tenantId, restCaller().name, 'operator', `by ${restCaller().name}`);
        return instance(tenantId);
      },
    ],
    [
      'POST',
      new RegExp(`^/v1/postgres/instances/${seg}/resume$`),
      'instances.resume',
      async ([id = '']) => {
        const tenantId = validateTenantId(id, 'id');
        await d.suspends.resume(tenantId, restCaller().name);
        return instance(tenantId);
      },
    ],
    [
      'PUT',
      new RegExp(`^/v1/postgres/instances/${seg}/access$`),
      'instances.access',
      async ([id = ''], raw) => ({
        status: 200,
        body: instanceJson(await tenants.setAccess(id, read.bool(asObject(raw), 'external_access') ?? false, restCaller().name)),
      }),
    ],
    [
      'POST',
      new RegExp(`^/v1/postgres/instances/${seg}/users/?$`),
      'users.create',
      async ([id = ''], raw, req) => {
        const body = asObject(raw);
        const user = await objects.createUser(
          {
            tenantId: id,
            name: read.str(body, 'name') ?? '',
            password: read.str(body, 'password') ?? '',
            description: read.str(body, 'description') ?? '',
            idempotencyKey: header(req, 'idempotency-key'),
          },
          restCaller().name,
        );
        return { status: 201, body: userJson(user) };
      },
    ],
    [
      'GET',
      new RegExp(`^/v1/postgres/instances/${seg}/users/?$`),
      'users.list',
      async ([id = '']) => ({ status: 200, body: { users: (await objects.listUsers(id)).map(userJson) } }),
    ],
    [
      'GET',
      new RegExp(`^/v1/postgres/instances/${seg}/users/${seg}$`),
      'users.get',
      async ([id = '', name = '']) => ({ status: 200, body: userJson(await objects.getUser(id, name)) }),
    ],
    [
      'PUT',
      new RegExp(`^/v1/postgres/instances/${seg}/users/${seg}$`),
      'users.update',
      async ([id = '', name = ''], raw) => ({
        status: 200,
        body: userJson(await objects.updatePassword(id, name, read.str(asObject(raw), 'password') ?? '', restCaller().name)),
      }),
    ],
    [
      'DELETE',
      new RegExp(`^/v1/postgres/instances/${seg}/users/${seg}$`),
      'users.delete',
      async ([id = '', name = '']) => {
        await objects.deleteUser(id, name, restCaller().name);
        return { status: 204, body: undefined };
      },
    ],
    [
      'POST',
      new RegExp(`^/v1/postgres/instances/${seg}/databases/?$`),
      'databases.create',
      async ([id = ''], raw, req) => {
        const body = asObject(raw);
        const db = await objects.createDatabase(
          {
            tenantId: id,
            name: read.str(body, 'name') ?? '',
            owner: ownerName(read.str(body, 'owner') ?? ''),
            description: read.str(body, 'description') ?? '',
            idempotencyKey: header(req, 'idempotency-key'),
          },
          restCaller().name,
        );
        return { status: 201, body: databaseJson(db) };
      },
    ],
    [
      'GET',
      new RegExp(`^/v1/postgres/instances/${seg}/databases/?$`),
      'databases.list',
      async ([id = '']) => ({ status: 200, body: { databases: (await objects.listDatabases(id)).map(databaseJson) } }),
    ],
    [
      'GET',
      new RegExp(`^/v1/postgres/instances/${seg}/databases/${seg}$`),
      'databases.get',
      async ([id = '', name = '']) => ({ status: 200, body: databaseJson(await objects.getDatabase(id, name)) }),
    ],
    [
      'DELETE',
      new RegExp(`^/v1/postgres/instances/${seg}/databases/${seg}$`),
      'databases.delete',
      async ([id = '', name = '']) => {
        await objects.deleteDatabase(id, name, restCaller().name);
        return { status: 204, body: undefined };
      },
    ],
    ...backupRoutes(d),
    ['GET', /^\/v1\/fleet$/, 'fleet', async () => ({ status: 200, body: await fleetStatus(ctx, d.routes.size, d.backupHealth) })],
    [
      'GET',
      /^\/v1\/routes$/,
      'routes',
      async () => {
        // The routers following the feed, as gRPC ListRoutes shows them: only to fleet-wide callers.
        const routers = restCaller().tenantFilter ? [] : d.routes.peers().map((p) => ({ id: p.routerId, cancel_address: p.cancelAddress }));
        return {
          status: 200,
          body: {
            revision: await ctx.store.read.routes.revision(),
            routes: (await ctx.store.read.routes.list()).filter((r) => restMaySee(r.tenantId)),
            routers,
          },
        };
      },
    ],
    ['GET', /^\/v1\/hosts\/?$/, 'hosts.list', async () => ({ status: 200, body: { hosts: (await d.hosts.list()).map(hostJson) } })],
    [
      'GET',
      new RegExp(`^/v1/hosts/${seg}$`),
      'hosts.get',
      async ([id]) => {
        const { view, tenants } = await d.hosts.get(validateHostId(id ?? '', 'id'));
        return { status: 200, body: { ...hostJson(view), tenants: tenants.map((t) => ({ id: t.id, status: t.status, reason: t.statusReason })) } };
      },
    ],
    [
      'GET',
      /^\/v1\/events\/?$/,
      'events.list',
      async (_p, _b, req) => {
        // The same rules as gRPC ListEvents: newest `limit` (100, at most 1000) or those after an id.
        const q = new URL(req.url ?? '/', 'http://localhost').searchParams;
        const limit = Math.min(Math.max(Math.floor(Number(q.get('limit') ?? 100)) || 100, 1), 1000);
        const afterId = Math.max(Math.floor(Number(q.get('after') ?? 0)) || 0, 0);
        const events = await ctx.store.read.events.list({ tenantId: q.get('tenant') || undefined, hostId: q.get('host') || undefined, afterId, limit });
        return { status: 200, body: { events: events.filter((e) => restMaySee(e.tenantId)).map(eventJson) } };
      },
    ],
    // Answered by serveEventStream once authorized (see restHandler); listed for routing and auth.
    ['GET', new RegExp(`^${EVENT_STREAM_PATH}$`), 'events.stream', async () => ({ status: 500, body: undefined })],
  ];
}

function send(res: http.ServerResponse, reply: Reply): void {
  if (reply.body === undefined) {
    res.writeHead(reply.status);
    res.end();
    return;
  }
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'content-type': 'application/json' });
  res.end(text);
}

/** The extraRoutes handler for the ops server: answers /v1/... and /openapi.json, else false. */
export function restHandler(d: RestDeps): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  const table = routesOf(d);
  return async (req, res) => {
    const path = decodeURI((req.url ?? '/').split('?')[0] ?? '/');
    const matches = table.filter(([, pattern]) => pattern.test(path));
    if (matches.length === 0) return false;
    const started = performance.now();
    const route = matches.find(([method]) => method === req.method);
    let reply: Reply;
    let name = route?.[2] ?? 'method_not_allowed';
    try {
      if (!route) {
        reply = {
          status: 405,
          body: { error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method} is not allowed on ${path}; allowed: ${matches.map(([m]) => m).join(', ')}` } },
        };
      } else {
        const params = (route[1].exec(path) ?? []).slice(1);
        const instanceId = params[0] !== undefined && path.startsWith('/v1/postgres/instances/') ? params[0] : undefined;
        if (instanceId !== undefined) validateTenantId(instanceId, 'uuid');
        const caller = await authorizeRest(req, route[2], instanceId, { store: d.ctx.store, clock: d.ctx.clock });
        if (route[2] === 'events.stream') {
          await serveEventStream(req, res, caller, { feed: d.events, store: d.ctx.store });
          return true;
        }
        const body = req.method === 'POST' || req.method === 'PUT' ? await readBody(req) : undefined;
        reply = await runAsCaller(caller, () => route[3](params, body, req));
      }
    } catch (err) {
      const mapped = toRpcError(err);
      if (!mapped) {
        d.log.error({ err, path, method: req.method }, 'REST request failed');
        reply = { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error' } } };
      } else {
        reply = {
          status: httpStatusOf(mapped.code),
          body: {
            error: {
              code: mapped.codeName,
              error_code: mapped.errorCode,
              message: mapped.message,
              ...(mapped.details.field ? { field: mapped.details.field } : {}),
            },
          },
        };
      }
      name = route?.[2] ?? name;
    }
    send(res, reply);
    d.metrics.httpDuration.observe({ route: name, status: String(reply.status) }, (performance.now() - started) / 1000);
    return true;
  };
}
