// Real clients (psql/libpq 15, node-postgres, pgbench, node's TLS) through the router to a real
// PostgreSQL, with TLS from a test CA.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { encodeGssEncRequest, encodeStartupMessage, SSL_REJECT } from '@pgs/wire-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConnect, psql, run } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';
import { createTestCa, type TestCa } from './testing/test-ca.js';

const PASSWORD = 'alice-secret-pw';
let pg: TestPostgres;
let feed: FakeRouteFeed;
let ca: TestCa;
let router: TestRouter;

beforeAll(async () => {
  ca = createTestCa();
  pg = await startTestPostgres({
    users: [
      { name: 'alice', password: PASSWORD, database: 'acme' },
      { name: 'acme', password: 'acme-secret-pw', database: 'acme_own' },
    ],
  });
  feed = await startFakeRouteFeed({ routes: [routableRoute('acme', pg.host, pg.port)] });
  router = await startTestRouter({ coordinator: feed.address, args: ['--tls-cert', ca.serverCert, '--tls-key', ca.serverKey, '--sni-domain', 'db.test'] });
  await eventually(() => router.cache.revision === 1, 10_000, 'routes synced');
});

afterAll(async () => {
  await router?.stop();
  await feed?.stop();
  await pg?.stop();
  ca?.remove();
});

/** The summary line of the connection whose application_name is `app`. */
function summaryOf(app: string): Promise<Record<string, unknown>> {
  return eventually(() => router.logs.find((l) => l.msg === 'connection closed' && l.applicationName === app), 10_000, `log line of ${app}`);
}

function conninfo(extra: string): string {
  return `host=127.0.0.1 port=${router.port} ${extra}`;
}

describe('psql (libpq 15)', () => {
  it.each([
    ['disable', false],
    ['prefer', true],
    ['require', true],
  ])('sslmode=%s routes user.tenant and rewrites the user', async (mode, tlsExpected) => {
    const app = `psql-${mode}`;
    const r = await psql(conninfo(`user=alice.acme dbname=acme sslmode=${mode} application_name=${app}`), 'select current_user, current_database()', PASSWORD);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('alice|acme');
    expect(await summaryOf(app)).toMatchObject({ tenantId: 'acme', source: 'user_suffix', user: 'alice', tls: tlsExpected, outcome: 'closed_by_client' });
  });

  it('sslmode=verify-full against the test CA, with SNI <tenant>.<domain> naming the tenant', async () => {
    const app = 'psql-verify-full';
    const r = await psql(
      `host=acme.db.test hostaddr=127.0.0.1 port=${router.port} user=alice dbname=acme sslmode=verify-full sslrootcert=${ca.caCert} application_name=${app}`,
      'select current_user',
      PASSWORD,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('alice');
    expect(await summaryOf(app)).toMatchObject({ tenantId: 'acme', source: 'sni', sni: 'acme.db.test', tls: true });
  });

  it('gssencmode=prefer falls back (GSSENCRequest answered N)', async () => {
    const app = 'psql-gss';
    const r = await psql(conninfo(`user=alice.acme dbname=acme gssencmode=prefer sslmode=prefer application_name=${app}`), 'select 1', PASSWORD);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('1');
  });

  it('a user name equal to the tenant routes (the owner role is named like the tenant)', async () => {
    const r = await psql(conninfo('user=acme dbname=acme_own sslmode=disable'), 'select current_user', 'acme-secret-pw');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('acme');
  });

  it("a wrong password is the instance's own refusal, passed through", async () => {
    const r = await psql(conninfo('user=alice.acme dbname=acme sslmode=disable'), 'select 1', 'wrong-password');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('password authentication failed for user "alice"');
  });
});

describe('node-postgres', () => {
  it('routes by options=-c pgs.tenant=<t> and forwards the other options', async () => {
    const c = await pgConnect({
      host: router.host,
      port: router.port,
      user: 'alice',
      database: 'acme',
      password: PASSWORD,
      options: '-c pgs.tenant=acme -c search_path=custom_path',
      application_name: 'pg-options',
    });
    const r = await c.query("select current_user, current_setting('search_path') as sp");
    expect(r.rows[0]).toEqual({ current_user: 'alice', sp: 'custom_path' });
    await c.end();
    expect(await summaryOf('pg-options')).toMatchObject({ source: 'options', tenantId: 'acme' });
  });

  it('streams a large result and a large parameter through the pipe both ways', async () => {
    const c = await pgConnect({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: PASSWORD, application_name: 'pg-big' });
    const big = 'x'.repeat(4 * 1024 * 1024);
    const echo = await c.query('select length($1::text) as n', [big]);
    expect(echo.rows[0].n).toBe(big.length);
    const rows = await c.query('select g, repeat(md5(g::text), 20) as pad from generate_series(1, 20000) g');
    expect(rows.rowCount).toBe(20000);
    await c.end();
    const line = await summaryOf('pg-big');
    expect(line.bytesIn as number).toBeGreaterThan(big.length);
    expect(line.bytesOut as number).toBeGreaterThan(20000 * 640);
  });

  it('logs who ended the connection: a terminated backend is closed_by_server, a client that says goodbye closed_by_client', async () => {
    const c = await pgConnect({
      host: router.host,
      port: router.port,
      user: 'alice.acme',
      database: 'acme',
      password: PASSWORD,
      application_name: 'pg-killed',
    });
    c.on('error', () => {}); // the termination reaches the client as an error; expected here
    const admin = await pg.adminClient();
    try {
      await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pg-killed'");
    } finally {
      await admin.end();
    }
    expect(await summaryOf('pg-killed')).toMatchObject({ outcome: 'closed_by_server' });
    const goodbye = await pgConnect({
      host: router.host,
      port: router.port,
      user: 'alice.acme',
      database: 'acme',
      password: PASSWORD,
      application_name: 'pg-goodbye',
    });
    await goodbye.end();
    expect(await summaryOf('pg-goodbye')).toMatchObject({ outcome: 'closed_by_client' });
  });

  it('many clients at once', async () => {
    const clients = await Promise.all(
      Array.from({ length: 20 }, () => pgConnect({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: PASSWORD })),
    );
    const sums = await Promise.all(clients.map((c, i) => c.query('select $1::int + 1 as v', [i])));
    expect(sums.map((s) => s.rows[0].v)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await Promise.all(clients.map((c) => c.end()));
  });
});

describe('TLS', () => {
  it('direct TLS (ClientHello first, ALPN postgresql) then a startup packet', async () => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: router.port,
      servername: 'acme.db.test',
      ALPNProtocols: ['postgresql'],
      ca: fs.readFileSync(ca.caCert),
    });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    expect(socket.alpnProtocol).toBe('postgresql');
    socket.write(encodeStartupMessage({ parameters: { user: 'alice', database: 'acme' } }));
    const first = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    // AuthenticationSASL from the tenant's server: the tenant came from SNI.
    expect(String.fromCharCode(first[0]!)).toBe('R');
    expect(first.readUInt32BE(5)).toBe(10);
    socket.destroy();
  });

  it('direct TLS without ALPN is refused with 08P01', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port: router.port, servername: 'acme.db.test', rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((resolve) => socket.once('close', resolve));
    const reply = Buffer.concat(chunks).toString('latin1');
    expect(reply[0]).toBe('E');
    expect(reply).toContain('C08P01');
    expect(reply).toContain('ALPN');
  });

  it('a GSSENCRequest is answered N and the same connection goes on in plaintext', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: router.port });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(encodeGssEncRequest());
    const answer = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    expect(answer.equals(SSL_REJECT)).toBe(true);
    socket.write(encodeStartupMessage({ parameters: { user: 'alice.acme', database: 'acme' } }));
    const next = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    expect(String.fromCharCode(next[0]!)).toBe('R');
    socket.destroy();
  });

  it('SIGHUP reload: new handshakes get the new certificate, open connections keep working', async () => {
    const second = await startTestRouter({ coordinator: feed.address, args: ['--tls-cert', ca.serverCert, '--tls-key', ca.serverKey] });
    try {
      await eventually(() => second.cache.revision >= 1);
      const serialOf = async (): Promise<string> => {
        const s = tls.connect({ host: '127.0.0.1', port: second.port, servername: 'localhost', ALPNProtocols: ['postgresql'], ca: fs.readFileSync(ca.caCert) });
        await new Promise<void>((resolve, reject) => s.once('secureConnect', resolve).once('error', reject));
        const serial = s.getPeerCertificate().serialNumber;
        s.destroy();
        return serial;
      };
      const before = await serialOf();
      const open = await pgConnect({
        host: second.host,
        port: second.port,
        user: 'alice.acme',
        database: 'acme',
        password: PASSWORD,
        ssl: { ca: fs.readFileSync(ca.caCert), servername: 'localhost' },
      });
      const renewed = ca.issue('renewed');
      fs.copyFileSync(renewed.cert, ca.serverCert);
      fs.copyFileSync(renewed.key, ca.serverKey);
      second.reloadTls();
      const after = await serialOf();
      expect(after).not.toBe(before);
      const r = await open.query('select 42 as v');
      expect(r.rows[0].v).toBe(42);
      await open.end();
      expect((await second.get('/metrics')).body).toMatch(/pgs_router_tls_reloads_total\{result="ok",app="router"\} 1/);
    } finally {
      await second.stop();
    }
  });

  it('--tls-require refuses plaintext with 28000 and accepts TLS', async () => {
    const strict = await startTestRouter({ coordinator: feed.address, args: ['--tls-cert', ca.serverCert, '--tls-key', ca.serverKey, '--tls-require'] });
    try {
      await eventually(() => strict.cache.revision >= 1);
      const plain = await psql(`host=127.0.0.1 port=${strict.port} user=alice.acme dbname=acme sslmode=disable`, 'select 1', PASSWORD);
      expect(plain.code).not.toBe(0);
      expect(plain.stderr).toContain('this router accepts only TLS connections');
      const secure = await psql(`host=127.0.0.1 port=${strict.port} user=alice.acme dbname=acme sslmode=require`, 'select 1', PASSWORD);
      expect(secure.stdout.trim()).toBe('1');
    } finally {
      await strict.stop();
    }
  });
});

describe('pgbench', () => {
  it('initializes and runs select-only, also with a new connection per transaction (-C)', async () => {
    const env = { PGPASSWORD: PASSWORD };
    const target = ['-h', '127.0.0.1', '-p', String(router.port), '-U', 'alice.acme'];
    const init = await run('pgbench', ['-i', '-s', '1', '-q', ...target, 'acme'], env, 60_000);
    expect(init.code, init.stderr).toBe(0);
    const select = await run('pgbench', ['-S', '-c', '4', '-j', '2', '-t', '200', ...target, 'acme'], env, 60_000);
    expect(select.code, select.stderr).toBe(0);
    expect(select.stdout).toContain('number of transactions actually processed: 800/800');
    const perConnection = await run('pgbench', ['-S', '-C', '-c', '2', '-t', '25', ...target, 'acme'], env, 60_000);
    expect(perConnection.code, perConnection.stderr).toBe(0);
    expect(perConnection.stdout).toContain('number of transactions actually processed: 50/50');
  });
});
