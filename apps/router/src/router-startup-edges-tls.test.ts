// Before authentication, with TLS: a PostgreSQL 15 with ssl=on and a router with certificates get
// the same bytes (SSLRequest answered 'S', a TLS handshake, then the rest inside TLS) and must
// answer the same. README.md "Before authentication" tables the cases.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { postgresOsUser, startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';
import { GSS, normalize, request, SSL, startup } from './testing/startup-edges.js';
import { createTestCa, type TestCa } from './testing/test-ca.js';

let ca: TestCa;
let keyDir: string;
let pg: TestPostgres;
let feed: FakeRouteFeed;
let router: TestRouter;

beforeAll(async () => {
  ca = createTestCa();
  // PostgreSQL runs as the OS user postgres and wants its key private to it.
  keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-edges-tls-'));
  fs.chmodSync(keyDir, 0o755);
  const cert = path.join(keyDir, 'server.crt');
  const key = path.join(keyDir, 'server.key');
  fs.copyFileSync(ca.serverCert, cert);
  fs.copyFileSync(ca.serverKey, key);
  fs.chmodSync(key, 0o600);
  const owner = postgresOsUser();
  if (owner) for (const f of [cert, key]) fs.chownSync(f, owner.uid, owner.gid);
  pg = await startTestPostgres({
    users: [{ name: 'alice', password: 'alice-pw', database: 'acme' }],
    settings: { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key },
  });
  feed = await startFakeRouteFeed({ routes: [routableRoute('acme', pg.host, pg.port)] });
  router = await startTestRouter({ coordinator: feed.address, args: ['--tls-cert', ca.serverCert, '--tls-key', ca.serverKey] });
  await eventually(() => router.cache.size === 1, 10_000, 'routes synced');
});

afterAll(async () => {
  await router?.stop();
  await feed?.stop();
  await pg?.stop();
  ca?.remove();
  if (keyDir) fs.rmSync(keyDir, { recursive: true, force: true });
});

/** Sends `first` (an SSLRequest, maybe with more), expects 'S', then sends `inside` over TLS; what TLS delivered until the close. */
function overTls(port: number, first: Buffer, inside: Buffer | undefined, timeoutMs = 8000): Promise<{ answer: string; reply: string }> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: '127.0.0.1', port });
    raw.on('error', () => undefined);
    const timer = setTimeout(() => {
      raw.destroy();
      reject(new Error(`no close within ${timeoutMs} ms`));
    }, timeoutMs);
    raw.once('connect', () => raw.write(first));
    raw.once('data', (d: Buffer) => {
      raw.pause();
      const answer = d.subarray(0, 1).toString('latin1');
      if (answer !== 'S') {
        clearTimeout(timer);
        raw.destroy();
        resolve({ answer, reply: '' });
        return;
      }
      const got: Buffer[] = [];
      const secure = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
      secure.on('error', () => undefined);
      secure.on('data', (c: Buffer) => got.push(c));
      secure.once('secureConnect', () => {
        if (inside) secure.write(inside);
      });
      secure.once('close', () => {
        clearTimeout(timer);
        const all = Buffer.concat(got);
        resolve({ answer, reply: all.length === 0 ? '' : normalize(all) });
      });
    });
  });
}

const user: Array<[string, string]> = [
  ['user', 'alice'],
  ['database', 'acme'],
];

describe('before authentication, with TLS: the router answers as PostgreSQL 15 with ssl=on', () => {
  const cases: Array<[string, Buffer, Buffer | undefined]> = [
    ['a StartupMessage in the same write as the SSLRequest: the error comes inside TLS', Buffer.concat([request(SSL), startup(user)]), undefined],
    ['SSLRequest again inside TLS', request(SSL), request(SSL)],
    ['GSSENCRequest inside TLS', request(SSL), request(GSS)],
    ['an invalid length inside TLS', request(SSL), Buffer.from('0000000300030000', 'hex')],
    ['no user inside TLS', request(SSL), startup([['database', 'acme']])],
    ['protocol 4.0 inside TLS', request(SSL), startup(user, 0x40000)],
  ];
  it.each(cases)('%s', async (_name, first, inside) => {
    const [direct, routed] = await Promise.all([overTls(pg.port, first, inside), overTls(router.port, first, inside)]);
    expect(direct.answer).toBe('S');
    expect(routed).toEqual(direct);
  });
});
