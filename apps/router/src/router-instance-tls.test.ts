// TLS between the router and an instance: a real PostgreSQL 15 that accepts only TLS from the
// network (pg_hba hostssl), reached through a TCP relay that records every byte in both directions.
// With the feed's instance TLS on, no query text, user name or result crosses the relay in clear, in
// passthrough and in pooled mode, whatever the client's own leg; a certificate that does not name
// the address, or an instance without TLS, is refused (verify-full). With it off, the same relay
// sees the query: the check can fail.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { postgresOsUser, startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConnect, pgConnectError, psql } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';
import { createTestCa, type TestCa } from './testing/test-ca.js';

const PW = 'alice-inner-pw';
const MARKER = 'pgs-inner-marker';

/** A TCP relay that records what crosses it. */
interface Relay {
  readonly port: number;
  /** Everything relayed so far, both directions, in order of arrival. */
  bytes(): Buffer;
  clear(): void;
  close(): Promise<void>;
}

async function startRelay(listenHost: string, target: { host: string; port: number }): Promise<Relay> {
  let seen: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d: Buffer) => {
      seen.push(Buffer.from(d));
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      seen.push(Buffer.from(d));
      client.write(d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, listenHost, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    bytes: () => Buffer.concat(seen),
    clear: () => {
      seen = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

let ca: TestCa;
let otherCa: TestCa;
let dir: string;
let pg: TestPostgres;
let plainPg: TestPostgres;
let relay: Relay;
let wrongNameRelay: Relay;
let verifier: string;

/** A router against its own fake feed with `instanceTls` and `routes` (each test its own). */
async function routerWith(
  instanceTls: boolean,
  routes: Array<ReturnType<typeof routableRoute>>,
  caFile = ca.caCert,
): Promise<{ router: TestRouter; feed: FakeRouteFeed; stop(): Promise<void> }> {
  const feed = await startFakeRouteFeed({ routes, instanceTls });
  const router = await startTestRouter({ coordinator: feed.address, args: ['--tls-cert', ca.serverCert, '--tls-key', ca.serverKey, '--instance-ca', caFile] });
  await eventually(() => router.cache.size === routes.length && router.cache.instanceTls === instanceTls, 10_000, 'routes synced');
  return {
    router,
    feed,
    stop: async () => {
      await router.stop();
      await feed.stop();
    },
  };
}

beforeAll(async () => {
  ca = createTestCa();
  otherCa = createTestCa();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-inner-tls-'));
  fs.chmodSync(dir, 0o755);
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  const hba = path.join(dir, 'pg_hba.conf');
  // Its own certificate, not the router's: channel binding must not pass by accident of equal certificates.
  const own = ca.issue('instance');
  fs.copyFileSync(own.cert, cert);
  fs.copyFileSync(own.key, key);
  fs.chmodSync(key, 0o600);
  // What the agent writes for a TLS-only instance: the network gets nothing without TLS.
  fs.writeFileSync(hba, 'local all postgres trust\nhostssl all all 127.0.0.0/8 scram-sha-256\n');
  const owner = postgresOsUser();
  if (owner) for (const f of [cert, key, hba]) fs.chownSync(f, owner.uid, owner.gid);
  [pg, plainPg] = await Promise.all([
    startTestPostgres({
      users: [{ name: 'alice', password: PW, database: 'acme' }],
      settings: { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key, hba_file: hba },
    }),
    startTestPostgres({ users: [{ name: 'alice', password: PW, database: 'acme' }] }),
  ]);
  const admin = await pg.adminClient();
  try {
    verifier = (await admin.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', ['alice'])).rows[0]!.rolpassword;
  } finally {
    await admin.end();
  }
  // The test CA's certificate names 127.0.0.1; a relay on 127.0.0.2 is an address it does not name.
  relay = await startRelay('127.0.0.1', { host: pg.host, port: pg.port });
  wrongNameRelay = await startRelay('127.0.0.2', { host: pg.host, port: pg.port });
});

afterAll(async () => {
  await relay?.close();
  await wrongNameRelay?.close();
  await pg?.stop();
  await plainPg?.stop();
  ca?.remove();
  otherCa?.remove();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the marker query as alice through the router; returns the result text. */
async function markerQuery(router: TestRouter, ssl: boolean): Promise<string> {
  const client = await pgConnect({
    host: router.host,
    port: router.port,
    user: 'alice.acme',
    password: PW,
    database: 'acme',
    ssl: ssl ? { rejectUnauthorized: false } : false,
  });
  try {
    const r = await client.query<{ v: string }>(`SELECT '${MARKER}-' || 41 + 1 AS v`);
    return r.rows[0]!.v;
  } finally {
    await client.end();
  }
}

/** Client backends of alice on the instance now. */
async function activeBackends(server: TestPostgres): Promise<number> {
  const admin = await server.adminClient();
  try {
    return Number((await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'alice'")).rows[0]!.n);
  } finally {
    await admin.end();
  }
}

function expectEncrypted(bytes: Buffer): void {
  expect(bytes.length).toBeGreaterThan(100);
  // SSLRequest (length 8, code 80877103), 'S', then TLS records (handshake 0x16, version 3.x).
  expect(bytes.subarray(0, 8).toString('hex')).toBe('0000000804d2162f');
  expect(bytes[8]).toBe(0x53);
  expect(bytes[9]).toBe(0x16);
  // Words long enough not to turn up by chance in ciphertext (a two-digit number would, now and then).
  for (const text of [MARKER, 'alice', 'acme', 'SELECT']) expect(bytes.includes(Buffer.from(text)), `"${text}" crossed the relay in clear`).toBe(false);
}

describe('TLS between router and instance', () => {
  it('the instance itself refuses a plaintext connection from the network', async () => {
    const err = await pgConnectError({ host: pg.host, port: pg.port, user: 'alice', password: PW, database: 'acme', ssl: false });
    expect(err.code).toBe('28000');
    expect(err.message).toMatch(/no encryption/);
  });

  for (const mode of ['NONE', 'SESSION'] as const) {
    it(`pool mode ${mode}: nothing crosses the network in clear, for plaintext and TLS clients`, async () => {
      const r = await routerWith(true, [
        routableRoute('acme', '127.0.0.1', relay.port, { poolMode: mode, users: [{ name: 'alice', scramVerifier: verifier }] }),
      ]);
      try {
        for (const ssl of [false, true]) {
          relay.clear();
          expect(await markerQuery(r.router, ssl)).toBe(`${MARKER}-42`);
          await eventually(() => relay.bytes().length > 100, 5000, 'bytes relayed');
          expectEncrypted(relay.bytes());
          if (mode === 'SESSION') break; // a pooled server connection is reused: nothing new crosses
        }
        const metrics = (await r.router.get('/metrics')).body;
        expect(metrics).toMatch(/pgs_router_backend_tls_total\{[^}]*result="tls"[^}]*\} [1-9]/);
      } finally {
        await r.stop();
      }
    });
  }

  it("pool mode NONE: psql in plaintext to the router is not offered the inner leg's channel binding (libpq would refuse it)", async () => {
    const r = await routerWith(true, [
      routableRoute('acme', '127.0.0.1', relay.port, { poolMode: 'NONE', users: [{ name: 'alice', scramVerifier: verifier }] }),
    ]);
    try {
      relay.clear();
      const out = await psql(`host=127.0.0.1 port=${r.router.port} user=alice.acme dbname=acme sslmode=disable`, `SELECT '${MARKER}-' || 41 + 1`, PW);
      expect(out.stderr).toBe('');
      expect(out.stdout.trim()).toBe(`${MARKER}-42`);
      expectEncrypted(relay.bytes());
    } finally {
      await r.stop();
    }
  });

  for (const mode of ['NONE', 'SESSION'] as const) {
    it(`pool mode ${mode}: psql over TLS with channel_binding=require (bound to the router's certificate) reaches the instance over TLS`, async () => {
      const r = await routerWith(true, [
        routableRoute('acme', '127.0.0.1', relay.port, { poolMode: mode, users: [{ name: 'alice', scramVerifier: verifier }] }),
      ]);
      try {
        relay.clear();
        const out = await psql(
          `host=127.0.0.1 port=${r.router.port} user=alice.acme dbname=acme sslmode=require channel_binding=require`,
          `SELECT '${MARKER}-' || 41 + 1`,
          PW,
        );
        expect(out.stderr).toBe('');
        expect(out.stdout.trim()).toBe(`${MARKER}-42`);
        expectEncrypted(relay.bytes());
        // Passthrough's server connection ends with the client (PostgreSQL sees a Terminate, not a reset).
        if (mode === 'NONE') await eventually(async () => (await activeBackends(pg)) === 0, 15_000, 'the server connection closed');
      } finally {
        await r.stop();
      }
    });
  }

  it('refuses an instance whose certificate does not name the address (verify-full), or is not from the CA', async () => {
    const wrongName = await routerWith(true, [routableRoute('acme', '127.0.0.2', wrongNameRelay.port)]);
    try {
      const err = await pgConnectError({ host: wrongName.router.host, port: wrongName.router.port, user: 'alice.acme', password: PW, database: 'acme' });
      expect(err.code).toBe('08006');
      expect(JSON.stringify(wrongName.router.logs.filter((l) => l.msg === 'connection closed'))).toMatch(/127\.0\.0\.2/);
      expect((await wrongName.router.get('/metrics')).body).toMatch(/pgs_router_backend_tls_total\{[^}]*result="failed"[^}]*\} 1/);
    } finally {
      await wrongName.stop();
    }
    const otherIssuer = await routerWith(true, [routableRoute('acme', '127.0.0.1', relay.port)], otherCa.caCert);
    try {
      const err = await pgConnectError({ host: otherIssuer.router.host, port: otherIssuer.router.port, user: 'alice.acme', password: PW, database: 'acme' });
      expect(err.code).toBe('08006');
      expect(JSON.stringify(otherIssuer.router.logs.filter((l) => l.msg === 'connection closed'))).toMatch(/certificate/);
    } finally {
      await otherIssuer.stop();
    }
  });

  it('refuses an instance that offers no TLS while the fleet wants it', async () => {
    const r = await routerWith(true, [routableRoute('acme', plainPg.host, plainPg.port)]);
    try {
      const err = await pgConnectError({ host: r.router.host, port: r.router.port, user: 'alice.acme', password: PW, database: 'acme' });
      expect(err.code).toBe('08006');
      expect((await r.router.get('/metrics')).body).toMatch(/pgs_router_backend_tls_total\{[^}]*result="not_offered"[^}]*\} 1/);
    } finally {
      await r.stop();
    }
  });

  it('with instance TLS off in the fleet the router connects in plaintext (and the relay sees the query)', async () => {
    const plainRelay = await startRelay('127.0.0.1', { host: plainPg.host, port: plainPg.port });
    const r = await routerWith(false, [routableRoute('acme', '127.0.0.1', plainRelay.port)]);
    try {
      expect(await markerQuery(r.router, false)).toBe(`${MARKER}-42`);
      await eventually(() => plainRelay.bytes().includes(Buffer.from(MARKER)), 5000, 'the query seen in clear');
      expect((await r.router.get('/metrics')).body).toMatch(/pgs_router_backend_tls_total\{[^}]*result="plaintext"[^}]*\} 1/);
    } finally {
      await r.stop();
      await plainRelay.close();
    }
  });
});
