// A runtime without backups (the docker driver has no `backups`) refuses them clearly: RunBackup
// answers NOT_SUPPORTED and a restore is reported failed with NOT_SUPPORTED, not retried. The
// runtime here is a stand-in at our own seam (InstanceRuntime) that creates nothing, so no
// database is involved: both refusals happen before any instance would be made.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { BackupType, InstanceState } from '@pgs/proto';
import { AgentError } from '../errors.js';
import type { InstanceRuntime } from '../runtime/runtime.js';
import { FakeCoordinator, ownerSpec } from '../testing/fake-coordinator.js';
import { startTestAgent, type TestAgent } from '../testing/test-agent.js';
import { tempDataRoot, uniqueTenantId, waitFor } from '../testing/test-env.js';

/** A docker-kind runtime that has no instances and makes none. */
function runtimeWithoutBackups(): InstanceRuntime {
  const refuse = async (): Promise<never> => {
    throw new AgentError('RUNTIME_ERROR', 'this stand-in runtime makes no instances');
  };
  return {
    kind: 'docker',
    supportsReplication: false,
    init: async () => undefined,
    list: async () => [],
    inspect: async () => undefined,
    ensure: refuse,
    start: refuse,
    stop: async () => undefined,
    isStandby: async () => false,
    checkpointLsn: async () => '',
    remove: async () => undefined,
    adminConnection: () => {
      throw new AgentError('INSTANCE_NOT_FOUND', 'no instances here');
    },
    close: async () => undefined,
    readySpares: () => undefined,
    setTls: () => false,
    reloadTls: async () => undefined,
    postgresMajors: () => undefined,
  };
}

describe('a runtime without backups', () => {
  const dataRoot = tempDataRoot();
  let fake: FakeCoordinator;
  let agent: TestAgent;

  beforeAll(async () => {
    fake = await FakeCoordinator.start(200, 60_000);
    fake.backupRepository = { kind: { case: 'posix', value: { path: '/nonexistent' } }, cipherPass: 'x'.repeat(16), keyId: 'k' };
    agent = await startTestAgent({ coordinator: fake.address, dataRoot, runtime: runtimeWithoutBackups() });
    await waitFor('agent connected', () => fake.connected);
  });

  afterAll(async () => {
    await agent?.stop();
    await fake?.stop();
    fs.rmSync(dataRoot, { recursive: true, force: true });
  });

  it('reports a restore as not supported, once', async () => {
    const tenant = uniqueTenantId('d');
    await fake.desired({
      instances: [
        ownerSpec(tenant, 'pw', {
          backup: { stanza: tenant },
          restore: { restoreId: 'r1', stanza: 'src', target: { case: 'time', value: timestampFromMs(Date.now()) } },
        }),
      ],
    });
    const status = await waitFor('restore refused', () => fake.latest(tenant)?.recovery, 10_000);
    expect(status).toMatchObject({ restoreId: 'r1', ok: false, errorCode: 'NOT_SUPPORTED' });
    expect(status.message).toContain('needs the process runtime; this host runs docker');
    expect(fake.latest(tenant)?.state).toBe(InstanceState.FAILED);
  });

  it('answers RunBackup with NOT_SUPPORTED', async () => {
    const tenant = uniqueTenantId('d');
    await fake.desired({ instances: [ownerSpec(tenant, 'pw', { backup: { stanza: tenant } })] });
    await waitFor('instance known', () => fake.latest(tenant));
    const commandId = crypto.randomUUID();
    await fake.command({ commandId, tenantId: tenant, action: { case: 'runBackup', value: { backupId: 'b1', type: BackupType.FULL, stanza: tenant } } });
    const result = await waitFor('backup refused', () => fake.result(commandId), 10_000);
    expect(result).toMatchObject({ ok: false, errorCode: 'NOT_SUPPORTED' });
    expect(result.message).toContain('backups need the process runtime');
  });
});
