import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePassword, saslPrep, scramVerifier } from './scram.js';

describe('scram verifiers', () => {
  it('has the PostgreSQL format and a fresh salt each time', () => {
    const a = scramVerifier('correct horse');
    const b = scramVerifier('correct horse');
    expect(a).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
    expect(a).not.toBe(b);
  });

  it('matches the RFC 7677 test vector', () => {
    // RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
    const v = scramVerifier('pencil', 4096, Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'));
    expect(v).toBe('SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=');
  });

  it('applies SASLprep to non-ASCII passwords', () => {
    expect(saslPrep('I\u00ADX')).toBe('IX');
    expect(saslPrep('a\u00A0b\u2126')).toBe('a b\u03A9');
    expect(saslPrep('plain-ascii')).toBe('plain-ascii');
  });

  it('generates 24-character passwords', () => {
    expect(generatePassword()).toMatch(/^[A-Za-z0-9_-]{24}$/);
  });
});

describe('a verifier set in a real PostgreSQL lets the password log in', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    server = await startTestPostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('logs in with the password, and not with another', async () => {
    const password = 'pässwörd\u00A0with spaces';
    const admin = await server.adminClient();
    try {
      await admin.query(`CREATE ROLE scram_user LOGIN PASSWORD '${scramVerifier(password)}'`);
    } finally {
      await admin.end();
    }
    const ok = new pg.Client({ host: server.host, port: server.port, user: 'scram_user', password, database: 'postgres' });
    await ok.connect();
    expect((await ok.query('SELECT current_user AS u')).rows[0].u).toBe('scram_user');
    await ok.end();
    const bad = new pg.Client({ host: server.host, port: server.port, user: 'scram_user', password: 'wrong password', database: 'postgres' });
    await expect(bad.connect()).rejects.toThrow(/password authentication failed/);
    await bad.end().catch(() => undefined);
  });
});
