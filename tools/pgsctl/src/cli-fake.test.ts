import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCoordinator, type FakeCoordinator } from './testing/fake-coordinator.js';
import { runPgsctl } from './testing/run-pgsctl.js';

describe('pgsctl against a fake CoordinatorService on a real gRPC server', () => {
  let fake: FakeCoordinator;
  const run = (...args: string[]) => runPgsctl(args, { env: { PGS_COORDINATOR: fake.address } });

  beforeAll(async () => {
    fake = await startFakeCoordinator();
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it('creates with --wait, reaching ACTIVE with a progress line, and prints the generated password once', async () => {
    const res = await run('tenant', 'create', 'acme', '--memory', '2Gi', '--wait');
    expect(res.stderr).toContain('tenant acme is ACTIVE');
    expect(res.stdout).toContain('owner password for user acme');
    expect(res.code).toBe(0);
  });

  it('lists as JSON with numbers and short enum names', async () => {
    const res = await run('tenant', 'list', '-o', 'json');
    expect(res.code).toBe(0);
    const list = JSON.parse(res.stdout) as Array<{ id: string; status: string; revision: number; spec: { resources: { memoryMib: number } } }>;
    expect(list.find((t) => t.id === 'acme')).toMatchObject({ status: 'ACTIVE', revision: 1, spec: { resources: { memoryMib: 2048 } } });
  });

  it('maps ALREADY_EXISTS to exit 4 and NOT_FOUND to exit 3', async () => {
    const dup = await run('tenant', 'create', 'acme');
    expect(dup.code).toBe(4);
    expect(dup.stderr).toContain('already exists');
    const missing = await run('tenant', 'get', 'nope');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('tenant nope not found');
  });

  it('updates only the flags given, with the revision it read', async () => {
    const res = await run('tenant', 'update', 'acme', '--cpu', '1.5', '-o', 'yaml');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/revision: 2/);
    expect(res.stdout).toMatch(/cpuMillis: 1500/);
    expect(res.stdout).toMatch(/memoryMib: 2048/);
    const stale = await run('tenant', 'update', 'acme', '--cpu', '2', '--revision', '1');
    expect(stale.code).toBe(4);
    expect(stale.stderr).toContain('stale revision');
  });

  it('refuses delete without --yes when stdin is not a terminal, and deletes with it', async () => {
    const refused = await run('tenant', 'delete', 'acme');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');
    const deleted = await run('tenant', 'delete', 'acme', '--yes');
    expect(deleted.code).toBe(0);
    expect((await run('tenant', 'get', 'acme')).code).toBe(3);
  });

  it('renders host list and status tables', async () => {
    const hosts = await run('host', 'list');
    expect(hosts.code).toBe(0);
    expect(hosts.stdout).toMatch(/^NAME\s+STATE\s+ADDRESS/);
    expect(hosts.stdout).toMatch(/h1\s+READY\s+127\.0\.0\.11/);
    const status = await run('status');
    expect(status.stdout).toContain('Problems: none');
    expect(status.stdout).toContain('2 connected');
  });
});
