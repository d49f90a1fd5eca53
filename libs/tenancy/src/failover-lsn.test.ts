import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import { compareLsn, formatLsn, lsnDistance, parseLsn, tryParseLsn } from './failover-lsn.js';

describe('LSN', () => {
  it('parses both halves into one 64-bit value', () => {
    expect(parseLsn('0/3000148')).toBe(0x3000148n);
    expect(parseLsn('1/0')).toBe(0x1_0000_0000n);
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe(0xffff_ffff_ffff_ffffn);
    expect(parseLsn('16/b374d848')).toBe(0x16_b374_d848n);
  });

  it('orders where text comparison would not', () => {
    expect(compareLsn('0/A0', '0/9FF')).toBe(-1);
    expect(compareLsn('0/FFFFFFFF', '1/0')).toBe(-1);
    expect(compareLsn('10/0', '9/FFFFFFFF')).toBe(1);
    expect(compareLsn('0/3000148', '0/3000148')).toBe(0);
  });

  it('refuses what pg_lsn refuses', () => {
    for (const bad of ['', '0', '0/', '/0', '0/123456789', 'x/1', '0/-1', ' 0/1']) {
      expect(() => parseLsn(bad)).toThrow(ValidationError);
      expect(tryParseLsn(bad)).toBeUndefined();
    }
    expect(tryParseLsn(undefined)).toBeUndefined();
  });

  it('distance is the byte difference, never negative', () => {
    expect(lsnDistance('0/FFFFFF00', '1/100')).toBe(0x200);
    expect(lsnDistance('1/100', '0/FFFFFF00')).toBe(0);
  });

  it('format and parse round-trip; order matches bigint order (property)', () => {
    const pos = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn });
    fc.assert(fc.property(pos, (p) => parseLsn(formatLsn(p)) === p));
    fc.assert(
      fc.property(pos, pos, (a, b) => {
        const expected = a < b ? -1 : a > b ? 1 : 0;
        return compareLsn(formatLsn(a), formatLsn(b)) === expected && compareLsn(formatLsn(a).toLowerCase(), formatLsn(b)) === expected;
      }),
    );
    expect(() => formatLsn(-1n)).toThrow(ValidationError);
  });
});
