// A process-runtime instance with the host's instance certificate from a fleet CA: with TLS
// required it refuses plaintext connections from the network (pg_hba hostssl) and serves TLS that
// verifies with verify-full against the CA on the host address; the agent's own socket connection
// is untouched; turning the requirement off (or renewing the certificate) reaches the running
// server by a reload.
import fs from 'node:fs';
import tls from 'node:tls';
import pg from 'pg';
import { createFleetCa, FleetCa, identity, type TlsMaterial } from '@pgs/security';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstanceAdmin } from '../instance-admin.js';
import { instanceTlsFiles, saveInstanceTls } from '../instance-certificate.js';
import { scramVerifier } from '../testing/scram-verifier.js';
import { tempDataRoot, testLogger, testProcessRuntime, uniqueTenantId, waitFor } from '../testing/test-env.js';
import { postgresRunAs } from './os-user.js';
import type { ProcessRuntime } from './process-runtime.js';
import type { InstanceTlsFiles } from './runtime.js';

const ADDRESS = '127.0.0.1';
const PW = 'inner-tls-pw';

async function issue(ca: FleetCa): Promise<TlsMaterial> {
  const leaf = await ca.issue({ identity: identity('instance', 'h1'), ipAddresses: [ADDRESS], serverOnly: true, now: new Date() });
  return { ...leaf, caPem: ca.certPem };
}

async function connectError(config: pg.ClientConfig): Promise<{ code?: string; message: string }> {
  const client = new pg.Client(config);
  try {
    await client.connect();
    await client.end();
    return { message: 'connected' };
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
}

async function serialOverTls(config: pg.ClientConfig): Promise<{ ssl: boolean; serial: string }> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    const r = await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    const socket = (client as unknown as { connection: { stream: { getPeerCertificate?: () => { serialNumber: string } } } }).connection.stream;
    return { ssl: r.rows[0]!.ssl, serial: socket.getPeerCertificate?.().serialNumber ?? '' };
  } finally {
    await client.end();
  }
}

describe('instance TLS (process runtime, real PostgreSQL)', () => {
  const dataRoot = tempDataRoot();
  const log = testLogger();
  let runtime: ProcessRuntime;
  let ca: FleetCa;
  let files: InstanceTlsFiles;
  const tenantId = uniqueTenantId('tls');
  let port = 0;

  beforeAll(async () => {
    ca = await FleetCa.load(await createFleetCa({ now: new Date() }));
    files = instanceTlsFiles(dataRoot);
    saveInstanceTls(files, await issue(ca), postgresRunAs('postgres'));
    runtime = testProcessRuntime({ dataRoot, address: ADDRESS, log });
    await runtime.init();
    expect(runtime.setTls({ files, required: true })).toBe(true);
    await runtime.ensure({
      tenantId,
      specRevision: 1,
      resources: { cpuMillis: 1000, memoryMib: 512, diskMib: 8192 },
      version: '',
      image: '',
      port: 0,
      runState: 'RUNNING',
    });
    port = (await runtime.start(tenantId)).port;
    const admin = new InstanceAdmin((t, db) => runtime.adminConnection(t, db), log);
    await admin.apply(tenantId, {
      roles: [{ name: tenantId, scramVerifier: scramVerifier(PW), login: true }],
      databases: [{ name: tenantId, owner: tenantId }],
      dropRoles: [],
      dropDatabases: [],
    });
  });

  afterAll(async () => {
    await runtime.remove(tenantId).catch(() => undefined);
    await runtime.close();
    fs.rmSync(dataRoot, { recursive: true, force: true });
  });

  const user = (): pg.ClientConfig => ({ host: ADDRESS, port, user: tenantId, password: PW, database: tenantId });
  // verify-full: the chain to the fleet CA, and the host address in the certificate's IP SANs.
  const verifyFull = (): pg.ClientConfig['ssl'] => ({
    ca: ca.certPem,
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(ADDRESS, cert),
  });

  it('refuses a plaintext connection from the network and serves verified TLS', async () => {
    const plain = await connectError({ ...user(), ssl: false });
    expect(plain.code).toBe('28000');
    expect(plain.message).toMatch(/no encryption/);
    const secure = await serialOverTls({ ...user(), ssl: verifyFull() });
    expect(secure.ssl).toBe(true);
    // The agent's socket connection as the superuser is as before.
    const admin = new pg.Client(runtime.adminConnection(tenantId));
    await admin.connect();
    await admin.end();
  });

  it('takes a renewed certificate and a lifted requirement with a reload, not a restart', async () => {
    const pid = (await runtime.inspect(tenantId))!.pid;
    const before = (await serialOverTls({ ...user(), ssl: verifyFull() })).serial;
    saveInstanceTls(files, await issue(ca), postgresRunAs('postgres'));
    await runtime.reloadTls();
    await waitFor('the renewed certificate served', async () => (await serialOverTls({ ...user(), ssl: verifyFull() })).serial !== before || undefined, 10_000);
    expect(runtime.setTls({ files, required: false })).toBe(true);
    await runtime.ensure({
      tenantId,
      specRevision: 1,
      resources: { cpuMillis: 1000, memoryMib: 512, diskMib: 8192 },
      version: '',
      image: '',
      port,
      runState: 'RUNNING',
    });
    await waitFor('plaintext accepted again', async () => (await connectError({ ...user(), ssl: false })).message === 'connected' || undefined, 10_000);
    expect((await runtime.inspect(tenantId))!.pid).toBe(pid);
  });
});
