import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { formatSpan, parseSpan } from './spans.js';

describe('backup policy spans', () => {
  it('parses each unit into seconds', () => {
    expect(parseSpan('90s', '--x')).toBe(90);
    expect(parseSpan('15m', '--x')).toBe(900);
    expect(parseSpan('6h', '--x')).toBe(21_600);
    expect(parseSpan('14d', '--x')).toBe(1_209_600);
    expect(parseSpan('2w', '--x')).toBe(1_209_600);
    expect(parseSpan(' 1D ', '--x')).toBe(86_400);
  });

  it('refuses what is not a whole number with a unit, naming the flag and showing examples', () => {
    for (const bad of ['14', 'd', '1.5d', '-1d', '1y', '1 day', '', '10ms']) {
      expect(() => parseSpan(bad, '--backup-retention')).toThrow(UsageError);
    }
    expect(() => parseSpan('14', '--backup-retention')).toThrow(
      'invalid --backup-retention "14": expected a whole number and a unit, e.g. 90s, 15m, 6h, 14d, 2w',
    );
    expect(() => parseSpan('0d', '--archive-timeout')).toThrow('invalid --archive-timeout "0d": must be more than zero');
    expect(() => parseSpan('99999999999999999w', '--x')).toThrow(/too long/);
  });

  it('formats seconds in the largest unit that divides them, so a policy reads as it was given', () => {
    expect(formatSpan(604_800)).toBe('1w');
    expect(formatSpan(1_209_600)).toBe('2w');
    expect(formatSpan(86_400 * 10)).toBe('10d');
    expect(formatSpan(21_600)).toBe('6h');
    expect(formatSpan(5400)).toBe('90m');
    expect(formatSpan(90)).toBe('90s');
    expect(formatSpan(0)).toBe('0s');
    for (const text of ['90s', '15m', '6h', '14d', '3w']) expect(parseSpan(formatSpan(parseSpan(text, '--x')), '--x')).toBe(parseSpan(text, '--x'));
  });
});
