import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { DEFAULT_COORDINATOR, resolveCoordinator, resolveRouter } from './settings.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsctl-settings-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('coordinator address resolution', () => {
  it('takes the flag, then PGS_COORDINATOR, then the config file, then fleet.json, then the default', () => {
    const home = tempDir();
    const repo = tempDir();
    const cwd = path.join(repo, 'a', 'b');
    fs.mkdirSync(cwd, { recursive: true });
    const where = { env: {} as NodeJS.ProcessEnv, cwd, home };
    expect(resolveCoordinator(undefined, where)).toEqual({ address: DEFAULT_COORDINATOR, source: 'default' });

    fs.mkdirSync(path.join(repo, '.pgs', 'local'), { recursive: true });
    fs.writeFileSync(
      path.join(repo, '.pgs', 'local', 'fleet.json'),
      JSON.stringify({ coordinator: { grpc: '127.0.0.1:7401' }, routers: [{ listen: '127.0.0.1:5433' }], caPath: '/x/ca.crt', sniDomain: 'pgs.localhost' }),
    );
    expect(resolveCoordinator(undefined, where).address).toBe('127.0.0.1:7401');
    expect(resolveRouter(undefined, where)).toMatchObject({ address: '127.0.0.1:5433', fleet: { caPath: '/x/ca.crt' } });

    fs.mkdirSync(path.join(home, '.config', 'pgs'), { recursive: true });
    fs.writeFileSync(path.join(home, '.config', 'pgs', 'config.json'), JSON.stringify({ coordinator: 'db-admin.example:7400' }));
    expect(resolveCoordinator(undefined, where).address).toBe('db-admin.example:7400');

    where.env.PGS_COORDINATOR = '10.0.0.1:7400';
    expect(resolveCoordinator(undefined, where)).toEqual({ address: '10.0.0.1:7400', source: 'PGS_COORDINATOR' });
    expect(resolveCoordinator('[::1]:7400', where)).toEqual({ address: '[::1]:7400', source: '--coordinator' });
    // Several coordinators: every address, comma-separated (pgsctl finds the leader).
    where.env.PGS_COORDINATOR = '10.0.0.1:7400, 10.0.0.2:7400';
    expect(resolveCoordinator(undefined, where)).toEqual({ address: '10.0.0.1:7400,10.0.0.2:7400', source: 'PGS_COORDINATOR' });
  });

  it('refuses a malformed address or config file with a usage error', () => {
    const home = tempDir();
    const where = { env: {} as NodeJS.ProcessEnv, cwd: home, home };
    expect(() => resolveCoordinator('localhost', where)).toThrow(UsageError);
    expect(() => resolveCoordinator('host:99999', where)).toThrow(/expected host:port/);
    expect(() => resolveCoordinator('a:1,,b:2', where)).toThrow(/expected host:port\[,host:port...\]/);
    expect(() => resolveCoordinator('a:1,b', where)).toThrow(/invalid coordinator address "b"/);
    fs.mkdirSync(path.join(home, '.config', 'pgs'), { recursive: true });
    fs.writeFileSync(path.join(home, '.config', 'pgs', 'config.json'), '{not json');
    expect(() => resolveCoordinator(undefined, where)).toThrow(/not valid JSON/);
  });
});
