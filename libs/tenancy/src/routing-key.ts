/**
 * Which tenant a client connection is for, from its startup packet and TLS SNI name, and what
 * to forward to the tenant's instance. Sources (README.md "Routing"):
 *  - 'sni':         TLS server name `<tenant>.<sniDomain>`
 *  - 'options':     `options=-c pgs.tenant=<t>` (also `--pgs.tenant=<t>`) or `options=tenant=<t>`
 *  - 'user_suffix': `user=<name>.<tenant>` (Supavisor's convention; the last dot splits)
 *  - 'database':    a database name that is a tenant id (off by default)
 *  - 'user':        a user name that is a tenant id (the owner role is named like the tenant)
 * The first three are explicit markers: every one present must agree, or the connection is
 * refused. The last two are plain names that mean something else too, so they are fallbacks,
 * consulted in the configured order only when no explicit marker is present.
 */
import { PgsError, ValidationError } from './errors.js';
import { isValidTenantId } from './names.js';
import { findOptionSettings, joinStartupOptions, splitStartupOptions } from './startup-options.js';

/** Where a tenant id can come from. */
export type RoutingSource = 'sni' | 'options' | 'user_suffix' | 'database' | 'user';

/** Every routing source. */
export const ROUTING_SOURCES: readonly RoutingSource[] = ['sni', 'options', 'user_suffix', 'database', 'user'];

/**
 * The default order. 'database' is off: clients default the database to the user name, and
 * applications commonly name databases after themselves ('app', 'main'), which would route a
 * connection to an unrelated tenant of that name instead of failing clearly.
 */
export const DEFAULT_ROUTING_ORDER: readonly RoutingSource[] = Object.freeze(['sni', 'options', 'user_suffix', 'user'] as const);

/** The explicit markers; the others are fallbacks. */
const EXPLICIT: ReadonlySet<RoutingSource> = new Set(['sni', 'options', 'user_suffix']);

/** What the router knows when it must pick a tenant. */
export interface RoutingInput {
  /** Startup packet parameters (user, database, options, application_name, ...). */
  parameters: ReadonlyMap<string, string>;
  /** TLS SNI server name, when the client sent one. */
  sniHostname?: string;
}

/** Router configuration for routing keys. */
export interface RoutingOptions {
  /** Sources to consult, in priority order; sources not listed are ignored. */
  order: readonly RoutingSource[];
  /** The wildcard domain under which `<tenant>.<sniDomain>` names are served, e.g. 'db.example.com'. */
  sniDomain?: string;
}

/** The routing outcome: the tenant, and what to forward instead of what the client sent. */
export interface RoutingDecision {
  tenantId: string;
  /** The user to forward (the suffix removed for 'user_suffix'). */
  user: string;
  /** True when `user` differs from the client's user. */
  userRewritten: boolean;
  /** The source that named the tenant (the first in order among those that did). */
  source: RoutingSource;
  /** The options to forward, routing settings removed; undefined = send no options parameter. */
  options?: string;
  /**
   * Set only when the database must be rewritten too: the client's database was its suffixed
   * user name (libpq's default), so it becomes the forwarded user name, as a direct connection would.
   */
  database?: string;
}

/** Refusal to route: codes 'NO_TENANT', 'CONFLICTING_TENANT', 'INVALID_TENANT', 'MISSING_USER'. */
export class RoutingKeyError extends PgsError {
  /** The source that caused the refusal, when one did. */
  readonly source: RoutingSource | undefined;

  constructor(code: 'NO_TENANT' | 'CONFLICTING_TENANT' | 'INVALID_TENANT' | 'MISSING_USER', message: string, source?: RoutingSource) {
    super(code, message, { kind: 'user' });
    this.source = source;
  }
}

/** Returns the order when every entry is a known source and none repeats; throws ValidationError otherwise. */
export function validateRoutingOrder(order: readonly string[], field = 'routing_order'): RoutingSource[] {
  const seen = new Set<string>();
  for (const source of order) {
    if (!(ROUTING_SOURCES as readonly string[]).includes(source) || seen.has(source)) {
      throw new ValidationError(field, order, `distinct sources from: ${ROUTING_SOURCES.join(', ')}`);
    }
    seen.add(source);
  }
  return [...order] as RoutingSource[];
}

/** The option names that carry a tenant id. */
const TENANT_OPTION = 'pgs.tenant';
const BARE_TENANT_OPTION = 'tenant';

interface Candidate {
  source: RoutingSource;
  tenantId: string;
}

/** Throws INVALID_TENANT unless `id` is a valid tenant id. */
function requireTenantId(id: string, source: RoutingSource, spelled: string): string {
  if (!isValidTenantId(id)) {
    throw new RoutingKeyError('INVALID_TENANT', `${spelled} does not name a valid tenant id: ${JSON.stringify(id)}`, source);
  }
  return id;
}

/** The tenant named by a `<tenant>.<domain>` server name, or undefined when the name is not under the domain. */
function fromSni(sniHostname: string | undefined, sniDomain: string | undefined): string | undefined {
  if (sniHostname === undefined || sniDomain === undefined || sniDomain === '') return undefined;
  // DNS names are case-insensitive and may be written fully qualified ('a.example.com.').
  const host = sniHostname.toLowerCase().replace(/\.$/, '');
  const domain = sniDomain.toLowerCase().replace(/^\.|\.$/g, '');
  if (!host.endsWith(`.${domain}`)) return undefined;
  const label = host.slice(0, host.length - domain.length - 1);
  return requireTenantId(label, 'sni', `TLS server name ${JSON.stringify(sniHostname)}`);
}

/** Tenant settings in the options, and the options to forward without them. */
function fromOptions(options: string | undefined): { tenantId?: string; forward?: string } {
  if (options === undefined) return {};
  const args = splitStartupOptions(options);
  const found = findOptionSettings(args).filter((s) => (s.bare ? s.name === BARE_TENANT_OPTION : s.name === TENANT_OPTION));
  if (found.length === 0) return { forward: options };
  let tenantId: string | undefined;
  for (const setting of found) {
    const id = requireTenantId(setting.value, 'options', `options setting ${setting.name}`);
    if (tenantId !== undefined && tenantId !== id) {
      throw new RoutingKeyError('CONFLICTING_TENANT', `options name two tenants: ${tenantId} and ${id}`, 'options');
    }
    tenantId = id;
  }
  const drop = new Set(found.flatMap((s) => Array.from({ length: s.count }, (_, k) => s.start + k)));
  const kept = args.filter((_, i) => !drop.has(i));
  return kept.length === 0 ? { tenantId } : { tenantId, forward: joinStartupOptions(kept) };
}

/** Splits `name.tenant` at its last dot, or undefined when the user has no dot. */
function fromUserSuffix(user: string): { tenantId: string; user: string } | undefined {
  const dot = user.lastIndexOf('.');
  if (dot < 0) return undefined;
  const name = user.slice(0, dot);
  const tenantId = requireTenantId(user.slice(dot + 1), 'user_suffix', `user name ${JSON.stringify(user)}`);
  if (name === '') throw new RoutingKeyError('INVALID_TENANT', `user name ${JSON.stringify(user)} has no user before the tenant`, 'user_suffix');
  return { tenantId, user: name };
}

/**
 * Decides the tenant and what to forward. Throws RoutingKeyError: MISSING_USER (no user
 * parameter), INVALID_TENANT (an explicit marker names an invalid id), CONFLICTING_TENANT
 * (explicit markers disagree), NO_TENANT (no enabled source named one).
 */
export function resolveRoutingKey(input: RoutingInput, options: RoutingOptions): RoutingDecision {
  const user = input.parameters.get('user');
  if (user === undefined || user === '') {
    throw new RoutingKeyError('MISSING_USER', 'the startup packet has no user name');
  }
  const enabled = new Set(options.order);
  const rawOptions = input.parameters.get('options');
  const database = input.parameters.get('database');

  const fromOpts = enabled.has('options') ? fromOptions(rawOptions) : { forward: rawOptions };
  const suffix = enabled.has('user_suffix') ? fromUserSuffix(user) : undefined;
  const explicit: Candidate[] = [];
  const implicit: Candidate[] = [];
  for (const source of options.order) {
    let tenantId: string | undefined;
    if (source === 'sni') tenantId = fromSni(input.sniHostname, options.sniDomain);
    else if (source === 'options') tenantId = fromOpts.tenantId;
    else if (source === 'user_suffix') tenantId = suffix?.tenantId;
    else if (source === 'database') tenantId = database !== undefined && isValidTenantId(database) ? database : undefined;
    else if (source === 'user') tenantId = isValidTenantId(user) ? user : undefined;
    if (tenantId !== undefined) (EXPLICIT.has(source) ? explicit : implicit).push({ source, tenantId });
  }

  const winner = explicit[0] ?? implicit[0];
  if (winner === undefined) {
    throw new RoutingKeyError(
      'NO_TENANT',
      `no tenant named by any routing source (tried ${options.order.join(', ') || 'none'}); ` +
        `connect as <user>.<tenant> or with options=-c pgs.tenant=<tenant>`,
    );
  }
  const disagreeing = explicit.find((c) => c.tenantId !== winner.tenantId);
  if (disagreeing !== undefined) {
    throw new RoutingKeyError(
      'CONFLICTING_TENANT',
      `routing sources disagree: ${winner.source} names tenant ${winner.tenantId} but ${disagreeing.source} names ${disagreeing.tenantId}`,
      disagreeing.source,
    );
  }

  const rewrite = suffix !== undefined && suffix.tenantId === winner.tenantId;
  const decision: RoutingDecision = {
    tenantId: winner.tenantId,
    user: rewrite ? suffix.user : user,
    userRewritten: rewrite,
    source: winner.source,
  };
  if (fromOpts.forward !== undefined) decision.options = fromOpts.forward;
  if (rewrite && database === user) decision.database = suffix.user;
  return decision;
}
