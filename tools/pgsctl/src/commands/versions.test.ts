import { create } from '@bufbuild/protobuf';
import { PostgresVersionSchema } from '@pgs/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeCoordinator, type FakeCoordinator } from '../testing/fake-coordinator.js';
import { runInProcess } from '../testing/run-in-process.js';

const v18 = create(PostgresVersionSchema, {
  id: '18',
  major: 18,
  displayName: 'PostgreSQL 18',
  hostIds: ['h1', 'h2'],
  serverVersions: ['18.4'],
  limitations: 'no replicas: no host that runs it has pg_basebackup 18',
});
const v15 = create(PostgresVersionSchema, {
  id: '15',
  major: 15,
  displayName: 'PostgreSQL 15',
  image: 'localhost/pgs-postgres:15',
  default: true,
  hostIds: ['h1'],
  serverVersions: ['15.14'],
  replicasSupported: true,
  backupsSupported: true,
});

describe('version list against a coordinator answering over gRPC', () => {
  let fake: FakeCoordinator | undefined;
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
  });

  it('shows each major, where it runs, what it supports and why not, and the default', async () => {
    fake = await startFakeCoordinator({ listVersions: async () => ({ versions: [v18, v15] }) });
    const table = await runInProcess(fake.address, ['version', 'list']);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^VERSION\s+SERVER\s+HOSTS\s+REPLICAS\s+BACKUPS\s+LIMITATIONS$/);
    expect(lines[1]).toMatch(/^18\s+18\.4\s+h1, h2\s+no\s+no\s+no replicas: no host that runs it has pg_basebackup 18$/);
    expect(lines[2]).toMatch(/^15 \(default\)\s+15\.14\s+h1\s+yes\s+yes\s+-$/);
    const json = await runInProcess(fake.address, ['versions', 'ls', '-o', 'json']);
    expect(JSON.parse(json.stdout)).toEqual({
      versions: [
        {
          id: '18',
          name: 'PostgreSQL 18',
          default: false,
          deprecated: false,
          serverVersions: ['18.4'],
          hosts: ['h1', 'h2'],
          replicas: false,
          backups: false,
          limitations: 'no replicas: no host that runs it has pg_basebackup 18',
          image: '',
        },
        {
          id: '15',
          name: 'PostgreSQL 15',
          default: true,
          deprecated: false,
          serverVersions: ['15.14'],
          hosts: ['h1'],
          replicas: true,
          backups: true,
          limitations: '',
          image: 'localhost/pgs-postgres:15',
        },
      ],
    });
  });

  it("still prints pgsctl's own version without a coordinator", async () => {
    const res = await runInProcess('127.0.0.1:1', ['version']);
    expect(res).toMatchObject({ code: 0, stdout: expect.stringMatching(/^pgsctl \d+\.\d+\.\d+\n$/) });
  });
});
