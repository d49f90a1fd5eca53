/**
 * Who may call what. Pure: a table maps every RPC of pgs.operator.v1.CoordinatorService to the
 * permission it needs and to where its request names a tenant; `authorize` decides for a principal.
 * Roles: fleet-admin (everything), operator (tenants and hosts, no tokens/keys), reader (read only),
 * and the tenant-scoped tenant-writer / tenant-reader, limited to named tenants (so a
 * tenant's own operators need no fleet-wide role). Anything without a rule is refused (fail closed).
 */

/** The operator roles. */
export const ROLES = ['fleet-admin', 'operator', 'reader', 'tenant-writer', 'tenant-reader'] as const;
/** One of ROLES. */
export type Role = (typeof ROLES)[number];

/** What a method needs. */
export type Permission =
  /** Read tenants, their users, databases and routes. */
  | 'tenant:read'
  /** Change a tenant's spec, state, access, users and databases. */
  | 'tenant:write'
  /** Create, delete, re-create tenants (capacity and data loss decisions). */
  | 'tenant:admin'
  | 'host:read'
  /** Cordon, uncordon, drain. */
  | 'host:write'
  /** Routes, events, fleet status. */
  | 'fleet:read'
  /** The versions catalog (no tenant data). */
  | 'catalog:read'
  /** Join tokens, operator tokens, encryption keys. */
  | 'security:admin';

/** The permissions of each role. */
export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = Object.freeze({
  'fleet-admin': ['tenant:read', 'tenant:write', 'tenant:admin', 'host:read', 'host:write', 'fleet:read', 'catalog:read', 'security:admin'],
  operator: ['tenant:read', 'tenant:write', 'tenant:admin', 'host:read', 'host:write', 'fleet:read', 'catalog:read'],
  reader: ['tenant:read', 'host:read', 'fleet:read', 'catalog:read'],
  'tenant-writer': ['tenant:read', 'tenant:write', 'fleet:read', 'catalog:read'],
  'tenant-reader': ['tenant:read', 'fleet:read', 'catalog:read'],
});

/** Roles limited to the tenants named in their token. */
export const TENANT_SCOPED_ROLES: readonly Role[] = ['tenant-writer', 'tenant-reader'];

/**
 * Where a request names its tenant:
 * - `id` / `tenantId`: that request field (protobuf-es local name) is the one tenant the call touches;
 * - `filter`: a list or watch over many tenants; `tenantId`, when the request has it and it is set,
 *   narrows it; a tenant-scoped caller gets only its tenants (the handler filters with the decision);
 * - `none`: fleet-wide, no tenant (tenant-scoped callers are refused unless it is the catalog).
 */
export type TenantLocator = 'id' | 'tenantId' | 'filter' | 'none';

/** The rule of one RPC. */
export interface MethodRule {
  readonly permission: Permission;
  readonly tenant: TenantLocator;
  /** True for calls that change state: they are audited even when allowed. */
  readonly mutating: boolean;
}

/** The gRPC service the table covers. */
export const OPERATOR_SERVICE = 'pgs.operator.v1.CoordinatorService';

const rule = (permission: Permission, tenant: TenantLocator, mutating: boolean): MethodRule => Object.freeze({ permission, tenant, mutating });

/** Every RPC of CoordinatorService, by its proto name. A test fails when an RPC has no rule. */
export const METHOD_RULES: Readonly<Record<string, MethodRule>> = Object.freeze({
  CreateTenant: rule('tenant:admin', 'id', true),
  GetTenant: rule('tenant:read', 'id', false),
  ListTenants: rule('tenant:read', 'filter', false),
  UpdateTenant: rule('tenant:write', 'id', true),
  DeleteTenant: rule('tenant:admin', 'id', true),
  StartTenant: rule('tenant:write', 'id', true),
  StopTenant: rule('tenant:write', 'id', true),
  SuspendTenant: rule('tenant:write', 'id', true),
  ResumeTenant: rule('tenant:write', 'id', true),
  SetTenantAccess: rule('tenant:write', 'id', true),
  RecreateTenant: rule('tenant:admin', 'id', true),
  // Runs SQL the creator gave, as the tenant's owner: whoever may write the tenant may retry it.
  RunInitSql: rule('tenant:write', 'tenantId', true),
  SwitchoverTenant: rule('tenant:write', 'id', true),
  // Choosing a host is a fleet operator's call: a tenant-scoped token cannot move its tenant.
  MoveTenant: rule('tenant:admin', 'id', true),
  // A major upgrade places an instance on another host, and its rollback drops writes made since the switch.
  UpgradeTenant: rule('tenant:admin', 'id', true),
  // A restore creates a tenant (or replaces one's data): as strong as creating one.
  RestoreTenant: rule('tenant:admin', 'id', true),
  GetRestore: rule('tenant:read', 'tenantId', false),
  CreateBackup: rule('tenant:write', 'tenantId', true),
  ListBackups: rule('tenant:read', 'tenantId', false),
  GetBackup: rule('tenant:read', 'tenantId', false),
  DeleteBackup: rule('tenant:admin', 'tenantId', true),
  CreateUser: rule('tenant:write', 'tenantId', true),
  GetUser: rule('tenant:read', 'tenantId', false),
  ListUsers: rule('tenant:read', 'tenantId', false),
  UpdateUserPassword: rule('tenant:write', 'tenantId', true),
  DeleteUser: rule('tenant:write', 'tenantId', true),
  CreateDatabase: rule('tenant:write', 'tenantId', true),
  GetDatabase: rule('tenant:read', 'tenantId', false),
  ListDatabases: rule('tenant:read', 'tenantId', false),
  DeleteDatabase: rule('tenant:write', 'tenantId', true),
  ListHosts: rule('host:read', 'none', false),
  // GetHost lists the host's tenants: fleet-wide knowledge, not for tenant-scoped callers.
  GetHost: rule('host:read', 'none', false),
  CordonHost: rule('host:write', 'none', true),
  UncordonHost: rule('host:write', 'none', true),
  DrainHost: rule('host:write', 'none', true),
  ListVersions: rule('catalog:read', 'none', false),
  ListRoutes: rule('fleet:read', 'filter', false),
  ListEvents: rule('fleet:read', 'filter', false),
  WatchEvents: rule('fleet:read', 'filter', false),
  // Counts and problems over all tenants: fleet-wide.
  GetFleetStatus: rule('fleet:read', 'none', false),
  CreateJoinToken: rule('security:admin', 'none', true),
  CreateOperatorToken: rule('security:admin', 'none', true),
  ListOperatorTokens: rule('security:admin', 'none', false),
  RevokeOperatorToken: rule('security:admin', 'none', true),
  RotateEncryptionKey: rule('security:admin', 'none', true),
});

/** An operator (pgsctl, REST client) authenticated by a bearer token or an `operator:<name>` certificate. */
export interface OperatorPrincipal {
  readonly kind: 'operator';
  readonly name: string;
  readonly role: Role;
  /** The tenants a tenant-scoped role may touch; empty for the other roles. */
  readonly tenantIds: readonly string[];
}

/** A fleet component authenticated by its certificate. */
export interface ComponentPrincipal {
  readonly kind: 'host' | 'router';
  readonly id: string;
}

/** Whoever makes a call. */
export type Principal = OperatorPrincipal | ComponentPrincipal;

/** The outcome of authorize. */
export type Decision =
  | {
      readonly allow: true;
      readonly rule: MethodRule;
      /** Set for tenant-scoped callers of `filter` methods: return only these tenants' data. */
      readonly tenantFilter?: ReadonlySet<string>;
    }
  | {
      readonly allow: false;
      /** UNAUTHENTICATED: no (valid) credentials; PERMISSION_DENIED: known caller, not allowed. */
      readonly status: 'UNAUTHENTICATED' | 'PERMISSION_DENIED';
      /** Safe to show the caller and to write to the audit log. */
      readonly reason: string;
      readonly rule: MethodRule | undefined;
    };

/** The proto RPC name of a full method name (`pgs.operator.v1.CoordinatorService/CreateTenant` -> `CreateTenant`); undefined for another service. */
export function operatorRpcName(method: string): string | undefined {
  const slash = method.lastIndexOf('/');
  if (slash < 0) return method;
  const service = method.slice(0, slash).replace(/^\//, '');
  return service === OPERATOR_SERVICE ? method.slice(slash + 1) : undefined;
}

/** A string description of a principal for messages and the audit log: `operator:alice (reader)`, `host:h1`. */
export function describePrincipal(principal: Principal): string {
  return principal.kind === 'operator' ? `operator:${principal.name} (${principal.role})` : `${principal.kind}:${principal.id}`;
}

/** True when the role has the permission. */
export function roleAllows(role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].includes(permission);
}

/** True for a valid role name. */
export function isRole(text: string): text is Role {
  return (ROLES as readonly string[]).includes(text);
}

/** The tenant id a request names, by the method's rule (empty string and absent are undefined). */
export function tenantIdOf(method: string, request: unknown): string | undefined {
  const name = operatorRpcName(method);
  const found = name === undefined ? undefined : METHOD_RULES[name];
  if (!found || found.tenant === 'none' || typeof request !== 'object' || request === null) return undefined;
  const field = found.tenant === 'id' ? 'id' : 'tenantId';
  const value = (request as Record<string, unknown>)[field];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function deny(status: 'UNAUTHENTICATED' | 'PERMISSION_DENIED', reason: string, found: MethodRule | undefined): Decision {
  return { allow: false, status, reason, rule: found };
}

/**
 * May `principal` call `method` (proto name or full gRPC name) on `tenantId`? Pass the tenant the
 * request names (tenantIdOf), or undefined. For `filter` methods a tenant-scoped caller is allowed
 * with `tenantFilter`, and the handler must drop everything outside it.
 */
export function authorize(principal: Principal | undefined, method: string, tenantId?: string): Decision {
  const name = operatorRpcName(method);
  const found = name === undefined ? undefined : METHOD_RULES[name];
  if (!principal) return deny('UNAUTHENTICATED', 'no credentials: present a bearer token or an operator certificate', found);
  if (!found) return deny('PERMISSION_DENIED', `no access rule for ${method}`, undefined);
  if (principal.kind !== 'operator') return deny('PERMISSION_DENIED', `${describePrincipal(principal)} is a fleet component, not an operator`, found);
  const who = describePrincipal(principal);
  if (!roleAllows(principal.role, found.permission)) return deny('PERMISSION_DENIED', `${who} lacks ${found.permission} for ${name}`, found);
  if (!TENANT_SCOPED_ROLES.includes(principal.role)) return { allow: true, rule: found };

  const scope = new Set(principal.tenantIds);
  switch (found.tenant) {
    case 'id':
    case 'tenantId':
      if (tenantId === undefined) return deny('PERMISSION_DENIED', `${who} must name one of its tenants for ${name}`, found);
      if (!scope.has(tenantId)) return deny('PERMISSION_DENIED', `${who} has no access to tenant "${tenantId}"`, found);
      return { allow: true, rule: found };
    case 'filter':
      if (tenantId !== undefined && !scope.has(tenantId)) return deny('PERMISSION_DENIED', `${who} has no access to tenant "${tenantId}"`, found);
      return { allow: true, rule: found, tenantFilter: scope };
    case 'none':
      if (found.permission === 'catalog:read') return { allow: true, rule: found };
      return deny('PERMISSION_DENIED', `${who} is limited to tenants ${[...scope].join(', ')}; ${name} is fleet-wide`, found);
  }
}

/** Services only fleet components use, and the kind each must be. */
export const COMPONENT_SERVICES: Readonly<Record<string, ComponentPrincipal['kind']>> = Object.freeze({
  'pgs.agent.v1.AgentControlService': 'host',
  'pgs.routing.v1.RouteFeedService': 'router',
});

/** The service components join and renew certificates through. */
export const ENROLLMENT_SERVICE = 'pgs.security.v1.EnrollmentService';

/**
 * May `principal` use a component service (full method name `pkg.Service/Method`)? An agent must be
 * a `host:` certificate, a router a `router:` one. EnrollmentService/Join needs no certificate (its
 * handler checks the join token); RenewCertificate needs a host or router certificate,
 * IssueInstanceCertificate a host certificate. The agent's
 * host id claims are checked with checkHostClaim on every message that names a host.
 */
export function authorizeComponent(principal: Principal | undefined, method: string): Decision {
  const [service = '', rpc = ''] = method.replace(/^\//, '').split('/');
  const found = rule('fleet:read', 'none', false);
  if (service === ENROLLMENT_SERVICE) {
    if (rpc === 'Join') return { allow: true, rule: rule('fleet:read', 'none', true) };
    if (rpc === 'IssueInstanceCertificate') {
      if (!principal) return deny('UNAUTHENTICATED', "an instance certificate needs the host's own certificate", found);
      if (principal.kind !== 'host') return deny('PERMISSION_DENIED', `${describePrincipal(principal)} is not a host`, found);
      return { allow: true, rule: rule('fleet:read', 'none', true) };
    }
    if (rpc !== 'RenewCertificate') return deny('PERMISSION_DENIED', `no access rule for ${method}`, undefined);
    if (!principal) return deny('UNAUTHENTICATED', 'renewal needs the current certificate; an expired one needs a new join token', found);
    if (principal.kind === 'operator') return deny('PERMISSION_DENIED', `${describePrincipal(principal)} is not a fleet component`, found);
    return { allow: true, rule: rule('fleet:read', 'none', true) };
  }
  const kind = COMPONENT_SERVICES[service];
  if (!kind) return deny('PERMISSION_DENIED', `no access rule for ${method}`, undefined);
  if (!principal) return deny('UNAUTHENTICATED', `${service} needs a ${kind} certificate from the fleet CA`, found);
  if (principal.kind !== kind) return deny('PERMISSION_DENIED', `${describePrincipal(principal)} may not use ${service} (needs a ${kind} certificate)`, found);
  return { allow: true, rule: found };
}

/** An agent speaks only for its own host: refuse a message for another host id. */
export function checkHostClaim(principal: Principal | undefined, claimedHostId: string): Decision {
  const found = rule('fleet:read', 'none', true);
  if (!principal) return deny('UNAUTHENTICATED', 'no host certificate', found);
  if (principal.kind !== 'host') return deny('PERMISSION_DENIED', `${describePrincipal(principal)} is not a host`, found);
  if (principal.id !== claimedHostId) return deny('PERMISSION_DENIED', `host:${principal.id} may not speak for host "${claimedHostId}"`, found);
  return { allow: true, rule: found };
}
