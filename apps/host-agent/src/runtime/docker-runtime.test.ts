// The docker runtime against a real Docker Engine API (Podman's service in CI: scripts/setup-podman.sh).
// Run alone with: PGS_DOCKER_SOCKET=/run/pgs-podman/podman.sock npx vitest run src/runtime/docker-runtime.test.ts
import fs from 'node:fs';
import Docker from 'dockerode';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstanceState } from '@pgs/proto';
import { InstanceAdmin } from '../instance-admin.js';
import { dockerUnavailableReason, testDockerRuntime } from '../testing/docker-env.js';
import { FakeCoordinator, ownerSpec } from '../testing/fake-coordinator.js';
import { scramVerifier } from '../testing/scram-verifier.js';
import { startTestAgent } from '../testing/test-agent.js';
import { tempDataRoot, testLogger, uniqueTenantId, waitFor } from '../testing/test-env.js';
import type { DockerRuntime } from './docker-runtime.js';
import type { RuntimeSpec } from './runtime.js';

const socketPath = process.env.PGS_DOCKER_SOCKET;
const unavailable = await dockerUnavailableReason(socketPath);
if (unavailable) {
  // Loud on purpose: a skipped driver test must never look like a passed one.
  const bar = '!'.repeat(100);
  console.warn(`\n${bar}\n!!! DOCKER RUNTIME TESTS SKIPPED: ${unavailable}\n${bar}\n`);
}

function specFor(tenantId: string, overrides: Partial<RuntimeSpec> = {}): RuntimeSpec {
  return {
    tenantId,
    specRevision: 1,
    resources: { cpuMillis: 1500, memoryMib: 512, diskMib: 8192 },
    version: '',
    image: '',
    port: 0,
    runState: 'RUNNING',
    ...overrides,
  };
}

async function query<T extends pg.QueryResultRow>(port: number, user: string, password: string, database: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ host: '127.0.0.1', port, user, password, database });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe.skipIf(unavailable !== undefined)('docker runtime (real Docker Engine API)', () => {
  const dataRoot = tempDataRoot();
  const hostId = uniqueTenantId('dh');
  const log = testLogger();
  let runtime: DockerRuntime;
  let admin: InstanceAdmin;
  const docker = new Docker({ socketPath });

  beforeAll(async () => {
    runtime = testDockerRuntime({ socketPath: socketPath!, hostId, dataRoot, log });
    admin = new InstanceAdmin((t, db) => runtime.adminConnection(t, db), log);
    await runtime.init();
  });

  afterAll(async () => {
    // Everything this host id made goes, even after a failure.
    const cleanup = testDockerRuntime({ socketPath: socketPath!, hostId, dataRoot, log });
    for (const i of await cleanup.list()) await cleanup.remove(i.tenantId);
    fs.rmSync(dataRoot, { recursive: true, force: true });
  });

  it('creates a container and volume with labels, limits and a port bound to the address; serves the owner; keeps data across stop, kill -9 and start; deletes', async () => {
    const t = uniqueTenantId('d');
    const made = await runtime.ensure(specFor(t));
    expect(made.running).toBe(false);
    const inst = await runtime.start(t);
    expect(inst.running).toBe(true);
    expect(inst.runtimeId).toMatch(/^[0-9a-f]{64}$/);

    const info = await docker.getContainer(inst.runtimeId).inspect();
    expect(info.Config.Labels).toMatchObject({ 'pgs.tenant': t, 'pgs.host': hostId });
    expect(info.HostConfig.NanoCpus).toBe(1_500_000_000);
    expect(info.HostConfig.Memory).toBe(512 * 1024 * 1024);
    expect(info.HostConfig.PortBindings?.['5432/tcp']).toEqual([{ HostIp: '127.0.0.1', HostPort: String(inst.port) }]);
    expect(info.Mounts.some((m) => m.Type === 'volume' && m.Name === `pgs-${t}-data`)).toBe(true);
    expect(info.Config.Cmd).toEqual(expect.arrayContaining(['-c', 'shared_buffers=128MB', 'max_connections=50']));

    await admin.apply(t, {
      roles: [{ name: t, scramVerifier: scramVerifier('docker-owner-1'), login: true }],
      databases: [{ name: t, owner: t }],
      dropRoles: [],
      dropDatabases: [],
    });
    await query(inst.port, t, 'docker-owner-1', t, "create table notes (body text); insert into notes values ('kept')");
    await expect(query(inst.port, 'postgres', 'anything', 'postgres', 'select 1')).rejects.toThrow(/pg_hba|rejects/);

    await runtime.stop(t);
    expect((await runtime.inspect(t))?.running).toBe(false);
    await runtime.start(t);
    // A crash leaves postmaster.pid in the volume; the next start must still work.
    await docker.getContainer(inst.runtimeId).kill({ signal: 'SIGKILL' });
    await waitFor('the container to stop', async () => (await runtime.inspect(t))?.running === false);
    const again = await runtime.start(t);
    expect(again.port).toBe(inst.port);
    expect(await query<{ body: string }>(again.port, t, 'docker-owner-1', t, 'select body from notes')).toEqual([{ body: 'kept' }]);

    // A spec change recreates the container on the same volume and port, data intact.
    const bigger = await runtime.ensure(specFor(t, { specRevision: 2, resources: { cpuMillis: 2000, memoryMib: 1024, diskMib: 8192 } }));
    expect(bigger.running).toBe(true);
    expect((await docker.getContainer(bigger.runtimeId).inspect()).HostConfig.Memory).toBe(1024 * 1024 * 1024);
    expect(await query<{ body: string }>(bigger.port, t, 'docker-owner-1', t, 'select body from notes')).toEqual([{ body: 'kept' }]);

    await runtime.remove(t);
    expect(await runtime.inspect(t)).toBeUndefined();
    await expect(docker.getVolume(`pgs-${t}-data`).inspect()).rejects.toMatchObject({ statusCode: 404 });
  }, 120_000);

  it('an agent restarted on the same host adopts its containers by label (same container, same pid)', async () => {
    const coordinator = await FakeCoordinator.start();
    const t = uniqueTenantId('a');
    try {
      const first = await startTestAgent({
        coordinator: coordinator.address,
        dataRoot,
        hostId,
        runtime: testDockerRuntime({ socketPath: socketPath!, hostId, dataRoot, log }),
      });
      await waitFor('agent 1 connected', () => coordinator.connected);
      await coordinator.desired({ full: true, instances: [ownerSpec(t, 'docker-owner-2')] });
      const running = await waitFor('the instance running', () => coordinator.running(t), 60_000);
      expect(running.runtimeId).toMatch(/^[0-9a-f]{64}$/);
      await first.stop();

      const hellos = coordinator.hellos.length;
      const second = await startTestAgent({
        coordinator: coordinator.address,
        dataRoot,
        hostId,
        runtime: testDockerRuntime({ socketPath: socketPath!, hostId, dataRoot, log }),
      });
      try {
        await waitFor('agent 2 hello', () => coordinator.hellos.length > hellos);
        const adopted = coordinator.hellos.at(-1)?.instances.find((i) => i.tenantId === t);
        expect(adopted).toMatchObject({ state: InstanceState.RUNNING, runtimeId: running.runtimeId, pid: running.pid, port: running.port });
        expect(adopted?.health).toMatchObject({ up: true, acceptingConnections: true });
        expect(await query<{ u: string }>(running.port, t, 'docker-owner-2', t, 'select current_user as u')).toEqual([{ u: t }]);
      } finally {
        await second.stop();
      }
    } finally {
      await coordinator.stop();
    }
  }, 120_000);

  it('reports the majors of the labelled PostgreSQL images (no replicas, no backups) and runs a tenant of another major from its image', async () => {
    const reported = runtime.postgresMajors();
    const majors = reported?.majors.map((m) => m.major) ?? [];
    expect(majors).toContain('15');
    expect(reported?.majors.every((m) => !m.pgBasebackup && !m.pgbackrest)).toBe(true);
    const other = majors.find((m) => m !== '15');
    if (other === undefined) {
      console.warn('only a PostgreSQL 15 image here: run setup-postgres-versions.sh then setup-podman.sh for the other majors');
      return;
    }
    const t = uniqueTenantId('dv');
    const inst = await runtime.start((await runtime.ensure(specFor(t, { version: other }))).tenantId);
    try {
      await admin.apply(t, {
        roles: [{ name: t, scramVerifier: scramVerifier('docker-owner-2'), login: true }],
        databases: [{ name: t, owner: t }],
        dropRoles: [],
        dropDatabases: [],
      });
      const rows = await query<{ v: string }>(inst.port, t, 'docker-owner-2', t, 'select version() as v');
      expect(rows[0]?.v).toMatch(new RegExp(`^PostgreSQL ${other}\\.`));
    } finally {
      await runtime.remove(t);
    }
  });
});
