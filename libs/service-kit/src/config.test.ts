import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseDuration, type ConfigSpec } from './config.js';

const spec = {
  listen: { type: 'string', flag: '--listen', env: 'PGS_LISTEN', description: 'address', default: '127.0.0.1:7000' },
  ttl: { type: 'duration', flag: '--ttl', env: 'PGS_TTL', description: 'ttl', default: 5000, min: 100 },
  verbose: { type: 'bool', flag: '--verbose', env: 'PGS_VERBOSE', description: 'v', default: false },
  labels: { type: 'list', flag: '--labels', env: 'PGS_LABELS', description: 'l', default: [] },
  mode: { type: 'string', flag: '--mode', env: 'PGS_MODE', description: 'm', choices: ['a', 'b'], default: 'a' },
  id: { type: 'string', flag: '--id', env: 'PGS_ID', description: 'the id', required: true },
} satisfies ConfigSpec;

describe('loadConfig', () => {
  it('flags win over env, env over defaults; result is frozen', () => {
    const r = loadConfig(spec, ['--ttl', '2s', '--verbose', '--id=h1'], { PGS_TTL: '9s', PGS_LABELS: 'zone=a, region=eu' }, 'usage');
    expect(r.kind).toBe('config');
    if (r.kind !== 'config') return;
    expect(r.config).toEqual({ listen: '127.0.0.1:7000', ttl: 2000, verbose: true, labels: ['zone=a', 'region=eu'], mode: 'a', id: 'h1' });
    expect(Object.isFrozen(r.config)).toBe(true);
  });
  it('fails fast with a message naming flag and variable', () => {
    expect(() => loadConfig(spec, ['--mode', 'c', '--id', 'x'], {}, 'u')).toThrow(/--mode \/ PGS_MODE.*not one of a, b/);
    expect(() => loadConfig(spec, [], {}, 'u')).toThrow(ConfigError);
    expect(() => loadConfig(spec, ['--id', 'x', '--nope'], {}, 'u')).toThrow(/unknown option --nope/);
    expect(() => loadConfig(spec, ['--id', 'x', '--ttl', '10ms'], {}, 'u')).toThrow(/below the minimum/);
    expect(() => loadConfig(spec, ['--id', 'x'], { PGS_VERBOSE: 'maybe' }, 'u')).toThrow(/PGS_VERBOSE/);
  });
  it('--help lists every option', () => {
    const r = loadConfig(spec, ['--help'], {}, 'usage: app');
    expect(r.kind).toBe('help');
    if (r.kind !== 'help') return;
    for (const o of Object.values(spec)) {
      expect(r.text).toContain(o.flag);
      expect(r.text).toContain(o.env);
    }
  });
  it('parses durations', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('2m')).toBe(120000);
    expect(parseDuration('42')).toBe(42);
    expect(() => parseDuration('soon')).toThrow(/not a duration/);
  });
});
