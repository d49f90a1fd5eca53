import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findOptionSettings, joinStartupOptions, splitStartupOptions } from './startup-options.js';

describe('splitStartupOptions', () => {
  it('splits like PostgreSQL pg_split_opts', () => {
    expect(splitStartupOptions('-c a=1   -c b=2')).toEqual(['-c', 'a=1', '-c', 'b=2']);
    expect(splitStartupOptions('  -csearch_path=my\\ schema ')).toEqual(['-csearch_path=my schema']);
    expect(splitStartupOptions('a\\\\b')).toEqual(['a\\b']);
    expect(splitStartupOptions('\t\n')).toEqual([]);
    expect(splitStartupOptions('')).toEqual([]);
    // A lone trailing backslash is kept literally.
    expect(splitStartupOptions('x\\')).toEqual(['x\\']);
  });

  it('split(join(args)) === args for any non-empty arguments', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1 }), { maxLength: 6 }), (args) => {
        expect(splitStartupOptions(joinStartupOptions(args))).toEqual(args);
      }),
    );
  });
});

describe('findOptionSettings', () => {
  it('finds -c name=value, -cname=value, --name=value and bare name=value', () => {
    const args = splitStartupOptions('-c pgs.tenant=a -cPGS.TENANT=b --pgs.tenant=c tenant=d --statement-timeout=5 -x');
    expect(findOptionSettings(args)).toEqual([
      { name: 'pgs.tenant', value: 'a', start: 0, count: 2, bare: false },
      { name: 'pgs.tenant', value: 'b', start: 2, count: 1, bare: false },
      { name: 'pgs.tenant', value: 'c', start: 3, count: 1, bare: false },
      { name: 'tenant', value: 'd', start: 4, count: 1, bare: true },
      { name: 'statement_timeout', value: '5', start: 5, count: 1, bare: false },
    ]);
  });

  it('ignores arguments without a name=value', () => {
    expect(findOptionSettings(['-c'])).toEqual([]);
    expect(findOptionSettings(['=x', '-c', '=y'])).toEqual([]);
  });
});
