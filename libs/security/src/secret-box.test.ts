import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SecurityError } from './errors.js';
import { decodeSecretKey, deriveKeyId, isSealed, KeyRing, parseKeyList, sealedKeyId } from './secret-box.js';

const k1 = { id: 'k1', key: randomBytes(32) };
const k2 = { id: 'k2', key: randomBytes(32) };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof SecurityError) return err.code;
    throw err;
  }
  return undefined;
}

describe('KeyRing', () => {
  it('seals to the compact v1 format and opens it again', () => {
    const ring = new KeyRing([k1]);
    const sealed = ring.seal('s3cret password', 'tenant:acme:monitor');
    expect(sealed).toMatch(/^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('s3cret');
    expect(ring.openText(sealed, 'tenant:acme:monitor')).toBe('s3cret password');
    expect(isSealed(sealed)).toBe(true);
    expect(sealedKeyId(sealed)).toBe('k1');
  });

  it('uses a fresh IV every time', () => {
    const ring = new KeyRing([k1]);
    expect(ring.seal('x', 'a')).not.toBe(ring.seal('x', 'a'));
  });

  it('round-trips any bytes and any context', () => {
    const ring = new KeyRing([k1, k2]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.string(), (data, aad) => {
        expect(ring.open(ring.seal(data, aad), aad).equals(Buffer.from(data))).toBe(true);
      }),
    );
  });

  it('refuses a wrong context, a wrong key and any flipped bit with a typed error', () => {
    const ring = new KeyRing([k1]);
    const sealed = ring.seal('secret', 'ctx');
    expect(codeOf(() => ring.open(sealed, 'other'))).toBe('SECRET_DECRYPT_FAILED');
    const impostor = new KeyRing([{ id: 'k1', key: randomBytes(32) }]);
    expect(codeOf(() => impostor.open(sealed, 'ctx'))).toBe('SECRET_DECRYPT_FAILED');
    const body = sealed.split('.')[3]!;
    for (let i = 0; i < body.length; i++) {
      const flipped = body.slice(0, i) + (body[i] === 'A' ? 'B' : 'A') + body.slice(i + 1);
      const tampered = sealed.split('.').slice(0, 3).concat(flipped).join('.');
      // The last base64url char may carry padding bits only; anything else must fail authentication.
      const code = codeOf(() => ring.open(tampered, 'ctx'));
      if (Buffer.from(flipped, 'base64url').equals(Buffer.from(body, 'base64url'))) continue;
      expect(code === 'SECRET_DECRYPT_FAILED' || code === 'SECRET_MALFORMED').toBe(true);
    }
  });

  it('refuses a relabelled key id (the header is authenticated)', () => {
    const sameKeyTwoIds = new KeyRing([k1, { id: 'k9', key: k1.key }]);
    const sealed = sameKeyTwoIds.seal('secret', 'ctx');
    expect(codeOf(() => sameKeyTwoIds.open(sealed.replace('v1.k1.', 'v1.k9.'), 'ctx'))).toBe('SECRET_DECRYPT_FAILED');
  });

  it('names an unknown key id and malformed input', () => {
    const sealed = new KeyRing([k2]).seal('secret', 'ctx');
    expect(codeOf(() => new KeyRing([k1]).open(sealed, 'ctx'))).toBe('SECRET_KEY_UNKNOWN');
    for (const bad of ['', 'plain text', 'v2.k1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA', 'v1.k1.short.AAAAAAAAAAAAAAAAAAAAAA', 'v1..AAAAAAAAAAAAAAAA.AAAA']) {
      expect(codeOf(() => new KeyRing([k1]).open(bad, 'ctx'))).toBe('SECRET_MALFORMED');
      expect(isSealed(bad)).toBe(false);
    }
  });

  it('rotates: old values open, needsRotation says which, reseal moves them to the active key', () => {
    const before = new KeyRing([k1]);
    const old = before.seal('secret', 'ctx');
    const after = new KeyRing([k2, k1]);
    expect(after.activeKeyId).toBe('k2');
    expect(after.needsRotation(old)).toBe(true);
    const resealed = after.reseal(old, 'ctx');
    expect(sealedKeyId(resealed)).toBe('k2');
    expect(after.needsRotation(resealed)).toBe(false);
    expect(after.reseal(resealed, 'ctx')).toBe(resealed);
    expect(new KeyRing([k2]).openText(resealed, 'ctx')).toBe('secret');
    expect(codeOf(() => new KeyRing([k2]).open(old, 'ctx'))).toBe('SECRET_KEY_UNKNOWN');
  });

  it('validates its keys', () => {
    expect(codeOf(() => new KeyRing([]))).toBe('SECRET_KEY_INVALID');
    expect(codeOf(() => new KeyRing([{ id: 'k1', key: randomBytes(16) }]))).toBe('SECRET_KEY_INVALID');
    expect(codeOf(() => new KeyRing([{ id: 'bad.id', key: randomBytes(32) }]))).toBe('SECRET_KEY_INVALID');
    expect(codeOf(() => new KeyRing([k1, { id: 'k1', key: randomBytes(32) }]))).toBe('SECRET_KEY_INVALID');
    expect(codeOf(() => new KeyRing([k1], 'nope'))).toBe('SECRET_KEY_INVALID');
  });
});

describe('key lists', () => {
  it('parses kid:base64 entries and bare keys (derived ids), first active', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const keys = parseKeyList(`new:${a.toString('base64')}, ${b.toString('base64url')}`, 'PGS_SECRET_KEYS');
    expect(keys.map((k) => k.id)).toEqual(['new', deriveKeyId(b)]);
    expect(keys[1]!.key.equals(b)).toBe(true);
    expect(new KeyRing(keys).activeKeyId).toBe('new');
  });

  it('derives a stable id from the key', () => {
    const key = randomBytes(32);
    expect(deriveKeyId(key)).toBe(deriveKeyId(Buffer.from(key)));
    expect(deriveKeyId(key)).toMatch(/^k[0-9a-f]{12}$/);
  });

  it('explains bad keys without echoing them', () => {
    const short = randomBytes(31).toString('base64');
    expect(() => decodeSecretKey(short, 'PGS_SECRET_KEY')).toThrow(/PGS_SECRET_KEY: the key is 31 bytes, AES-256 needs 32/);
    expect(() => decodeSecretKey('not base64!', 'PGS_SECRET_KEY')).toThrow(/not base64/);
    expect(() => parseKeyList('', 'PGS_SECRET_KEYS')).toThrow(/no key given/);
    try {
      decodeSecretKey(short, 'X');
    } catch (err) {
      expect((err as Error).message).not.toContain(short);
    }
  });
});
