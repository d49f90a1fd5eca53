import { create } from '@bufbuild/protobuf';
import { AgentControlService, CoordinatorService, EnrollmentService, RouteFeedService } from '@pgs/proto';
import { methodPath } from '@pgs/rpc';
import { describe, expect, it } from 'vitest';
import {
  authorize,
  authorizeComponent,
  checkHostClaim,
  COMPONENT_SERVICES,
  ENROLLMENT_SERVICE,
  METHOD_RULES,
  OPERATOR_SERVICE,
  ROLES,
  tenantIdOf,
  type OperatorPrincipal,
  type Role,
} from './rbac.js';

const READS = [
  'GetTenant',
  'ListTenants',
  'GetUser',
  'ListUsers',
  'GetDatabase',
  'ListDatabases',
  'ListHosts',
  'GetHost',
  'ListVersions',
  'ListRoutes',
  'ListEvents',
  'WatchEvents',
  'GetFleetStatus',
  'GetRestore',
  'ListBackups',
  'GetBackup',
];
const SECURITY = ['CreateJoinToken', 'CreateOperatorToken', 'ListOperatorTokens', 'RevokeOperatorToken', 'RotateEncryptionKey'];
const TENANT_READS = [
  'GetTenant',
  'ListTenants',
  'GetUser',
  'ListUsers',
  'GetDatabase',
  'ListDatabases',
  'ListVersions',
  'ListRoutes',
  'ListEvents',
  'WatchEvents',
  'GetRestore',
  'ListBackups',
  'GetBackup',
];
const TENANT_WRITES = [
  'UpdateTenant',
  'StartTenant',
  'StopTenant',
  'SuspendTenant',
  'ResumeTenant',
  'SetTenantAccess',
  'SwitchoverTenant',
  'CreateUser',
  'UpdateUserPassword',
  'DeleteUser',
  'CreateDatabase',
  'DeleteDatabase',
  'CreateBackup',
  'RunInitSql',
];
// Calls a tenant-scoped caller may make while naming ANOTHER tenant: those that name none (filtered lists) or the catalog.
const FILTERED_WITHOUT_TENANT_FIELD = ['ListTenants', 'ListRoutes', 'ListVersions'];

const ALL = CoordinatorService.methods.map((m) => m.name);

/** What each role may do when the request names its own tenant "a" (independent of the rule table). */
const EXPECTED_ON_OWN_TENANT: Record<Role, string[]> = {
  'fleet-admin': ALL,
  operator: ALL.filter((m) => !SECURITY.includes(m)),
  reader: READS,
  'tenant-writer': [...TENANT_READS, ...TENANT_WRITES],
  'tenant-reader': TENANT_READS,
};
const EXPECTED_ON_OTHER_TENANT: Record<Role, string[]> = {
  'fleet-admin': ALL,
  operator: ALL.filter((m) => !SECURITY.includes(m)),
  reader: READS,
  'tenant-writer': FILTERED_WITHOUT_TENANT_FIELD,
  'tenant-reader': FILTERED_WITHOUT_TENANT_FIELD,
};

function principal(role: Role): OperatorPrincipal {
  return { kind: 'operator', name: `op-${role}`, role, tenantIds: role.startsWith('tenant-') ? ['a'] : [] };
}

/** A real request message of the method naming `tenant` wherever the message has a tenant field. */
function requestFor(method: (typeof CoordinatorService.methods)[number], tenant: string): object {
  const init: Record<string, string> = {};
  for (const field of method.input.fields) {
    if (field.localName === 'tenantId' || (field.localName === 'id' && method.name.includes('Tenant'))) init[field.localName] = tenant;
  }
  return create(method.input, init as never);
}

describe('METHOD_RULES', () => {
  it('has a rule for every RPC of CoordinatorService and none for RPCs that do not exist', () => {
    expect(CoordinatorService.typeName).toBe(OPERATOR_SERVICE);
    expect(Object.keys(METHOD_RULES).sort()).toEqual([...ALL].sort());
  });

  it('locates the tenant in a field the request really has', () => {
    for (const method of CoordinatorService.methods) {
      const { tenant } = METHOD_RULES[method.name]!;
      if (tenant === 'id' || tenant === 'tenantId') {
        expect(
          method.input.fields.map((f) => f.localName),
          method.name,
        ).toContain(tenant);
        expect(tenantIdOf(methodPath(method), requestFor(method, 'acme')), method.name).toBe('acme');
      }
    }
  });

  it('marks exactly the non-read calls as mutating', () => {
    for (const name of ALL) expect(METHOD_RULES[name]!.mutating, name).toBe(!/^(Get|List|Watch)/.test(name));
  });
});

describe('authorize: every role x every RPC', () => {
  for (const role of ROLES) {
    for (const [label, tenant, expected] of [
      ['own tenant', 'a', EXPECTED_ON_OWN_TENANT[role]],
      ['other tenant', 'b', EXPECTED_ON_OTHER_TENANT[role]],
    ] as const) {
      it(`${role} on ${label}`, () => {
        const allowed: string[] = [];
        for (const method of CoordinatorService.methods) {
          const path = methodPath(method);
          const decision = authorize(principal(role), path, tenantIdOf(path, requestFor(method, tenant)));
          if (decision.allow) allowed.push(method.name);
          else {
            expect(decision.status).toBe('PERMISSION_DENIED');
            expect(decision.reason).toContain(`op-${role}`);
          }
        }
        expect(allowed.sort()).toEqual([...expected].sort());
      });
    }
  }

  it('gives tenant-scoped callers of list methods a filter of their tenants only', () => {
    const reader: OperatorPrincipal = { kind: 'operator', name: 'acme-ro', role: 'tenant-reader', tenantIds: ['a', 'c'] };
    for (const name of ['ListTenants', 'ListRoutes', 'ListEvents', 'WatchEvents']) {
      const decision = authorize(reader, name);
      expect(decision.allow && [...(decision.tenantFilter ?? [])].sort()).toEqual(['a', 'c']);
    }
    const admin = authorize(principal('reader'), 'ListTenants');
    expect(admin.allow && admin.tenantFilter).toBeUndefined();
    // Naming a tenant-scoped call without a tenant is refused, never widened.
    expect(authorize(reader, 'GetTenant').allow).toBe(false);
  });

  it('refuses callers without credentials, components, and unknown methods', () => {
    const none = authorize(undefined, 'ListTenants');
    expect(none.allow === false && none.status).toBe('UNAUTHENTICATED');
    for (const method of CoordinatorService.methods) {
      expect(authorize({ kind: 'host', id: 'h1' }, methodPath(method)).allow).toBe(false);
      expect(authorize({ kind: 'router', id: 'r1' }, methodPath(method)).allow).toBe(false);
    }
    expect(authorize(principal('fleet-admin'), 'DropEverything').allow).toBe(false);
    expect(authorize(principal('fleet-admin'), '/pgs.other.v1.Service/ListTenants').allow).toBe(false);
  });
});

describe('component services', () => {
  it('covers the component services of the contract', () => {
    expect(Object.keys(COMPONENT_SERVICES).sort()).toEqual([AgentControlService.typeName, RouteFeedService.typeName].sort());
  });

  it('lets hosts use the agent stream and routers the route feed, nobody else', () => {
    const agent = methodPath(AgentControlService.methods[0]!);
    const feed = methodPath(RouteFeedService.methods[0]!);
    expect(authorizeComponent({ kind: 'host', id: 'h1' }, agent).allow).toBe(true);
    expect(authorizeComponent({ kind: 'router', id: 'r1' }, agent).allow).toBe(false);
    expect(authorizeComponent({ kind: 'router', id: 'r1' }, feed).allow).toBe(true);
    expect(authorizeComponent({ kind: 'host', id: 'h1' }, feed).allow).toBe(false);
    expect(authorizeComponent(principal('fleet-admin'), feed).allow).toBe(false);
    const anonymous = authorizeComponent(undefined, agent);
    expect(anonymous.allow === false && anonymous.status).toBe('UNAUTHENTICATED');
  });

  it('lets anyone call Join (the token decides), only components renew, and only hosts get instance certificates', () => {
    expect(EnrollmentService.typeName).toBe(ENROLLMENT_SERVICE);
    const paths = Object.fromEntries(EnrollmentService.methods.map((m) => [m.name, methodPath(m)]));
    expect(Object.keys(paths).sort()).toEqual(['IssueInstanceCertificate', 'Join', 'RenewCertificate']);
    expect(authorizeComponent({ kind: 'host', id: 'h1' }, paths.IssueInstanceCertificate!).allow).toBe(true);
    expect(authorizeComponent({ kind: 'router', id: 'r1' }, paths.IssueInstanceCertificate!).allow).toBe(false);
    expect(authorizeComponent(principal('fleet-admin'), paths.IssueInstanceCertificate!).allow).toBe(false);
    const noCert = authorizeComponent(undefined, paths.IssueInstanceCertificate!);
    expect(noCert.allow === false && noCert.status).toBe('UNAUTHENTICATED');
    expect(authorizeComponent(undefined, paths.Join!).allow).toBe(true);
    expect(authorizeComponent({ kind: 'host', id: 'h1' }, paths.RenewCertificate!).allow).toBe(true);
    expect(authorizeComponent({ kind: 'router', id: 'r1' }, paths.RenewCertificate!).allow).toBe(true);
    const anonymous = authorizeComponent(undefined, paths.RenewCertificate!);
    expect(anonymous.allow === false && anonymous.status).toBe('UNAUTHENTICATED');
    expect(authorizeComponent(principal('fleet-admin'), paths.RenewCertificate!).allow).toBe(false);
    expect(authorizeComponent(undefined, `/${ENROLLMENT_SERVICE}/Other`).allow).toBe(false);
  });

  it('lets an agent speak only for its own host', () => {
    expect(checkHostClaim({ kind: 'host', id: 'h1' }, 'h1').allow).toBe(true);
    const other = checkHostClaim({ kind: 'host', id: 'h1' }, 'h2');
    expect(other.allow === false && other.reason).toBe('host:h1 may not speak for host "h2"');
    expect(checkHostClaim({ kind: 'router', id: 'h1' }, 'h1').allow).toBe(false);
  });
});
