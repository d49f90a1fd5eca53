// Before authentication the router ends a connection exactly as PostgreSQL 15 does: each case sends
// the same bytes to a real PostgreSQL and through the router (routed to that server) and expects
// the same reply, or the same close without a word. README.md "Before authentication" tables them.
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';
import { CANCEL, GSS, normalize, request, runEdgeCase, SSL, startup, type EdgeCase } from './testing/startup-edges.js';

let pg: TestPostgres;
let feed: FakeRouteFeed;
let router: TestRouter;

beforeAll(async () => {
  // A short authentication_timeout, and the same startup timeout at the router, for the silent client.
  pg = await startTestPostgres({ users: [{ name: 'alice', password: 'alice-pw', database: 'acme' }], settings: { authentication_timeout: '1s' } });
  feed = await startFakeRouteFeed({ routes: [routableRoute('acme', pg.host, pg.port)] });
  router = await startTestRouter({ coordinator: feed.address, args: ['--startup-timeout', '1s'] });
  await eventually(() => router.cache.size === 1, 10_000, 'routes synced');
});

afterAll(async () => {
  await router?.stop();
  await feed?.stop();
  await pg?.stop();
});

const user: Array<[string, string]> = [
  ['user', 'alice'],
  ['database', 'acme'],
];
const once = (name: string, send: Buffer): EdgeCase => ({ name, steps: [{ send }], end: true });
const ssl = { send: request(SSL), awaitReply: true };

const CASES: EdgeCase[] = [
  { name: 'connect and end at once', steps: [], end: true },
  once('one byte, then end', Buffer.from([0])),
  once('three bytes (part of a length word), then end', Buffer.from([0, 0, 0])),
  once('length word below 8', Buffer.from('0000000400030000', 'hex')),
  once('length word above 10000', Buffer.from('0000271500030000', 'hex')),
  once('an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')),
  once('a TLS ClientHello (no certificate at the router)', Buffer.from('160301000501000001', 'hex')),
  once('an incomplete StartupMessage, then end', startup(user).subarray(0, 12)),
  once('protocol 2.0', startup(user, 0x20000)),
  once('protocol 4.0', startup(user, 0x40000)),
  once('an unknown request code 1234.5681', request(80877105, 16)),
  once('a CancelRequest with a 0-byte key', request(CANCEL, 12)),
  once('a CancelRequest with a 300-byte key', request(CANCEL, 312)),
  once('a CancelRequest for no session', request(CANCEL, 16)),
  once('a StartupMessage of only a version', Buffer.from('0000000800030000', 'hex')),
  once('a parameter list without its terminator', Buffer.concat([Buffer.from('0000000e00030000', 'hex'), Buffer.from('user\0a')])),
  once('a name without its value', Buffer.concat([Buffer.from('0000000e00030000', 'hex'), Buffer.from('user\0\0')])),
  once('no user', startup([['database', 'acme']])),
  once(
    'an empty user',
    startup([
      ['user', ''],
      ['database', 'acme'],
    ]),
  ),
  once('no user, protocol 3.2', startup([['database', 'acme']], 0x30002)),
  once(
    'no user, a _pq_ option',
    startup([
      ['_pq_.x', '1'],
      ['database', 'acme'],
    ]),
  ),
  once('an SSLRequest of 12 bytes', request(SSL, 12)),
  { name: 'SSLRequest, then end', steps: [ssl], end: true },
  { name: 'SSLRequest, then part of a length word, then end', steps: [ssl, { send: Buffer.from([0, 0]) }], end: true },
  { name: 'SSLRequest twice', steps: [ssl, { send: request(SSL) }], end: true },
  once('SSLRequest with a StartupMessage in the same write', Buffer.concat([request(SSL), startup(user)])),
  { name: 'SSLRequest, then an invalid length', steps: [ssl, { send: Buffer.from('0000000300030000', 'hex') }], end: true },
  { name: 'SSLRequest, then a TLS record anyway', steps: [ssl, { send: Buffer.from('160301000501000001', 'hex') }], end: true },
  { name: 'SSLRequest, then no user', steps: [ssl, { send: startup([['database', 'acme']]) }], end: true },
  { name: 'a silent client (authentication_timeout at the server, the startup timeout at the router)', steps: [], end: false },
];

describe('before authentication: the router ends a connection as PostgreSQL 15 does', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const [direct, routed] = await Promise.all([runEdgeCase(pg.host, pg.port, c), runEdgeCase(router.host, router.port, c)]);
    expect(routed).toEqual(direct);
  });

  it('a repeated parameter keeps its last value at both (the server asks for the password of the last user)', async () => {
    // Both ask for a password and close silently at the server's authentication_timeout. Through
    // the router the last user names the tenant (alice.acme): the router must take the last one too.
    const [direct, routed] = await Promise.all([
      runEdgeCase(pg.host, pg.port, {
        name: 'dup',
        steps: [
          {
            send: startup([
              ['user', 'nobody'],
              ['user', 'alice'],
              ['database', 'acme'],
            ]),
          },
        ],
        end: false,
      }),
      runEdgeCase(router.host, router.port, {
        name: 'dup',
        steps: [
          {
            send: startup([
              ['user', 'nobody'],
              ['user', 'alice.acme'],
              ['database', 'acme'],
            ]),
          },
        ],
        end: false,
      }),
    ]);
    expect(direct.reply).toContain('SCRAM-SHA-256');
    expect(routed).toEqual(direct);
  });

  it('counts each case and logs one line per connection, with what PostgreSQL would have logged', async () => {
    await runEdgeCase(router.host, router.port, once('len', Buffer.from('0000000400030000', 'hex')));
    await runEdgeCase(router.host, router.port, once('v4', startup(user, 0x40000)));
    await runEdgeCase(router.host, router.port, once('nouser', startup([['database', 'acme']])));
    await runEdgeCase(router.host, router.port, once('partial', startup(user).subarray(0, 12)));
    const text = (await router.get('/metrics')).body;
    for (const reason of ['protocol_violation', 'unsupported_protocol', 'no_user']) {
      expect(text).toMatch(new RegExp(`pgs_router_connections_refused_total\\{reason="${reason}",app="router"\\} [1-9]`));
    }
    const lines = router.logs.filter((l) => l.msg === 'connection closed');
    expect(lines).toContainEqual(
      expect.objectContaining({ outcome: 'refused', reason: 'protocol_violation', sqlstate: '08P01', error: 'invalid length of startup packet' }),
    );
    expect(lines).toContainEqual(expect.objectContaining({ outcome: 'refused', reason: 'unsupported_protocol', sqlstate: '0A000' }));
    expect(lines).toContainEqual(expect.objectContaining({ outcome: 'client_closed_during_startup', error: 'incomplete startup packet' }));
  });
});

describe('GSSAPI encryption: the router answers as a PostgreSQL built without GSSAPI', () => {
  // The PostgreSQL here is built with GSSAPI and answers 'G'; the router has none and answers 'N',
  // and then holds the client to the same rules PostgreSQL's code applies after an 'N'.
  const n = 'N'.charCodeAt(0);
  it('GSSENCRequest twice: N, then protocol 1234.5680 is unsupported', async () => {
    const out = await runEdgeCase(router.host, router.port, {
      name: 'gss twice',
      steps: [{ send: request(GSS), awaitReply: true }, { send: request(GSS) }],
      end: true,
    });
    const expected = Buffer.concat([Buffer.from([n]), Buffer.from('E', 'latin1')]);
    expect(out.reply.startsWith(normalize(expected).slice(0, 3))).toBe(true);
    expect(out.reply).toContain('C0A000');
    expect(out.reply).toContain('unsupported frontend protocol 1234.5680: server supports 3.0 to 3.0');
  });

  it('GSSENCRequest with a StartupMessage in the same write: N, then the unencrypted-data error', async () => {
    const out = await runEdgeCase(router.host, router.port, once('gss pipelined', Buffer.concat([request(GSS), startup(user)])));
    expect(out.reply).toMatch(/^"N.*C08P01.*received unencrypted data after GSSAPI encryption request.*man-in-the-middle attack\./);
  });
});
