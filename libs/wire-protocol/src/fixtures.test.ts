// Golden tests on packets captured from real clients (src/testing/capture-fixtures.ts).
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { decodeStartupPacket, encodeStartupMessage, StartupDecoder, type StartupPacket } from './startup.js';
import { clientFixtures, everySplit, fixturePackets } from './testing/index.js';

function decodeWhole(bytes: Buffer): StartupPacket {
  const r = decodeStartupPacket(bytes);
  if (r.kind !== 'packet') throw new Error('expected a whole packet');
  expect(r.consumed).toBe(bytes.length);
  return r.packet;
}

function kinds(name: string): string[] {
  return fixturePackets(name).map((p) => decodeWhole(p).kind);
}

describe('captured client packets', () => {
  it('has the clients the issue names', () => {
    const names = clientFixtures().map((f) => f.name);
    for (const n of [
      'psql-sslmode-disable',
      'psql-sslmode-prefer',
      'psql-sslmode-require',
      'psql-gssencmode-prefer',
      'pgbench-default',
      'node-postgres-ssl-false',
    ]) {
      expect(names).toContain(n);
    }
  });

  for (const fixture of clientFixtures()) {
    describe(fixture.name, () => {
      const packets = fixturePackets(fixture.name);

      it('every packet decodes whole, identically for every split, and re-encodes to the same bytes', () => {
        for (const bytes of packets) {
          const whole = decodeWhole(bytes);
          for (const chunks of everySplit(bytes)) {
            const d = new StartupDecoder();
            let result = d.push(chunks[0]!);
            for (const c of chunks.slice(1)) if (result.kind === 'need-more') result = d.push(c);
            expect(result).toEqual({ kind: 'packet', packet: whole, consumed: bytes.length });
          }
          if (whole.kind === 'startup-message') {
            expect(encodeStartupMessage({ protocol: whole.protocol, parameters: whole.parameters })).toEqual(bytes);
          }
        }
      });

      it('the StartupMessage, if any, names alice (or alice.acme) and a database', () => {
        const startup = packets.map(decodeWhole).find((p) => p.kind === 'startup-message');
        if (!startup || startup.kind !== 'startup-message') return;
        expect(['alice', 'alice.acme']).toContain(startup.user);
        expect(startup.database).toBeDefined();
        expect(startup.protocol).toEqual({ major: 3, minor: 0 });
      });

      it('decodes the same when the whole connection arrives in one chunk', () => {
        const all = Buffer.concat(packets);
        const d = new StartupDecoder();
        const got: StartupPacket[] = [];
        for (let r = d.push(all); r.kind === 'packet'; r = d.push(Buffer.alloc(0))) got.push(r.packet);
        expect(got).toEqual(packets.map(decodeWhole));
        expect(d.buffered).toBe(0);
      });
    });
  }

  it('what each client sends first', () => {
    expect(kinds('psql-sslmode-disable')).toEqual(['startup-message']);
    expect(kinds('psql-sslmode-prefer')).toEqual(['ssl-request', 'startup-message']);
    expect(kinds('psql-sslmode-require')).toEqual(['ssl-request']); // libpq gives up on 'N'
    expect(kinds('psql-gssencmode-prefer')).toEqual(['ssl-request', 'startup-message']); // no Kerberos cache: no GSSENCRequest
    expect(kinds('psql-gssencmode-prefer-with-ccache')).toEqual(['gss-enc-request', 'ssl-request', 'startup-message']);
    expect(kinds('pgbench-default')).toEqual(['ssl-request', 'startup-message']);
    expect(kinds('node-postgres-ssl-false')).toEqual(['startup-message']);
    expect(kinds('node-postgres-ssl')).toEqual(['ssl-request']);
  });

  it('psql with options and application_name', () => {
    const p = decodeWhole(fixturePackets('psql-application-name-options')[0]!);
    expect(p).toMatchObject({ kind: 'startup-message', options: '-c pgs.tenant=acme -c statement_timeout=5s' });
    expect(p.kind === 'startup-message' && p.parameters.get('application_name')).toBe('capture-app');
  });

  it('psql in logical replication mode', () => {
    const p = decodeWhole(fixturePackets('psql-replication-database')[0]!);
    expect(p.kind === 'startup-message' && p.parameters.get('replication')).toBe('database');
  });

  it('node-postgres sends client_encoding', () => {
    const p = decodeWhole(fixturePackets('node-postgres-ssl-false')[0]!);
    expect(p.kind === 'startup-message' && Object.fromEntries(p.parameters)).toEqual({
      user: 'alice',
      database: 'acme',
      application_name: 'pg-capture',
      client_encoding: 'UTF8',
    });
  });

  it('router rewrite: psql user alice.acme is replayed as alice, other parameters untouched', () => {
    const original = fixturePackets('psql-user-dot-tenant')[0]!;
    const p = decodeWhole(original);
    if (p.kind !== 'startup-message') throw new Error('expected a StartupMessage');
    expect(p.user).toBe('alice.acme');
    const replay = encodeStartupMessage({ protocol: p.protocol, parameters: new Map(p.parameters).set('user', 'alice') });
    const expected = Buffer.from(original.toString('latin1').replace('alice.acme\0', 'alice\0'), 'latin1');
    expected.writeUInt32BE(expected.length, 0);
    expect(replay).toEqual(expected);
  });
});
