/**
 * The REST routes of backups and restores (the public API's shape), over the same services as gRPC:
 *   GET/POST   /v1/postgres/instances/{id}/backups
 *   GET/DELETE /v1/postgres/instances/{id}/backups/{backupId}   (DELETE ?force=true)
 *   POST       /v1/postgres/instances/{id}/restore              { to_time | backup_id | latest, as_instance?, in_place? }
 *   GET        /v1/postgres/instances/{id}/restores/{restoreId}
 */
import type http from 'node:http';
import type { BackupService } from '../services/backup-service.js';
import { asObject, instanceJson } from './mappers/rest-mapper.js';
import { backupJson, backupTypeOf, restoreJson, restoreTargetOf, windowJson } from './mappers/rest-backup-mapper.js';
import type { RestoreService } from '../services/restore-service.js';
import { restCaller } from '../security/rest-auth.js';
import type { TenantService } from '../services/tenant-service.js';

/** A reply of a REST handler. */
export interface RestReply {
  status: number;
  body: unknown;
}

/** One route: method, path pattern, name (REST_RPC key), handler. */
export type RestRoute = [string, RegExp, string, (params: string[], body: unknown, req: http.IncomingMessage) => RestReply | Promise<RestReply>];

function query(req: http.IncomingMessage, name: string): string | null {
  return new URL(req.url ?? '/', 'http://localhost').searchParams.get(name);
}

function header(req: http.IncomingMessage, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

/** The backup and restore routes. */
export function backupRoutes(d: { tenants: TenantService; backups: BackupService; restores: RestoreService }): RestRoute[] {
  const seg = '([^/]+)';
  const base = `^/v1/postgres/instances/${seg}`;
  return [
    [
      'POST',
      new RegExp(`${base}/backups/?$`),
      'backups.create',
      async ([id = ''], raw, req) => ({
        status: 201,
        body: backupJson(await d.backups.create(id, backupTypeOf(raw === undefined ? {} : asObject(raw)), header(req, 'idempotency-key'), restCaller().name)),
      }),
    ],
    [
      'GET',
      new RegExp(`${base}/backups/?$`),
      'backups.list',
      async ([id = ''], _b, req) => {
        const { backups, window } = await d.backups.list(id, query(req, 'all') === 'true');
        return { status: 200, body: { backups: backups.map(backupJson), window: windowJson(window) } };
      },
    ],
    [
      'GET',
      new RegExp(`${base}/backups/${seg}$`),
      'backups.get',
      async ([id = '', backupId = '']) => ({ status: 200, body: backupJson(await d.backups.get(id, backupId)) }),
    ],
    [
      'DELETE',
      new RegExp(`${base}/backups/${seg}$`),
      'backups.delete',
      async ([id = '', backupId = ''], _b, req) => ({
        status: 200,
        body: backupJson(await d.backups.delete(id, backupId, query(req, 'force') === 'true', restCaller().name)),
      }),
    ],
    [
      'POST',
      new RegExp(`${base}/restore$`),
      'instances.restore',
      async ([id = ''], raw, req) => {
        const body = asObject(raw);
        const asTenantId = typeof body.as_instance === 'string' ? body.as_instance : '';
        const { tenant, restore } = await d.restores.restore(
          { id, target: restoreTargetOf(body), asTenantId, inPlace: body.in_place === true, idempotencyKey: header(req, 'idempotency-key') },
          restCaller().name,
        );
        return { status: 202, body: { instance: instanceJson(await d.tenants.get(tenant.id)), restore: restoreJson(restore) } };
      },
    ],
    [
      'GET',
      new RegExp(`${base}/restores/${seg}$`),
      'restores.get',
      async ([id = '', restoreId = '']) => ({ status: 200, body: restoreJson(await d.restores.get(id, restoreId)) }),
    ],
  ];
}
