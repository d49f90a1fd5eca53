import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import { formatCpu, formatSize, parseCpu, parseSize } from './units.js';

describe('parseCpu / formatCpu', () => {
  it.each([
    ['2', 2000],
    ['1.5', 1500],
    ['0.25', 250],
    ['500m', 500],
    [' 1 ', 1000],
    ['1.500', 1500],
    ['128', 128_000],
  ])('parses %j as %d millicores', (text, millis) => {
    expect(parseCpu(text)).toBe(millis);
  });

  it.each(['', 'abc', '1.2345', '0.5m', '-1', '1,5', '1e3', '2 cores', 'm'])('refuses %j', (text) => {
    expect(() => parseCpu(text)).toThrow(ValidationError);
  });

  it('names the field it was given', () => {
    expect(() => parseCpu('x', 'spec.cpu')).toThrow(/invalid spec\.cpu/);
  });

  it.each([
    [1500, '1.5'],
    [2000, '2'],
    [250, '0.25'],
    [1, '0.001'],
    [0, '0'],
  ])('formats %d as %j', (millis, text) => {
    expect(formatCpu(millis)).toBe(text);
  });

  it('refuses fractional or negative millicores', () => {
    expect(() => formatCpu(1.5)).toThrow(ValidationError);
    expect(() => formatCpu(-1)).toThrow(ValidationError);
  });

  it('parseCpu(formatCpu(x)) === x', () => {
    fc.assert(fc.property(fc.nat({ max: 10_000_000 }), (millis) => parseCpu(formatCpu(millis)) === millis));
  });
});

describe('parseSize / formatSize', () => {
  it.each([
    ['512Mi', 512],
    ['8Gi', 8192],
    ['1Ti', 1_048_576],
    ['1.5Gi', 1536],
    ['1.1Gi', 1127],
    ['2048', 2048],
    ['8GiB', 8192],
    ['1024Ki', 1],
    ['1Ki', 1],
    ['8G', 7630],
    ['1000M', 954],
    ['512MB', 489],
    ['1T', 953_675],
    [' 4 Gi ', 4096],
    ['0', 0],
  ])('parses %j as %d MiB', (text, mib) => {
    expect(parseSize(text)).toBe(mib);
  });

  it.each(['', 'Gi', '1.2.3Gi', '-1Gi', '8gb', '8 gigabytes', '1e3', '8Xi'])('refuses %j, naming the field', (text) => {
    expect(() => parseSize(text, 'memory')).toThrow(/invalid memory/);
  });

  it.each([
    [8192, '8Gi'],
    [1536, '1.5Gi'],
    [1280, '1.25Gi'],
    [512, '512Mi'],
    [1100, '1100Mi'],
    [1_048_576, '1Ti'],
    [1_572_864, '1.5Ti'],
    [0, '0Mi'],
    [1024 ** 3, '1Pi'],
  ])('formats %d MiB as %j', (mib, text) => {
    expect(formatSize(mib)).toBe(text);
  });

  it('refuses fractional or negative MiB', () => {
    expect(() => formatSize(0.5)).toThrow(ValidationError);
    expect(() => formatSize(-1)).toThrow(ValidationError);
  });

  it('parseSize(formatSize(x)) === x', () => {
    fc.assert(fc.property(fc.nat({ max: 2 ** 40 }), (mib) => parseSize(formatSize(mib)) === mib));
  });

  it('a decimal size never rounds below the bytes asked for', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), fc.constantFrom(['M', 1e6], ['G', 1e9]), (n, [unit, bytes]) => {
        const mib = parseSize(`${n}${unit}`);
        expect(mib * 2 ** 20).toBeGreaterThanOrEqual(n * (bytes as number));
        expect((mib - 1) * 2 ** 20).toBeLessThan(n * (bytes as number));
      }),
    );
  });
});
