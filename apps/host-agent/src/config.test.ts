import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@pgs/service-kit';
import { AGENT_OPTIONS, readAgentConfig } from './config.js';

const base = ['--host-id', 'h1', '--data-root', '/tmp/x'];

describe('agent config', () => {
  it('reads flags with defaults, labels and capacity overrides', () => {
    const r = readAgentConfig(
      [...base, '--address', '127.0.0.11', '--labels', 'zone=a,region=eu', '--cpu', '1.5', '--memory', '8Gi', '--port-range', '20000-20099'],
      {},
    );
    expect(r.kind).toBe('config');
    if (r.kind !== 'config') return;
    expect(r.config).toMatchObject({
      hostId: 'h1',
      address: '127.0.0.11',
      runtime: 'process',
      labels: { zone: 'a', region: 'eu' },
      capacity: { cpuMillis: 1500, memoryMib: 8192 },
      portRange: { first: 20000, last: 20099 },
      coordinator: '127.0.0.1:7400',
      opsListen: { host: '127.0.0.1', port: 0 },
    });
    expect(r.config.capacity.diskMib).toBeUndefined();
    expect(Object.isFrozen(r.config)).toBe(true);
  });

  it('takes PGS_* variables, flags winning', () => {
    const r = readAgentConfig(['--runtime', 'docker'], {
      PGS_HOST_ID: 'h2',
      PGS_DATA_ROOT: '/d',
      PGS_RUNTIME: 'process',
      PGS_DOCKER_SOCKET: '/run/x.sock',
      PGS_HEALTH_INTERVAL: '500ms',
    });
    expect(r.kind === 'config' && r.config).toMatchObject({ hostId: 'h2', runtime: 'docker', dockerSocket: '/run/x.sock', healthInterval: 500 });
  });

  it('refuses bad values with a message naming the flag', () => {
    expect(() => readAgentConfig(['--data-root', '/d'], {})).toThrow(/--host-id/);
    expect(() => readAgentConfig([...base, '--address', 'localhost'], {})).toThrow(/--address/);
    expect(() => readAgentConfig([...base, '--port-range', '30000-20000'], {})).toThrow(/--port-range/);
    expect(() => readAgentConfig([...base, '--labels', 'novalue'], {})).toThrow(/--labels/);
    expect(() => readAgentConfig([...base, '--cpu', 'lots'], {})).toThrow(/--cpu/);
    expect(() => readAgentConfig([...base, '--allow-cidrs', '10.0.0.0/40'], {})).toThrow(/--allow-cidrs/);
    expect(() => readAgentConfig([...base, '--runtime', 'lxc'], {})).toThrow(ConfigError);
    expect(() => readAgentConfig([...base, '--host-id', 'Bad Host'], {})).toThrow(/--host-id/);
  });

  it('documents every option in --help', () => {
    const r = readAgentConfig(['--help'], {});
    expect(r.kind).toBe('help');
    if (r.kind !== 'help') return;
    for (const flag of [
      '--host-id',
      '--address',
      '--coordinator',
      '--data-root',
      '--runtime',
      '--port-range',
      '--labels',
      '--cpu',
      '--memory',
      '--disk',
      '--docker-socket',
      '--pg-bin-dir',
      'PGS_RUNTIME',
    ])
      expect(r.text).toContain(flag);
  });

  it('is documented option by option in the README', () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
    for (const o of Object.values(AGENT_OPTIONS)) expect(readme, `README lacks ${o.flag}`).toContain(`| \`${o.flag}\` | \`${o.env}\` |`);
  });
});
