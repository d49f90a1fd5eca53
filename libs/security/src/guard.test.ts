import type { DescService } from '@bufbuild/protobuf';
import { Server } from '@grpc/grpc-js';
import { CoordinatorService, RouteFeedService } from '@pgs/proto';
import { addService, Code, createClient, RpcError, type ServiceImpl } from '@pgs/rpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  insecureChannelCredentials,
  insecureServerCredentials,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  TlsIdentity,
  tlsChannelCredentials,
  withBearerToken,
} from './grpc-credentials.js';
import type { Logger } from '@pgs/service-kit';
import {
  certificateOrTokenAuthenticator,
  claimedIdentityAuthenticator,
  guardService,
  identityClaimMetadata,
  principalOf,
  tenantFilterOf,
  type AccessEvent,
} from './guard.js';
import { identity } from './identity.js';
import { createFleetCa, FleetCa } from './pki.js';
import { describePrincipal, type OperatorPrincipal } from './rbac.js';
import { issueToken, type TokenRecord } from './tokens.js';

const now = new Date();
let ca: FleetCa;
let address: string;
const server = new Server();
const tokens = new Map<string, TokenRecord>();
const audit: AccessEvent[] = [];
const operators = new Map<string, OperatorPrincipal>([['carol', { kind: 'operator', name: 'carol', role: 'operator', tenantIds: [] }]]);
const TENANTS = ['a', 'b', 'c'];

/** A handler for every method that answers empty, so only the guard decides. */
function stubImpl<S extends DescService>(service: S, overrides: Record<string, unknown>): ServiceImpl<S> {
  const impl: Record<string, unknown> = {};
  for (const m of service.methods) {
    impl[m.localName] =
      overrides[m.localName] ??
      (m.methodKind === 'unary' ? async () => ({}) : m.methodKind === 'server_streaming' ? async () => undefined : async () => undefined);
  }
  return impl as ServiceImpl<S>;
}

function token(init: Omit<Parameters<typeof issueToken>[0], 'now'>): string {
  const { token: t, record } = issueToken({ ...init, now });
  tokens.set(record.hash, record);
  return t;
}

async function codeOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return Code.OK;
  } catch (err) {
    if (err instanceof RpcError) return err.code;
    throw err;
  }
}

beforeAll(async () => {
  ca = await FleetCa.load(await createFleetCa({ now }));
  const leaf = await ca.issue({ identity: identity('coordinator', 'c1'), ipAddresses: ['127.0.0.1'], now });
  const authenticate = certificateOrTokenAuthenticator({
    findToken: (hash) => tokens.get(hash),
    findOperator: (name) => operators.get(name),
    now: () => new Date(),
  });
  const onDecision = (e: AccessEvent) => void audit.push(e);
  addService(
    server,
    CoordinatorService,
    guardService(
      CoordinatorService,
      stubImpl(CoordinatorService, {
        listTenants: async (_req: unknown, ctx: Parameters<typeof tenantFilterOf>[0]) => {
          const filter = tenantFilterOf(ctx);
          return { tenants: TENANTS.filter((id) => !filter || filter.has(id)).map((id) => ({ id })) };
        },
        getTenant: async (req: { id: string }) => ({ tenant: { id: req.id } }),
      }),
      { policy: 'operator', authenticate, onDecision },
    ),
  );
  addService(
    server,
    RouteFeedService,
    guardService(
      RouteFeedService,
      stubImpl(RouteFeedService, {
        watchRoutes: async (req: { routerId: string }, stream: { send: (m: object) => Promise<void> }, ctx: Parameters<typeof principalOf>[0]) => {
          // A router speaks only for itself, as an agent does for its host.
          const who = principalOf(ctx);
          if (who?.kind !== 'router' || who.id !== req.routerId) throw new RpcError(Code.PERMISSION_DENIED, 'not your router id');
          await stream.send({});
        },
      }),
      { policy: 'component', authenticate, onDecision },
    ),
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', mtlsServerCredentials(new TlsIdentity({ caPem: ca.certPem, ...leaf }), { clientCertificates: 'optional' }), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  address = `127.0.0.1:${port}`;
});
afterAll(() => server.forceShutdown());

function operatorClient(bearer?: string) {
  const base = tlsChannelCredentials(ca.certPem);
  return createClient(CoordinatorService, address, bearer ? withBearerToken(base, bearer) : base);
}

describe('guarded CoordinatorService over TLS', () => {
  it('a tenant-reader of "a" reads "a" and sees nothing of "b"', async () => {
    const client = operatorClient(token({ kind: 'operator', name: 'a-ro', role: 'tenant-reader', tenantIds: ['a'] }));
    try {
      expect((await client.getTenant({ id: 'a' })).tenant?.id).toBe('a');
      expect(await codeOf(client.getTenant({ id: 'b' }))).toBe(Code.PERMISSION_DENIED);
      expect((await client.listTenants({})).tenants.map((t) => t.id)).toEqual(['a']);
      expect(await codeOf(client.listUsers({ tenantId: 'b' }))).toBe(Code.PERMISSION_DENIED);
      expect(await codeOf(client.createTenant({ id: 'a' }))).toBe(Code.PERMISSION_DENIED);
      expect(await codeOf(client.listHosts({}))).toBe(Code.PERMISSION_DENIED);
      const events = client.watchEvents({ tenantId: 'b' });
      expect(
        await codeOf(
          (async () => {
            for await (const _ of events) break;
          })(),
        ),
      ).toBe(Code.PERMISSION_DENIED);
    } finally {
      client.close();
    }
  });

  it('a reader sees every tenant but changes nothing', async () => {
    const client = operatorClient(token({ kind: 'operator', name: 'ro', role: 'reader' }));
    try {
      expect((await client.listTenants({})).tenants.map((t) => t.id)).toEqual(TENANTS);
      expect(await codeOf(client.stopTenant({ id: 'a' }))).toBe(Code.PERMISSION_DENIED);
    } finally {
      client.close();
    }
  });

  it('refuses calls without credentials, with a bad, expired or join token, and from components', async () => {
    for (const bearer of [undefined, 'pgso_not-a-real-token', token({ kind: 'host', name: 'h1' })]) {
      const client = operatorClient(bearer);
      expect(await codeOf(client.listVersions({}))).toBe(Code.UNAUTHENTICATED);
      client.close();
    }
    const { token: old, record } = issueToken({ kind: 'operator', name: 'old', role: 'fleet-admin', ttlMs: 1000, now: new Date(Date.now() - 10_000) });
    tokens.set(record.hash, record);
    const expired = operatorClient(old);
    expect(await codeOf(expired.listVersions({}))).toBe(Code.UNAUTHENTICATED);
    expired.close();
    const host = await ca.issue({ identity: identity('host', 'h1'), now });
    const component = createClient(CoordinatorService, address, mtlsChannelCredentials({ caPem: ca.certPem, ...host }));
    expect(await codeOf(component.listVersions({}))).toBe(Code.PERMISSION_DENIED);
    component.close();
  });

  it('accepts an operator certificate for a known operator', async () => {
    const carol = await ca.issue({ identity: identity('operator', 'carol'), now });
    const client = createClient(CoordinatorService, address, mtlsChannelCredentials({ caPem: ca.certPem, ...carol }));
    expect((await client.listTenants({})).tenants).toHaveLength(3);
    expect(await codeOf(client.createJoinToken({ kind: 'host' }))).toBe(Code.PERMISSION_DENIED);
    client.close();
    const dave = await ca.issue({ identity: identity('operator', 'dave'), now });
    const unknown = createClient(CoordinatorService, address, mtlsChannelCredentials({ caPem: ca.certPem, ...dave }));
    expect(await codeOf(unknown.listTenants({}))).toBe(Code.UNAUTHENTICATED);
    unknown.close();
  });

  it('reports every decision with the principal, for the audit log', async () => {
    const client = operatorClient(token({ kind: 'operator', name: 'auditee', role: 'tenant-writer', tenantIds: ['a'] }));
    await client.startTenant({ id: 'a' });
    await codeOf(client.startTenant({ id: 'b' }));
    client.close();
    const mine = audit.filter((e) => e.principal && describePrincipal(e.principal).startsWith('operator:auditee'));
    expect(mine.map((e) => [e.method.split('/')[1], e.tenantId, e.decision.allow, e.decision.rule?.mutating])).toEqual([
      ['StartTenant', 'a', true, true],
      ['StartTenant', 'b', false, true],
    ]);
    const refused = mine[1]!.decision;
    expect(refused.allow === false && refused.reason).toBe('operator:auditee (tenant-writer) has no access to tenant "b"');
  });
});

describe('guarded component service', () => {
  it('serves the route feed to routers only', async () => {
    const router = await ca.issue({ identity: identity('router', 'r1'), now });
    const host = await ca.issue({ identity: identity('host', 'h1'), now });
    const read = async (creds: Parameters<typeof createClient>[2], routerId = 'r1') => {
      const client = createClient(RouteFeedService, address, creds);
      try {
        return await codeOf(
          (async () => {
            for await (const _ of client.watchRoutes({ routerId })) break;
          })(),
        );
      } finally {
        client.close();
      }
    };
    expect(await read(mtlsChannelCredentials({ caPem: ca.certPem, ...router }))).toBe(Code.OK);
    expect(await read(mtlsChannelCredentials({ caPem: ca.certPem, ...router }), 'r2')).toBe(Code.PERMISSION_DENIED);
    expect(await read(mtlsChannelCredentials({ caPem: ca.certPem, ...host }))).toBe(Code.PERMISSION_DENIED);
    expect(await read(tlsChannelCredentials(ca.certPem))).toBe(Code.UNAUTHENTICATED);
    expect(await read(withBearerToken(tlsChannelCredentials(ca.certPem), token({ kind: 'operator', name: 'admin', role: 'fleet-admin' })))).toBe(
      Code.PERMISSION_DENIED,
    );
  });
});

describe('--insecure component identity claims', () => {
  it('believes a claimed router id only through claimedIdentityAuthenticator', async () => {
    const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, child: () => silent };
    const plain = new Server();
    const authenticate = claimedIdentityAuthenticator(certificateOrTokenAuthenticator({ findToken: () => undefined, now: () => new Date() }));
    addService(plain, RouteFeedService, guardService(RouteFeedService, stubImpl(RouteFeedService, {}), { policy: 'component', authenticate }));
    const port = await new Promise<number>((resolve, reject) =>
      plain.bindAsync('127.0.0.1:0', insecureServerCredentials(silent), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const client = createClient(RouteFeedService, `127.0.0.1:${port}`, insecureChannelCredentials(silent));
    const read = (metadata?: ReturnType<typeof identityClaimMetadata>) =>
      codeOf(
        (async () => {
          for await (const _ of client.watchRoutes({ routerId: 'r1' }, { metadata })) break;
        })(),
      );
    try {
      expect(await read(identityClaimMetadata(identity('router', 'r1')))).toBe(Code.OK);
      expect(await read(identityClaimMetadata(identity('host', 'h1')))).toBe(Code.PERMISSION_DENIED);
      expect(await read()).toBe(Code.UNAUTHENTICATED);
    } finally {
      client.close();
      plain.forceShutdown();
    }
  });
});
