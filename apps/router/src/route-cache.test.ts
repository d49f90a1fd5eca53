import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { RouteCache } from './route-cache.js';
import { routableRoute } from './testing/routes.js';

const dirs: string[] = [];
function tempFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-route-cache-'));
  dirs.push(dir);
  return path.join(dir, 'routes.db');
}

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('RouteCache users and pool modes', () => {
  it("keeps each route's users with it: replaced by the next upsert, gone with the route or a snapshot", () => {
    const file = tempFile();
    const cache = new RouteCache(file);
    const users = [
      { name: 'alice', scramVerifier: 'SCRAM-SHA-256$4096:c2FsdA==$v1:s1' },
      { name: 'bob', scramVerifier: 'SCRAM-SHA-256$4096:c2FsdA==$v2:s2' },
    ];
    cache.apply(
      {
        snapshot: true,
        revision: 1,
        upserts: [{ ...routableRoute('acme', '127.0.0.1', 5432, { poolMode: 'SESSION', users }), revision: 1 }],
        deletedTenantIds: [],
        routers: [],
      },
      1,
    );
    expect(cache.lookup('acme')?.poolMode).toBe('SESSION');
    expect(cache.verifierOf('acme', 'alice')).toBe(users[0]!.scramVerifier);
    expect(cache.verifierOf('other', 'alice')).toBeUndefined();
    cache.apply(
      {
        snapshot: false,
        revision: 2,
        upserts: [{ ...routableRoute('acme', '127.0.0.1', 5432, { poolMode: 'SESSION', users: [users[1]!] }), revision: 2 }],
        deletedTenantIds: [],
        routers: undefined,
      },
      2,
    );
    expect(cache.verifierOf('acme', 'alice')).toBeUndefined();
    expect(cache.verifierOf('acme', 'bob')).toBe(users[1]!.scramVerifier);
    cache.apply({ snapshot: false, revision: 3, upserts: [], deletedTenantIds: ['acme'], routers: undefined }, 3);
    expect(cache.verifierOf('acme', 'bob')).toBeUndefined();
    // Verifiers are secrets of a kind: only the router's user may read the file.
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    cache.close();
  });

  it("keeps the fleet's instance TLS setting across restarts, for a read-only view too; a batch without it changes nothing", () => {
    const file = tempFile();
    const cache = new RouteCache(file);
    expect(cache.instanceTls).toBe(false);
    cache.apply({ snapshot: true, revision: 1, upserts: [], deletedTenantIds: [], routers: [], instanceTls: true }, 1);
    expect(cache.instanceTls).toBe(true);
    const view = new RouteCache(file, { readOnly: true });
    expect(view.instanceTls).toBe(true);
    cache.apply({ snapshot: false, revision: 1, upserts: [], deletedTenantIds: [], routers: undefined }, 2);
    expect(cache.instanceTls).toBe(true);
    cache.apply({ snapshot: false, revision: 1, upserts: [], deletedTenantIds: [], routers: undefined, instanceTls: false }, 3);
    // The view keeps what it read until it looks at the file again.
    expect(view.refresh()).toBe(true);
    expect(view.instanceTls).toBe(false);
    cache.close();
    view.close();
    const reopened = new RouteCache(file);
    expect(reopened.instanceTls).toBe(false);
    reopened.close();
  });

  it("a read-only view (a worker's) serves lookups from memory and reads the file again once refresh() sees a committed batch", () => {
    const file = tempFile();
    const cache = new RouteCache(file);
    const users = [{ name: 'alice', scramVerifier: 'SCRAM-SHA-256$4096:c2FsdA==$v1:s1' }];
    const batch = (revision: number, port: number, over: Parameters<typeof routableRoute>[3] = {}) => ({
      snapshot: false,
      revision,
      upserts: [{ ...routableRoute('acme', '127.0.0.1', port, { poolMode: 'TRANSACTION', users, ...over }), revision }],
      deletedTenantIds: [],
      routers: undefined,
    });
    cache.apply(batch(1, 5432), 1);
    let told = 0;
    cache.onApplied(() => told++);
    const view = new RouteCache(file, { readOnly: true });
    const first = view.lookup('acme');
    expect(first).toMatchObject({ port: 5432, poolMode: 'TRANSACTION' });
    // The same object again: no read of the file (a transaction-mode transaction looks its route up several times).
    expect(view.lookup('acme')).toBe(first);
    expect(view.verifierOf('acme', 'alice')).toBe(users[0]!.scramVerifier);
    expect(view.refresh()).toBe(false);
    expect(view.lookup('acme')).toBe(first);

    cache.apply(batch(2, 6543, { users: [{ name: 'alice', scramVerifier: 'SCRAM-SHA-256$4096:c2FsdA==$v2:s2' }] }), 2);
    expect(told).toBe(1);
    // Until it looks, the view serves what it read; then the new route and verifier.
    expect(view.lookup('acme')).toBe(first);
    expect(view.refresh()).toBe(true);
    expect(view.lookup('acme')).toMatchObject({ port: 6543 });
    expect(view.verifierOf('acme', 'alice')).toBe('SCRAM-SHA-256$4096:c2FsdA==$v2:s2');
    cache.apply({ snapshot: false, revision: 3, upserts: [], deletedTenantIds: ['acme'], routers: undefined }, 3);
    expect(view.refresh()).toBe(true);
    expect(view.lookup('acme')).toBeUndefined();
    expect(view.verifierOf('acme', 'alice')).toBeUndefined();
    cache.close();
    view.close();
    // A note that comes after the view closed (a stopping worker) is no error.
    expect(view.refresh()).toBe(false);
  });

  it('migrates a schema-1 file: routes kept (as passthrough), revision reset so the feed resends a snapshot, mode tightened', () => {
    const file = tempFile();
    const old = new Database(file);
    old.exec(`CREATE TABLE routes (tenant_id TEXT PRIMARY KEY, host_id TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL, state TEXT NOT NULL,
      reason TEXT NOT NULL, external_access INTEGER NOT NULL, connection_limit INTEGER NOT NULL, revision INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE router_peers (router_id TEXT PRIMARY KEY, cancel_address TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO routes VALUES ('acme', 'h1', '127.0.0.1', 5432, 'ROUTABLE', '', 1, 0, 7);
      INSERT INTO meta VALUES ('revision', 7);
      PRAGMA user_version = 1;`);
    old.close();
    fs.chmodSync(file, 0o644);
    const cache = new RouteCache(file);
    expect(cache.revision).toBe(0);
    expect(cache.lookup('acme')).toMatchObject({ tenantId: 'acme', poolMode: 'NONE', revision: 7 });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    cache.close();
  });
});
