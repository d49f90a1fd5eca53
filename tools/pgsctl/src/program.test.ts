import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildProgram, commandWord } from './program.js';
import { Session } from './session.js';

const session = (): Session =>
  new Session({
    env: {},
    cwd: '/nonexistent',
    home: '/nonexistent',
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    stdin: new PassThrough(),
    now: () => 0,
  });
const names = async (argv?: string[]): Promise<string[]> => (await buildProgram(session(), argv)).commands.map((c) => c.name());

describe('the command tree loads only what the command line names', () => {
  it('finds the command word past global options and their values', () => {
    expect(commandWord(['-c', 'h:1', '--output', 'json', '--insecure', 'tenant', 'list'])).toBe('tenant');
    expect(commandWord(['--coordinator=h:1', 'status'])).toBe('status');
    expect(commandWord(['--token', 'x', '--', 'version'])).toBe('version');
    expect(commandWord(['--help'])).toBeUndefined();
  });

  it('registers one group for a command it knows, none for version, and all otherwise', async () => {
    expect(await names(['version'])).toEqual(['completion', 'version', 'config']);
    expect(await names(['-o', 'json', 'tenant', 'list'])).toEqual(['tenant', 'completion', 'version', 'config']);
    expect(await names(['tenants', 'ls'])).not.toContain('backup');
    expect(await names(['diff', '-f', 'x'])).toEqual(expect.arrayContaining(['apply', 'diff', 'delete', 'manifest']));
    const all = await names(['--help']);
    for (const n of ['tenant', 'backup', 'user', 'db', 'host', 'route', 'events', 'status', 'connect', 'token', 'admin', 'apply', 'completion'])
      expect(all).toContain(n);
    expect(await names(['tenantz'])).toEqual(all);
    expect(await names()).toEqual(all);
  });
});
