import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isScramVerifier, parseScramVerifier, saslPrep, scramVerifier, scramVerifierAsync, verifyScramPassword } from './scram.js';

describe('scramVerifier', () => {
  it('matches the RFC 7677 section 3 example keys (user/pencil, 4096 iterations)', () => {
    // RFC 7677: salt W22ZaJ0SNY7soEsUEjb6gQ==, ServerSignature derives from these keys; the StoredKey and
    // ServerKey below are what PostgreSQL stores for that password and salt.
    const verifier = scramVerifier('pencil', { salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64') });
    expect(verifier).toBe(
      'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=',
    );
  });

  it('the thread-pool variant gives the same verifier (RFC 7677 example, a SASLprep-mapped password)', async () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    expect(await scramVerifierAsync('pencil', { salt })).toBe(scramVerifier('pencil', { salt }));
    expect(await scramVerifierAsync('pen\u00adcil\u00a0x', { salt, iterations: 32 })).toBe(scramVerifier('pen\u00adcil\u00a0x', { salt, iterations: 32 }));
    await expect(scramVerifierAsync('x', { iterations: 0 })).rejects.toThrow(RangeError);
  });

  it('uses 4096 iterations and a 16-byte random salt by default', () => {
    const a = parseScramVerifier(scramVerifier('secret'));
    const b = parseScramVerifier(scramVerifier('secret'));
    expect(a?.iterations).toBe(4096);
    expect(a?.salt.length).toBe(16);
    expect(a?.salt.equals(b!.salt)).toBe(false);
  });

  it('verifies the right password only', () => {
    const v = scramVerifier('correct horse', { iterations: 64 });
    expect(verifyScramPassword('correct horse', v)).toBe(true);
    expect(verifyScramPassword('correct hors', v)).toBe(false);
    expect(verifyScramPassword('x', 'not a verifier')).toBe(false);
  });

  it('recognises verifiers and nothing else', () => {
    expect(isScramVerifier(scramVerifier('pw', { iterations: 16 }))).toBe(true);
    for (const bad of [
      '',
      'pw',
      'md5abcdef',
      'SCRAM-SHA-256$4096:c2FsdA==$short:short',
      'SCRAM-SHA-256$0:c2FsdA==$AAAA:AAAA',
      `${scramVerifier('pw')}'; DROP ROLE x; --`,
    ]) {
      expect(isScramVerifier(bad)).toBe(false);
    }
  });

  it('applies SASLprep like PostgreSQL', () => {
    expect(saslPrep('I\u00ADX')).toBe('IX');
    expect(saslPrep('\u2168')).toBe('IX');
    expect(saslPrep('a\u00A0b')).toBe('a b');
    expect(saslPrep('a\u0007b')).toBe('a\u0007b');
  });
});

describe('against a real PostgreSQL', () => {
  let server: TestPostgres;
  let admin: pg.Client;
  beforeAll(async () => {
    server = await startTestPostgres();
    admin = await server.adminClient();
  });
  afterAll(async () => {
    await admin?.end();
    await server?.stop();
  });

  async function login(user: string, password: string): Promise<string> {
    const client = new pg.Client({ host: server.host, port: server.port, user, password, database: 'postgres' });
    try {
      await client.connect();
      const res = await client.query<{ u: string }>('SELECT current_user AS u');
      return res.rows[0]!.u;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  it('accepts the verifier as a role password: the plain password logs in over scram-sha-256, a wrong one does not', async () => {
    for (const [user, password] of [
      ['scram_ascii', 'c0rrect-h0rse'],
      ['scram_unicode', 'pässwörd\u00A0Ⅸ'],
    ] as const) {
      const verifier = scramVerifier(password);
      await admin.query(`CREATE ROLE ${user} LOGIN PASSWORD '${verifier}'`);
      const stored = await admin.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user]);
      expect(stored.rows[0]!.rolpassword).toBe(verifier);
      expect(await login(user, password)).toBe(user);
      await expect(login(user, `${password}x`)).rejects.toThrow(/password authentication failed/);
    }
  });
});
