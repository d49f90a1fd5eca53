import { describe, expect, it } from 'vitest';
import { SecurityError } from './errors.js';
import {
  authenticateOperatorToken,
  checkToken,
  hashToken,
  issueToken,
  joinTokenCaFingerprint,
  parseBearer,
  redeemJoinToken,
  tokenFormat,
  tokenLabel,
  type TokenRecord,
} from './tokens.js';

const now = new Date('2030-01-01T00:00:00Z');
const later = (ms: number) => new Date(now.getTime() + ms);
const HOUR = 3600_000;
const PIN = 'A'.repeat(43);

describe('operator tokens', () => {
  it('are shown once and stored only as a SHA-256', () => {
    const { token, record } = issueToken({ kind: 'operator', name: 'alice', role: 'reader', now });
    expect(token).toMatch(/^pgso_[A-Za-z0-9_-]{43}$/);
    expect(tokenFormat(token)).toBe('operator');
    expect(record.hash).toBe(hashToken(token));
    expect(JSON.stringify(record)).not.toContain(token.slice(5));
    expect(record.expiresAtMs - now.getTime()).toBe(90 * 24 * HOUR);
    expect(tokenLabel(token)).toBe(`pgso_…${record.hash.slice(0, 8)}`);
    expect(tokenLabel(record)).toBe(tokenLabel(token));
  });

  it('authenticate to their principal until they expire or are revoked', () => {
    const { token, record } = issueToken({ kind: 'operator', name: 'acme-ci', role: 'tenant-writer', tenantIds: ['acme', 'acme'], ttlMs: HOUR, now });
    const ok = authenticateOperatorToken(token, record, later(HOUR - 1));
    expect(ok).toEqual({ ok: true, principal: { kind: 'operator', name: 'acme-ci', role: 'tenant-writer', tenantIds: ['acme'] } });
    expect(authenticateOperatorToken(token, record, later(HOUR))).toEqual({ ok: false, refusal: 'expired' });
    expect(authenticateOperatorToken(token, { ...record, revokedAtMs: now.getTime() }, now)).toEqual({ ok: false, refusal: 'revoked' });
    expect(authenticateOperatorToken(token, undefined, now)).toEqual({ ok: false, refusal: 'unknown' });
    const other = issueToken({ kind: 'operator', name: 'bob', role: 'reader', now });
    // A record found by some other means never matches a different token.
    expect(authenticateOperatorToken(token, other.record, now)).toEqual({ ok: false, refusal: 'unknown' });
    expect(authenticateOperatorToken('pgso_short', record, now)).toEqual({ ok: false, refusal: 'malformed' });
  });

  it('refuses a join token as a bearer token', () => {
    const join = issueToken({ kind: 'host', name: 'h1', now });
    expect(authenticateOperatorToken(join.token, join.record, now)).toEqual({ ok: false, refusal: 'wrong-kind' });
  });

  it('validate role, tenant scope, name and ttl', () => {
    const bad: Parameters<typeof issueToken>[0][] = [
      { kind: 'operator', name: 'x', role: 'root', now },
      { kind: 'operator', name: 'x', role: 'tenant-reader', now },
      { kind: 'operator', name: 'x', role: 'reader', tenantIds: ['acme'], now },
      { kind: 'operator', name: '', role: 'reader', now },
      { kind: 'operator', name: 'x', role: 'reader', ttlMs: 400 * 24 * HOUR, now },
      { kind: 'operator', name: 'x', role: 'reader', ttlMs: -1, now },
      { kind: 'host', name: 'h1', role: 'reader', now },
      { kind: 'host', name: 'h1', ttlMs: 25 * HOUR, now },
      { kind: 'router', name: 'bad id!', now },
      { kind: 'tenant' as 'host', now },
    ];
    for (const request of bad) expect(() => issueToken(request), JSON.stringify(request)).toThrow(SecurityError);
  });
});

describe('join tokens', () => {
  it('pin the CA fingerprint and default to one hour', () => {
    const { token, record } = issueToken({ kind: 'router', name: 'r1', now, caFingerprint: PIN });
    expect(token).toMatch(/^pgsj_[A-Za-z0-9_-]{43}\.A{43}$/);
    expect(tokenFormat(token)).toBe('join');
    expect(joinTokenCaFingerprint(token)).toBe(PIN);
    expect(record.expiresAtMs - now.getTime()).toBe(HOUR);
    expect(record.singleUse).toBe(true);
    expect(joinTokenCaFingerprint(issueToken({ kind: 'host', now }).token)).toBeUndefined();
  });

  it('are redeemed once, for the named component of the named kind', () => {
    const { token, record } = issueToken({ kind: 'host', name: 'h1', now });
    expect(redeemJoinToken(token, record, { kind: 'host', id: 'h2' }, now)).toEqual({ ok: false, refusal: 'wrong-id' });
    expect(redeemJoinToken(token, record, { kind: 'router', id: 'h1' }, now)).toEqual({ ok: false, refusal: 'wrong-kind' });
    const first = redeemJoinToken(token, record, { kind: 'host', id: 'h1' }, later(1000));
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect(first.identity).toEqual({ kind: 'host', id: 'h1' });
    expect(first.record.usedAtMs).toBe(now.getTime() + 1000);
    expect(redeemJoinToken(token, first.record, { kind: 'host', id: 'h1' }, later(2000))).toEqual({ ok: false, refusal: 'used' });
    expect(redeemJoinToken(token, record, { kind: 'host', id: 'h1' }, later(HOUR))).toEqual({ ok: false, refusal: 'expired' });
  });

  it('without a name let the component choose its id, still validated', () => {
    const { token, record } = issueToken({ kind: 'host', now });
    expect(redeemJoinToken(token, record, { kind: 'host', id: 'h7' }, now).ok).toBe(true);
    expect(redeemJoinToken(token, record, { kind: 'host', id: '../x' }, now)).toEqual({ ok: false, refusal: 'wrong-id' });
  });

  it('cannot be an operator token', () => {
    const op = issueToken({ kind: 'operator', name: 'alice', role: 'fleet-admin', now });
    expect(redeemJoinToken(op.token, { ...op.record, kind: 'host' } as TokenRecord, { kind: 'host', id: 'h1' }, now)).toEqual({
      ok: false,
      refusal: 'wrong-kind',
    });
    expect(checkToken(op.token, op.record, now)).toEqual({ ok: true });
  });
});

describe('parseBearer', () => {
  it('reads the token from an authorization value', () => {
    expect(parseBearer('Bearer pgso_abc')).toBe('pgso_abc');
    expect(parseBearer('bearer   pgso_abc ')).toBe('pgso_abc');
    expect(parseBearer('Basic dXNlcjpwdw==')).toBeUndefined();
    expect(parseBearer('Bearer a b')).toBeUndefined();
    expect(parseBearer(undefined)).toBeUndefined();
  });
});
