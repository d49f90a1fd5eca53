import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { TenantSchema, TenantStatus, type Tenant, type UpdateTenantRequest } from '@pgs/proto';
import { Code, RpcError } from '@pgs/rpc';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCoordinator, type FakeCoordinator } from '../testing/fake-coordinator.js';
import { runInProcess } from '../testing/run-in-process.js';

/** A concurrent writer is a race a real coordinator cannot be made to lose on cue: scripted answers stand in for it. */
function tenant(revision: number, memoryMib: number, description = ''): Tenant {
  return create(TenantSchema, {
    id: 'acme',
    revision: BigInt(revision),
    status: TenantStatus.ACTIVE,
    spec: { resources: { cpuMillis: 1000, memoryMib, diskMib: 8192 }, nodes: 1, version: '15', description },
  });
}

function sequence<T>(answers: T[]): () => T {
  let i = 0;
  return () => answers[Math.min(i++, answers.length - 1)] as T;
}

describe('apply against a tenant that changes between read and update', () => {
  let fake: FakeCoordinator | undefined;
  let dir: string;
  let file: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsctl-conflict-'));
    file = path.join(dir, 'acme.yaml');
    fs.writeFileSync(file, 'apiVersion: pgs.dev/v1\nkind: Tenant\nmetadata: { name: acme }\nspec:\n  resources: { memory: 2Gi }\n');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
  });

  const lists = { listUsers: async () => ({ users: [] }), listDatabases: async () => ({ databases: [] }) };

  it('stops with exit 4 naming the field and its current value when the change touched a field the manifest sets', async () => {
    const read = sequence([tenant(1, 1024), tenant(2, 4096)]);
    fake = await startFakeCoordinator({
      ...lists,
      getTenant: async () => ({ tenant: read() }),
      updateTenant: async () => {
        throw new RpcError(Code.ABORTED, 'stale revision 1: the tenant is at revision 2');
      },
    });
    const res = await runInProcess(fake.address, ['apply', '-f', file]);
    expect(res.code).toBe(4);
    expect(res.stderr).toContain(
      'error: tenant acme changed while applying (revision 1 -> 2): spec.resources.memory is now 4Gi (was 1Gi when read; the manifest asks 2Gi)',
    );
    expect(fake.requests.updateTenant).toHaveLength(1);
  });

  it('plans again from the new read when the change touched only fields the manifest leaves alone', async () => {
    const read = sequence([tenant(1, 1024), tenant(2, 1024, 'edited meanwhile')]);
    const update = sequence<() => { tenant: Tenant }>([
      () => {
        throw new RpcError(Code.ABORTED, 'stale revision 1: the tenant is at revision 2');
      },
      () => ({ tenant: tenant(3, 2048, 'edited meanwhile') }),
    ]);
    fake = await startFakeCoordinator({ ...lists, getTenant: async () => ({ tenant: read() }), updateTenant: async () => update()() });
    const res = await runInProcess(fake.address, ['apply', '-f', file]);
    expect(res.stderr).toContain('tenant acme: updated (revision 2 -> 3): spec.resources.memory');
    expect(res.code).toBe(0);
    const sent = fake.requests.updateTenant as UpdateTenantRequest[];
    expect(sent.map((r) => [r.revision, r.spec?.resources?.memoryMib, r.spec?.description])).toEqual([
      [1n, 2048, ''],
      [2n, 2048, 'edited meanwhile'],
    ]);
  });
});

describe('apply -o json for scripts', () => {
  let fake: FakeCoordinator | undefined;
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
  });

  it('puts a generated owner password in the document, and nothing else on stdout', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsctl-json-'));
    try {
      const file = path.join(dir, 'beta.yaml');
      fs.writeFileSync(file, 'apiVersion: pgs.dev/v1\nkind: Tenant\nmetadata: { name: beta }\n');
      fake = await startFakeCoordinator({
        getTenant: async () => {
          throw new RpcError(Code.NOT_FOUND, 'tenant beta not found');
        },
        createTenant: async () => ({
          tenant: create(TenantSchema, { id: 'beta', revision: 1n, status: TenantStatus.NEW }),
          generatedPassword: 'generated-pw-123',
        }),
      });
      const res = await runInProcess(fake.address, ['apply', '-f', file, '-o', 'json']);
      expect(res.code).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({
        changes: 1,
        tenants: [{ name: 'beta', action: 'create' }],
        generatedPasswords: { beta: 'generated-pw-123' },
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
