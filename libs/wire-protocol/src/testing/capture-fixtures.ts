// Records the first packets real clients send, for the golden tests.
//
//   npx tsx libs/wire-protocol/src/testing/capture-fixtures.ts
//
// Listens on 127.0.0.1 (a free port), runs psql, pgbench and node-postgres against it, answers
// 'N' to SSLRequest/GSSENCRequest so the client goes on to its StartupMessage, then refuses the
// StartupMessage with a FATAL ErrorResponse so the client exits. Writes
// src/testing/fixtures/client-startup-packets.json. Needs psql/pgbench on PATH and `pg` installed
// at the workspace root. Not part of the test run: its output is committed.
//
// libpq sends GSSENCRequest only when it finds a Kerberos credential cache. No KDC is needed to
// see the request: a cache file holding just a default principal satisfies that check, and the
// 'N' answer ends the GSS attempt before any ticket is asked for.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeErrorResponse, SqlState, SSL_REJECT } from '../index.js';
import type { ClientFixture } from './fixtures.js';

const CANCEL = 80877102;
const SSL = 80877103;
const GSS = 80877104;

interface Recorder {
  port: number;
  connections: string[][];
  close(): Promise<void>;
}

async function listen(): Promise<Recorder> {
  const connections: string[][] = [];
  const server = net.createServer((socket) => {
    const packets: string[] = [];
    connections.push(packets);
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (buffered.length > 0 && buffered[0] === 0x16) {
          packets.push(buffered.toString('hex'));
          socket.destroy();
          return;
        }
        if (buffered.length < 8) return;
        const length = buffered.readUInt32BE(0);
        if (buffered.length < length) return;
        const packet = buffered.subarray(0, length);
        buffered = buffered.subarray(length);
        packets.push(packet.toString('hex'));
        const code = packet.readUInt32BE(4);
        if (code === SSL || code === GSS) {
          socket.write(SSL_REJECT);
        } else if (code === CANCEL) {
          socket.end();
          return;
        } else {
          socket.end(
            encodeErrorResponse({
              severity: 'FATAL',
              code: SqlState.InvalidAuthorizationSpecification,
              message: 'fixture capture: connection refused on purpose',
            }),
          );
          return;
        }
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', PGCONNECT_TIMEOUT: '5', ...env },
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Writes an MIT ccache (format 0x0504) with only a default principal, alice@EXAMPLE.COM. */
function fakeCredentialCache(): string {
  const str = (s: string) => {
    const b = Buffer.from(s);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const header = Buffer.from([0x05, 0x04, 0x00, 0x00]);
  const nameTypeAndCount = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]); // KRB5_NT_PRINCIPAL, one component
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'pgs-capture-')), 'krb5cc');
  writeFileSync(file, Buffer.concat([header, nameTypeAndCount, str('EXAMPLE.COM'), str('alice')]));
  return `FILE:${file}`;
}

function version(cmd: string): string {
  return execFileSync(cmd, ['--version'], { encoding: 'utf8' }).trim();
}

interface Scenario {
  name: string;
  client: string;
  describe: (port: number) => string;
  exec: (port: number) => Promise<unknown>;
}

const conninfo = (port: number, extra: string) => `host=127.0.0.1 port=${port} user=alice dbname=acme ${extra}`.trim();

function psql(name: string, extra: string, env: Record<string, string> = {}): Scenario {
  const envText = Object.entries(env)
    .map(([k]) => `${k}=<cache with a principal only> `)
    .join('');
  return {
    name,
    client: version('psql'),
    describe: (port) => `${envText}psql -w "${conninfo(port, extra)}" -c "select 1"`,
    exec: (port) => run('psql', ['-w', conninfo(port, extra), '-c', 'select 1'], env),
  };
}

async function nodePostgres(port: number, ssl: boolean): Promise<void> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'alice',
    database: 'acme',
    application_name: 'pg-capture',
    ...(ssl ? { ssl: { rejectUnauthorized: false } } : { ssl: false }),
  });
  client.on('error', () => undefined);
  await client.connect().then(
    () => client.end(),
    () => undefined,
  );
}

const pgVersion = (): string =>
  `node-postgres ${(JSON.parse(execFileSync('node', ['-p', 'JSON.stringify(require("pg/package.json"))'], { encoding: 'utf8' })) as { version: string }).version}`;

const scenarios: Scenario[] = [
  psql('psql-sslmode-disable', 'sslmode=disable'),
  psql('psql-sslmode-prefer', 'sslmode=prefer'),
  psql('psql-sslmode-require', 'sslmode=require'),
  // Without a credential cache libpq skips GSS encryption altogether: SSLRequest, then StartupMessage.
  psql('psql-gssencmode-prefer', 'gssencmode=prefer sslmode=prefer'),
  psql('psql-gssencmode-prefer-with-ccache', 'gssencmode=prefer sslmode=prefer', { KRB5CCNAME: fakeCredentialCache() }),
  psql('psql-gssencmode-require-with-ccache', 'gssencmode=require sslmode=disable', { KRB5CCNAME: fakeCredentialCache() }),
  psql('psql-application-name-options', "sslmode=disable application_name=capture-app options='-c pgs.tenant=acme -c statement_timeout=5s'"),
  psql('psql-replication-database', 'sslmode=disable replication=database'),
  {
    name: 'psql-user-dot-tenant',
    client: version('psql'),
    describe: (port) => `psql -w "host=127.0.0.1 port=${port} user=alice.acme dbname=app sslmode=disable" -c "select 1"`,
    exec: (port) => run('psql', ['-w', `host=127.0.0.1 port=${port} user=alice.acme dbname=app sslmode=disable`, '-c', 'select 1']),
  },
  {
    name: 'pgbench-default',
    client: version('pgbench'),
    describe: (port) => `pgbench -h 127.0.0.1 -p ${port} -U alice -n -t 1 acme`,
    exec: (port) => run('pgbench', ['-h', '127.0.0.1', '-p', String(port), '-U', 'alice', '-n', '-t', '1', 'acme']),
  },
  {
    name: 'node-postgres-ssl-false',
    client: pgVersion(),
    describe: (port) =>
      `new pg.Client({ host: '127.0.0.1', port: ${port}, user: 'alice', database: 'acme', application_name: 'pg-capture', ssl: false }).connect()`,
    exec: (port) => nodePostgres(port, false),
  },
  {
    name: 'node-postgres-ssl',
    client: pgVersion(),
    describe: (port) =>
      `new pg.Client({ host: '127.0.0.1', port: ${port}, user: 'alice', database: 'acme', application_name: 'pg-capture', ssl: { rejectUnauthorized: false } }).connect()`,
    exec: (port) => nodePostgres(port, true),
  },
];

async function main(): Promise<void> {
  const fixtures: ClientFixture[] = [];
  for (const s of scenarios) {
    const rec = await listen();
    await s.exec(rec.port);
    await rec.close();
    const command = s
      .describe(rec.port)
      .replace(`port=${rec.port}`, 'port=PORT')
      .replace(`-p ${rec.port}`, '-p PORT')
      .replace(`port: ${rec.port}`, 'port: PORT');
    fixtures.push({ name: s.name, client: s.client, command, connections: rec.connections });
    console.log(`${s.name}: ${rec.connections.length} connection(s), ${rec.connections.map((c) => c.length).join('+')} packet(s)`);
  }
  const out = new URL('./fixtures/client-startup-packets.json', import.meta.url);
  writeFileSync(out, `${JSON.stringify({ capturedAt: new Date().toISOString().slice(0, 10), fixtures }, null, 2)}\n`);
  console.log(`wrote ${out.pathname}`);
}

await main();
