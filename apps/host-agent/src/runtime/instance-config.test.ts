import { describe, expect, it } from 'vitest';
import { hbaConf, hostCidr, instanceSettings, settingsConf, tlsSettings } from './instance-config.js';
import { primaryConninfo } from './standby-tools.js';

describe('instance config', () => {
  it('lets the superuser in over the socket only and tenants over SCRAM from the allowed networks', () => {
    const hba = hbaConf([hostCidr('127.0.0.11'), '10.0.0.0/8', '10.0.0.0/8']);
    const rules = hba.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(rules).toEqual([
      'local   all   postgres   trust',
      'local   all   all        scram-sha-256',
      'host    all   postgres   0.0.0.0/0   reject',
      'host    all   postgres   ::/0        reject',
      'host    all   all   127.0.0.11/32   scram-sha-256',
      'host    all   all   10.0.0.0/8   scram-sha-256',
    ]);
    expect(hostCidr('::1')).toBe('::1/128');
  });

  it('with TLS only, every network line is hostssl (the superuser rejects and the local lines stay)', () => {
    const rules = hbaConf([hostCidr('127.0.0.11')], 'pgs_replication', true)
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(rules).toEqual([
      'local   all   postgres   trust',
      'local   all   all        scram-sha-256',
      'host    all   postgres   0.0.0.0/0   reject',
      'host    all   postgres   ::/0        reject',
      'hostssl all   all   127.0.0.11/32   scram-sha-256',
      'hostssl replication   pgs_replication   127.0.0.11/32   scram-sha-256',
    ]);
    expect(tlsSettings({ certFile: '/r/instance-tls/server.crt', keyFile: '/r/instance-tls/server.key' })).toEqual({
      ssl: 'on',
      ssl_cert_file: '/r/instance-tls/server.crt',
      ssl_key_file: '/r/instance-tls/server.key',
    });
    expect(tlsSettings(undefined)).toEqual({ ssl: 'off' });
  });

  it('a standby verifies its primary with verify-full against the fleet CA when TLS is required', () => {
    const r = { user: 'rep', password: '', primaryAddress: '127.0.0.12', primaryPort: 20001, slot: 's', standbyName: 'n', synchronousStandbyNames: '' };
    expect(primaryConninfo(r, '/p', undefined, { caFile: '/r/instance-tls/ca.crt' })).toContain("sslmode='verify-full' sslrootcert='/r/instance-tls/ca.crt'");
    expect(primaryConninfo(r, '/p', undefined, { caFile: undefined })).toContain("sslmode='prefer'");
    expect(primaryConninfo(r, '/p')).not.toContain('sslmode');
  });

  it('derives the sizes from memory and quotes every value', () => {
    const s = instanceSettings({
      listenAddresses: '127.0.0.11',
      port: 20001,
      socketDir: "/d/it's",
      resources: { cpuMillis: 1000, memoryMib: 2048, diskMib: 8192 },
    });
    expect(s).toMatchObject({ listen_addresses: '127.0.0.11', port: '20001', shared_buffers: '512MB', max_connections: '200' });
    expect(settingsConf(s)).toContain("unix_socket_directories = '/d/it''s'");
  });
});
