/**
 * The security baseline against the real coordinator with security on: mTLS for components (no certificate,
 * a foreign or expired one, host A speaking for host B, a router watching as another), join and
 * renewal, every RPC for every role, tenant scoping, REST tokens, the audit log, key rotation,
 * and no secret in the store file or the logs.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { AgentControlService, CoordinatorService, EnrollmentService, RouteFeedService } from '@pgs/proto';
import { Code, createClient, RpcError, type Client } from '@pgs/rpc';
import {
  certificateInfo,
  createCsr,
  createFleetCa,
  FleetCa,
  generatePrivateKey,
  generateSecretKey,
  identity,
  identityOfCertificate,
  joinTokenCaFingerprint,
  fetchPinnedCaCertificate,
  mtlsChannelCredentials,
  scanForLeaks,
  tlsChannelCredentials,
} from '@pgs/security';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import { eventually, startHarness } from './testing/harness.js';
import { FakeAgent } from './testing/fake-agent.js';
import { startSecureHarness, type SecureHarness } from './testing/secure-harness.js';

let h: SecureHarness;
let admin: Client<typeof CoordinatorService>;
/** Every password and token this file made: none may show up in the store file or the logs. */
const secrets: string[] = [];

async function codeOf(p: Promise<unknown>): Promise<Code> {
  try {
    await p;
    return Code.OK;
  } catch (err) {
    if (err instanceof RpcError) return err.code;
    throw err;
  }
}

/** Opens the agent stream with `creds`, says Hello as `hostId`; the status the stream ends with (OK = welcomed). */
async function agentOutcome(creds: ChannelCredentials, hostId: string): Promise<Code> {
  const client = createClient(AgentControlService, h.coordinator.grpcAddress, creds);
  try {
    const stream = client.connect();
    await stream
      .send({
        message: { case: 'hello', value: { hostId, address: '127.0.0.99', capacity: { cpuMillis: 1000, memoryMib: 1024, diskMib: 1024 }, runtime: 'process' } },
      })
      .catch(() => undefined);
    for await (const m of stream) {
      if (m.message.case === 'welcome') {
        stream.cancel();
        return Code.OK;
      }
    }
    return Code.UNKNOWN;
  } catch (err) {
    if (err instanceof RpcError) return err.code;
    throw err;
  } finally {
    client.close();
  }
}

async function operatorToken(name: string, role: string, tenantIds: string[] = []): Promise<string> {
  const { token } = await admin.createOperatorToken({ name, role, tenantIds, ttlSeconds: 3600 });
  secrets.push(token);
  return token;
}

beforeAll(async () => {
  h = await startSecureHarness();
  admin = h.operator(h.adminToken);
  secrets.push(h.adminToken);
}, 60_000);

afterAll(async () => {
  await h?.stop();
  if (h) fs.rmSync(h.dataDir, { recursive: true, force: true });
});

describe('bootstrap', () => {
  it('writes the fleet-admin token to a 0600 file and the CA beside the store, and logs only where', () => {
    expect(fs.statSync(h.coordinator.adminTokenFile).mode & 0o777).toBe(0o600);
    expect(h.adminToken).toMatch(/^pgso_[A-Za-z0-9_-]{43}$/);
    expect(certificateInfo(h.caPem).isCa).toBe(true);
    expect(h.logs()).toContain('initial fleet-admin token written');
    expect(h.logs()).not.toContain(h.adminToken);
  });
});

describe('components need a valid certificate', () => {
  it('refuses an agent without a certificate, with one from another CA, and with an expired one', async () => {
    expect(await agentOutcome(tlsChannelCredentials(h.caPem), 'nocert')).toBe(Code.UNAUTHENTICATED);
    const foreign = await FleetCa.load(await createFleetCa({ now: new Date() }));
    const leaf = await foreign.issue({ identity: identity('host', 'foreign'), now: new Date() });
    expect(await agentOutcome(mtlsChannelCredentials({ caPem: h.caPem, certPem: leaf.certPem, keyPem: leaf.keyPem }), 'foreign')).toBe(Code.UNAUTHENTICATED);
    const expired = await h.componentCredentials('host', 'expired', { now: new Date(Date.now() - 2 * 3600_000), lifetimeMs: 3600_000 });
    expect(await agentOutcome(expired, 'expired')).toBe(Code.UNAUTHENTICATED);
    const hosts = await admin.listHosts({});
    expect(hosts.hosts.map((x) => x.id)).not.toEqual(expect.arrayContaining(['nocert', 'foreign', 'expired']));
  });

  it('lets host A speak for A only, audited with its principal', async () => {
    const a = await h.componentCredentials('host', 'host-a');
    expect(await agentOutcome(a, 'host-b')).toBe(Code.PERMISSION_DENIED);
    const refused = await admin.listEvents({ hostId: 'host-b' });
    expect(refused.events.some((e) => e.action === 'access.refused' && e.principal === 'host:host-a')).toBe(true);
    const agent = new FakeAgent({ hostId: 'host-a', address: '127.0.0.21', coordinator: h.coordinator.grpcAddress, credentials: a });
    await agent.connect();
    await eventually(() => agent.welcomed, 5000, 'host-a welcomed');
    await agent.close();
    expect((await admin.getHost({ id: 'host-a' })).host?.id).toBe('host-a');
    await expect(admin.getHost({ id: 'host-b' })).rejects.toMatchObject({ code: Code.NOT_FOUND });
  });

  it('lets a router watch routes only as itself, and keeps hosts and operators off the route feed', async () => {
    const watch = async (creds: ChannelCredentials, routerId: string): Promise<Code> => {
      const client = createClient(RouteFeedService, h.coordinator.grpcAddress, creds);
      try {
        for await (const batch of client.watchRoutes({ routerId, sinceRevision: 0n })) {
          if (batch.snapshot) return Code.OK;
        }
        return Code.UNKNOWN;
      } catch (err) {
        if (err instanceof RpcError) return err.code;
        throw err;
      } finally {
        client.close();
      }
    };
    const r1 = await h.componentCredentials('router', 'r1');
    expect(await watch(r1, 'r1')).toBe(Code.OK);
    expect(await watch(r1, 'r2')).toBe(Code.PERMISSION_DENIED);
    expect(await watch(await h.componentCredentials('host', 'h9'), 'h9')).toBe(Code.PERMISSION_DENIED);
    expect(await watch(tlsChannelCredentials(h.caPem), 'r1')).toBe(Code.UNAUTHENTICATED);
  });
});

describe('join and renewal', () => {
  it('joins once with a pinned join token, renews over mTLS, and refuses reuse, wrong ids and renewal without a certificate', async () => {
    const { token } = await admin.createJoinToken({ kind: 'host', componentId: 'joiner', ttlSeconds: 600 });
    secrets.push(token);
    // The joiner trusts the coordinator through the CA pin in the token alone.
    const caPem = await fetchPinnedCaCertificate(h.coordinator.grpcAddress, joinTokenCaFingerprint(token)!, { now: new Date() });
    expect(caPem).toBe(h.caPem);
    const keyPem = await generatePrivateKey();
    const csrPem = await createCsr(identity('host', 'joiner'), keyPem);
    const enroll = createClient(EnrollmentService, h.coordinator.grpcAddress, tlsChannelCredentials(caPem));
    await expect(enroll.join({ token, kind: 'host', componentId: 'someone-else', csrPem })).rejects.toMatchObject({ code: Code.PERMISSION_DENIED });
    await expect(enroll.join({ token, kind: 'router', componentId: 'joiner', csrPem })).rejects.toMatchObject({ code: Code.PERMISSION_DENIED });
    const joined = await enroll.join({ token, kind: 'host', componentId: 'joiner', csrPem });
    expect(identityOfCertificate(joined.certificatePem)).toEqual({ kind: 'host', id: 'joiner' });
    await expect(enroll.join({ token, kind: 'host', componentId: 'joiner', csrPem })).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
    await expect(enroll.renewCertificate({ csrPem })).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
    enroll.close();

    const mtls = createClient(EnrollmentService, h.coordinator.grpcAddress, mtlsChannelCredentials({ caPem, certPem: joined.certificatePem, keyPem }));
    const newKey = await generatePrivateKey();
    // The CSR may say anything: the identity comes from the current certificate.
    const renewed = await mtls.renewCertificate({ csrPem: await createCsr(identity('host', 'root'), newKey) });
    mtls.close();
    expect(identityOfCertificate(renewed.certificatePem)).toEqual({ kind: 'host', id: 'joiner' });
    expect(certificateInfo(renewed.certificatePem).serialNumber).not.toBe(certificateInfo(joined.certificatePem).serialNumber);
    expect(await agentOutcome(mtlsChannelCredentials({ caPem, certPem: renewed.certificatePem, keyPem: newKey }), 'joiner')).toBe(Code.OK);
  });
});

describe('instance certificates', () => {
  it('issues a host a server-only certificate naming its address and instance:<host>, which no service accepts', async () => {
    const keyPem = await generatePrivateKey();
    const csrPem = await createCsr(identity('instance', 'ih1'), keyPem);
    const asHost = createClient(EnrollmentService, h.coordinator.grpcAddress, await h.componentCredentials('host', 'ih1'));
    const asRouter = createClient(EnrollmentService, h.coordinator.grpcAddress, await h.componentCredentials('router', 'ir1'));
    const anonymous = createClient(EnrollmentService, h.coordinator.grpcAddress, tlsChannelCredentials(h.caPem));
    try {
      const issued = await asHost.issueInstanceCertificate({ csrPem, address: '127.0.0.77' });
      const info = certificateInfo(issued.certificatePem);
      expect(info.identity).toEqual({ kind: 'instance', id: 'ih1' });
      expect(info.ipAddresses).toEqual(['127.0.0.77']);
      expect(issued.caCertificatePem).toBe(h.caPem);
      expect(await codeOf(asHost.issueInstanceCertificate({ csrPem, address: 'db.example' }))).toBe(Code.INVALID_ARGUMENT);
      expect(await codeOf(asRouter.issueInstanceCertificate({ csrPem, address: '127.0.0.77' }))).toBe(Code.PERMISSION_DENIED);
      expect(await codeOf(anonymous.issueInstanceCertificate({ csrPem, address: '127.0.0.77' }))).toBe(Code.UNAUTHENTICATED);
      // Another host's registered address is not for this host to name.
      expect(await agentOutcome(await h.componentCredentials('host', 'ih2'), 'ih2')).toBe(Code.OK);
      expect(await codeOf(asHost.issueInstanceCertificate({ csrPem, address: '127.0.0.99' }))).toBe(Code.PERMISSION_DENIED);
      // The instance key cannot stand in for the host: its certificate opens no component service.
      const asInstance = mtlsChannelCredentials({ caPem: h.caPem, certPem: issued.certificatePem, keyPem });
      expect(await agentOutcome(asInstance, 'ih1')).not.toBe(Code.OK);
    } finally {
      asHost.close();
      asRouter.close();
      anonymous.close();
    }
  });
});

const FA = 'fleet-admin';
const OP = 'operator';
const RD = 'reader';
const TW = 'tenant-writer';
const TR = 'tenant-reader';
const EVERYONE = [FA, OP, RD, TW, TR];
const TENANT_WRITERS = [FA, OP, TW];

/** Who may call what, written out by hand from the security baseline's role table (not derived from the code under test). */
const ALLOWED: Record<string, string[]> = {
  CreateTenant: [FA, OP],
  GetTenant: EVERYONE,
  ListTenants: EVERYONE,
  UpdateTenant: TENANT_WRITERS,
  DeleteTenant: [FA, OP],
  StartTenant: TENANT_WRITERS,
  StopTenant: TENANT_WRITERS,
  SuspendTenant: TENANT_WRITERS,
  ResumeTenant: TENANT_WRITERS,
  SetTenantAccess: TENANT_WRITERS,
  RecreateTenant: [FA, OP],
  RunInitSql: TENANT_WRITERS,
  SwitchoverTenant: TENANT_WRITERS,
  MoveTenant: [FA, OP],
  UpgradeTenant: [FA, OP],
  RestoreTenant: [FA, OP],
  GetRestore: EVERYONE,
  CreateBackup: TENANT_WRITERS,
  ListBackups: EVERYONE,
  GetBackup: EVERYONE,
  DeleteBackup: [FA, OP],
  CreateUser: TENANT_WRITERS,
  GetUser: EVERYONE,
  ListUsers: EVERYONE,
  UpdateUserPassword: TENANT_WRITERS,
  DeleteUser: TENANT_WRITERS,
  CreateDatabase: TENANT_WRITERS,
  GetDatabase: EVERYONE,
  ListDatabases: EVERYONE,
  DeleteDatabase: TENANT_WRITERS,
  ListHosts: [FA, OP, RD],
  GetHost: [FA, OP, RD],
  CordonHost: [FA, OP],
  UncordonHost: [FA, OP],
  DrainHost: [FA, OP],
  ListVersions: EVERYONE,
  ListRoutes: EVERYONE,
  ListEvents: EVERYONE,
  WatchEvents: EVERYONE,
  GetFleetStatus: [FA, OP, RD],
  CreateJoinToken: [FA],
  CreateOperatorToken: [FA],
  ListOperatorTokens: [FA],
  RevokeOperatorToken: [FA],
  RotateEncryptionKey: [FA],
};

/** Requests that pass the guard harmlessly: they name the (missing) tenant in scope, or are invalid after it. */
const REQUESTS: Record<string, object> = {
  CreateTenant: { id: 'Not A Valid Id' },
  CreateJoinToken: { kind: 'bogus' },
  CreateOperatorToken: { name: 'never', role: 'bogus' },
  RevokeOperatorToken: { name: 'nobody' },
  GetHost: { id: 'no-host' },
  CordonHost: { id: 'no-host' },
  UncordonHost: { id: 'no-host' },
  DrainHost: { id: 'no-host' },
};

describe('every RPC for every role', () => {
  it('allows exactly what the role may and refuses the rest (and everything without a token)', async () => {
    const clients: Record<string, Client<typeof CoordinatorService>> = { none: h.operator() };
    for (const role of EVERYONE) clients[role] = h.operator(await operatorToken(`t-${role}`, role, role.startsWith('tenant-') ? ['scoped'] : []));
    const results: string[] = [];
    for (const method of CoordinatorService.methods) {
      const allowed = ALLOWED[method.name];
      expect(allowed, `no expectation for ${method.name}`).toBeDefined();
      const request = REQUESTS[method.name] ?? { id: 'scoped', tenantId: 'scoped', name: 'thing' };
      for (const [who, client] of Object.entries(clients)) {
        const call = (client as unknown as Record<string, (r: object, o?: object) => unknown>)[method.localName]!;
        let code: Code;
        if (method.methodKind === 'server_streaming') {
          const stream = call({}, { signal: AbortSignal.timeout(300) }) as AsyncIterable<unknown>;
          code = await codeOf(
            (async () => {
              for await (const _ of stream) void _;
            })(),
          );
          if (code === Code.CANCELLED || code === Code.DEADLINE_EXCEEDED) code = Code.OK;
        } else {
          code = await codeOf(call(request) as Promise<unknown>);
        }
        const expected = who === 'none' ? 'UNAUTHENTICATED' : allowed!.includes(who) ? 'allowed' : 'PERMISSION_DENIED';
        const got = code === Code.UNAUTHENTICATED ? 'UNAUTHENTICATED' : code === Code.PERMISSION_DENIED ? 'PERMISSION_DENIED' : 'allowed';
        results.push(`${method.name} ${who}: ${got === expected ? 'ok' : `expected ${expected}, got ${Code[code]}`}`);
      }
    }
    expect(results.filter((r) => !r.endsWith(': ok'))).toEqual([]);
    expect(results.length).toBe(CoordinatorService.methods.length * 6);
    // Refusals are in the audit log with the principal.
    const refused = (await admin.listEvents({ limit: 1000 })).events.filter((e) => e.action === 'access.refused');
    expect(refused.some((e) => e.principal === 'operator:t-reader (reader)' && e.details.method?.endsWith('/CreateTenant'))).toBe(true);
    expect(refused.some((e) => e.principal === 'anonymous' && e.details.method?.endsWith('/ListTenants'))).toBe(true);
  });

  it('names the caller in the events of the calls it makes', async () => {
    const token = await operatorToken('ops-1', 'operator');
    const ops = h.operator(token);
    const password = 'audited-pass-1';
    secrets.push(password);
    await ops.createTenant({ id: 'audited', ownerPassword: password });
    const events = await admin.listEvents({ tenantId: 'audited' });
    expect(events.events.find((e) => e.action === 'tenant.create')?.principal).toBe('operator:ops-1 (operator)');
    await admin.revokeOperatorToken({ name: 'ops-1' });
    await expect(ops.getTenant({ id: 'audited' })).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
    expect((await admin.listOperatorTokens({})).tokens.map((t) => t.name)).not.toContain('ops-1');
  });
});

describe('tenant scope', () => {
  it('shows a tenant-reader of A nothing of B, over gRPC and REST', async () => {
    for (const id of ['tenant-a', 'tenant-b']) {
      const password = `${id}-password`;
      secrets.push(password);
      await admin.createTenant({ id, ownerPassword: password });
    }
    const token = await operatorToken('reader-of-a', 'tenant-reader', ['tenant-a']);
    const reader = h.operator(token);
    expect((await reader.listTenants({})).tenants.map((t) => t.id)).toEqual(['tenant-a']);
    await expect(reader.getTenant({ id: 'tenant-b' })).rejects.toMatchObject({ code: Code.PERMISSION_DENIED });
    await expect(reader.listUsers({ tenantId: 'tenant-b' })).rejects.toMatchObject({ code: Code.PERMISSION_DENIED });
    await expect(reader.listEvents({ tenantId: 'tenant-b' })).rejects.toMatchObject({ code: Code.PERMISSION_DENIED });
    const events = (await reader.listEvents({ limit: 1000 })).events;
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.tenantId === 'tenant-a')).toBe(true);
    const routes = await reader.listRoutes({});
    expect(routes.routes.every((r) => r.tenantId === 'tenant-a')).toBe(true);
    expect(routes.routers).toEqual([]);
    await expect(reader.updateTenant({ id: 'tenant-a', revision: 1n, spec: { description: 'no' } })).rejects.toMatchObject({ code: Code.PERMISSION_DENIED });

    const rest = (p: string, init: RequestInit = {}, bearer: string | null = token) =>
      fetch(`http://${h.coordinator.httpAddress}${p}`, { ...init, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
    const list = (await (await rest('/v1/postgres/instances')).json()) as { instances: { uuid: string }[] };
    expect(list.instances.map((i) => i.uuid)).toEqual(['tenant-a']);
    expect((await rest('/v1/postgres/instances/tenant-b')).status).toBe(403);
    expect((await rest('/v1/postgres/instances/tenant-a')).status).toBe(200);
    expect((await rest('/v1/postgres/instances', {}, null)).status).toBe(401);
    expect((await rest('/v1/postgres/instances', {}, 'pgso_not-a-real-token')).status).toBe(401);
    expect((await rest('/v1/postgres/instances', { method: 'POST', body: JSON.stringify({ name: 'nope' }) })).status).toBe(403);
    expect((await rest('/openapi.json', {}, null)).status).toBe(200);
  });
});

describe('secrets', () => {
  it('keeps no plain secret in the store file and none in the logs', async () => {
    const db = path.join(h.dataDir, 'coordinator.db');
    const text = [db, `${db}-wal`]
      .filter((f) => fs.existsSync(f))
      .map((f) => fs.readFileSync(f, 'latin1'))
      .join('\n');
    expect(text.length).toBeGreaterThan(1000);
    expect(scanForLeaks(text, { knownSecrets: secrets, allow: ['scram-verifier'] })).toEqual([]);
    expect(secrets.length).toBeGreaterThan(8);
    expect(scanForLeaks(h.logs(), { knownSecrets: secrets })).toEqual([]);
  });
});

describe('key rotation', () => {
  it('re-seals every secret under the new key, after which the old key can go', async () => {
    const k1 = generateSecretKey();
    const k2 = generateSecretKey();
    let r = await startSecureHarness([], undefined, { PGS_SECRET_KEYS: `k1:${k1}` });
    const dataDir = r.dataDir;
    try {
      const first = await r.operator(r.adminToken).rotateEncryptionKey({});
      expect(first).toMatchObject({ keyId: 'k1', secretsReencrypted: 0 });
      await r.stop();
      r = await startSecureHarness([], dataDir, { PGS_SECRET_KEYS: `k2:${k2},k1:${k1}` });
      const rotated = await r.operator(r.adminToken).rotateEncryptionKey({});
      expect(rotated.keyId).toBe('k2');
      expect(rotated.secretsReencrypted).toBeGreaterThanOrEqual(1);
      await r.stop();
      // Only the new key now: the CA key still opens, so the coordinator starts and serves.
      r = await startSecureHarness([], dataDir, { PGS_SECRET_KEYS: `k2:${k2}` });
      expect((await r.operator(r.adminToken).rotateEncryptionKey({})).secretsReencrypted).toBe(0);
    } finally {
      await r.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('--insecure', () => {
  it('takes an unclaimed agent at its Hello, still checks a claim, and still wants operator tokens', async () => {
    const ih = await startHarness();
    try {
      const plain = credentials.createInsecure();
      const client = createClient(AgentControlService, ih.coordinator.grpcAddress, plain);
      const stream = client.connect();
      await stream.send({
        message: {
          case: 'hello',
          value: { hostId: 'legacy', address: '127.0.0.98', capacity: { cpuMillis: 1000, memoryMib: 1024, diskMib: 1024 }, runtime: 'process' },
        },
      });
      for await (const m of stream) if (m.message.case === 'welcome') break;
      stream.cancel();
      client.close();
      const liar = new FakeAgent({ hostId: 'victim', claimHostId: 'liar', address: '127.0.0.97', coordinator: ih.coordinator.grpcAddress });
      await liar.connect();
      await eventually(
        async () => (await ih.operator.listEvents({ hostId: 'victim' })).events.some((e) => e.action === 'access.refused'),
        5000,
        'refusal audited',
      );
      expect(liar.welcomed).toBe(false);
      await liar.close();
      const anonymous = createClient(CoordinatorService, ih.coordinator.grpcAddress, plain);
      await expect(anonymous.listTenants({})).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
      anonymous.close();
    } finally {
      await ih.stop();
    }
  });
});
