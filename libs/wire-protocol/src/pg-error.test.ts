import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { PgError, ProtocolError } from './pg-error.js';
import { SqlState, sqlStateClass } from './sqlstate.js';

const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8').toString('hex');

describe('PgError', () => {
  it('defaults to FATAL and encodes an ErrorResponse (golden bytes)', () => {
    const err = new PgError({ code: SqlState.InvalidCatalogName, message: 'tenant "x" does not exist', hint: 'Check the host name.' });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('PgError');
    expect(err.severity).toBe('FATAL');
    expect(err.fields()).toEqual({ severity: 'FATAL', code: '3D000', message: 'tenant "x" does not exist', hint: 'Check the host name.' });
    const body = `53${cstr('FATAL')}56${cstr('FATAL')}43${cstr('3D000')}4d${cstr('tenant "x" does not exist')}48${cstr('Check the host name.')}00`;
    const expected = Buffer.from(`45 ${(body.length / 2 + 4).toString(16).padStart(8, '0')} ${body}`.replace(/\s+/g, ''), 'hex');
    expect(err.toErrorResponse()).toEqual(expected);
  });

  it('keeps a given severity, detail and cause', () => {
    const cause = new Error('socket closed');
    const err = new PgError({ code: SqlState.AdminShutdown, message: 'shutting down', severity: 'ERROR', detail: 'd' }, { cause });
    expect(err.severity).toBe('ERROR');
    expect(err.detail).toBe('d');
    expect(err.cause).toBe(cause);
    expect(err.fields()).toEqual({ severity: 'ERROR', code: '57P01', message: 'shutting down', detail: 'd' });
  });
});

describe('ProtocolError', () => {
  it('is always 08P01 and FATAL', () => {
    const a = new ProtocolError('invalid length of startup packet');
    expect(a).toBeInstanceOf(PgError);
    expect(a.name).toBe('ProtocolError');
    expect([a.code, a.severity, a.message]).toEqual(['08P01', 'FATAL', 'invalid length of startup packet']);
    const b = new ProtocolError({ message: 'm', detail: 'd', hint: 'h', code: '08P01' }, { cause: 1 });
    expect(b.fields()).toEqual({ severity: 'FATAL', code: '08P01', message: 'm', detail: 'd', hint: 'h' });
    expect(b.cause).toBe(1);
  });
});

describe('SqlState', () => {
  it('has the codes the router sends, each five characters', () => {
    expect(SqlState.ProtocolViolation).toBe('08P01');
    expect(SqlState.TooManyConnections).toBe('53300');
    expect(SqlState.CannotConnectNow).toBe('57P03');
    for (const code of Object.values(SqlState)) expect(code).toMatch(/^[0-9A-Z]{5}$/);
    expect(new Set(Object.values(SqlState)).size).toBe(Object.values(SqlState).length);
    expect(sqlStateClass(SqlState.ConnectionFailure)).toBe('08');
  });
});
