/**
 * Names and secrets: tenant ids, PostgreSQL user and database names, passwords,
 * host ids and labels. Each check returns its input or throws a ValidationError that names the
 * field, the value given and what is allowed. See README.md "Names" for the reasoning.
 */
import { ValidationError } from './errors.js';

/** Longest PostgreSQL identifier (NAMEDATALEN - 1) and longest DNS label: both 63. */
export const MAX_NAME_LENGTH = 63;

/**
 * Tenant ids that are refused: names PostgreSQL or pg_hba.conf give a meaning (a tenant's owner
 * role and first database carry its id), and names our own components or DNS use.
 */
export const RESERVED_TENANT_IDS: ReadonlySet<string> = new Set([
  // PostgreSQL: built-in databases and roles, pseudo-roles, pg_hba.conf keywords.
  'postgres',
  'template0',
  'template1',
  'public',
  'none',
  'current_user',
  'current_role',
  'session_user',
  'all',
  'sameuser',
  'samerole',
  'samegroup',
  'replication',
  'information_schema',
  // pgs components and operator-facing names.
  'pgs',
  'admin',
  'root',
  'api',
  'coordinator',
  'router',
  'agent',
  'host',
  'hosts',
  'tenant',
  'tenants',
  'system',
  'default',
  'internal',
  'metrics',
  'health',
  'healthz',
  'status',
  'console',
  'dashboard',
  // DNS names a wildcard SNI domain usually needs for itself.
  'www',
  'localhost',
  'mail',
  'ns',
  'ns1',
  'ns2',
]);

/** Prefixes no role may start with (the public API's reserved prefixes, plus `pgs_` for our own roles); checked case-insensitively. */
export const RESERVED_ROLE_PREFIXES: readonly string[] = ['pg_', 'dbaas_', 'pgs_', 'postgres'];

/** Role names PostgreSQL itself refuses to create. */
const RESERVED_ROLE_NAMES: ReadonlySet<string> = new Set(['public', 'none', 'current_user', 'current_role', 'session_user']);

/** Databases every instance already has; the API neither creates nor drops them. */
const RESERVED_DATABASE_NAMES: ReadonlySet<string> = new Set(['postgres', 'template0', 'template1']);

// LDH (letters, digits, hyphen) so `<tenant>.<domain>` is a valid TLS server name; '_' is not
// LDH and public CAs refuse it. A '-' makes the id a quoted identifier in SQL, which is how the
// platform always writes it (the owner role and first database carry the id).
const TENANT_ID = /^[a-z](?:[a-z0-9-]*[a-z0-9])?$/;
/** The tenant id alphabet as a pattern string, for API schemas (length and reserved names are checked apart). */
export const TENANT_ID_PATTERN = TENANT_ID.source;
const USER_NAME = /^[A-Za-z_][A-Za-z0-9_$]*$/;
const DATABASE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HOST_ID = /^[a-z0-9][a-z0-9_.-]*$/;
const LABEL_KEY = /^[a-z0-9](?:[a-z0-9_./-]*[a-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?)?$/;

/** The longest password we accept (the public API's documented bound). */
export const MAX_PASSWORD_LENGTH = 99;
/** The shortest password we accept (the public API's documented bound). */
export const MIN_PASSWORD_LENGTH = 8;
/** The most labels one object may carry. */
export const MAX_LABELS = 64;

const TENANT_ID_ALLOWED =
  `1..${MAX_NAME_LENGTH} characters: lowercase letters, digits and '-', starting with a letter, ending with a letter or digit, ` +
  `no '--', not starting with ${RESERVED_ROLE_PREFIXES.join(', ')} and not a reserved name`;

/** Returns why `id` is not a valid tenant id, or undefined when it is. */
function tenantIdProblem(id: string): string | undefined {
  if (id.length === 0 || id.length > MAX_NAME_LENGTH) return 'wrong length';
  if (!TENANT_ID.test(id)) return 'bad characters';
  // IDNA reserves '--' at positions 3-4 (xn--); refusing it anywhere keeps the rule easy to state.
  if (id.includes('--')) return 'double hyphen';
  if (RESERVED_ROLE_PREFIXES.some((p) => id.startsWith(p))) return 'reserved prefix';
  if (RESERVED_TENANT_IDS.has(id)) return 'reserved name';
  return undefined;
}

/** True when `id` is a valid tenant id (the non-throwing form of validateTenantId). */
export function isValidTenantId(id: unknown): id is string {
  return typeof id === 'string' && tenantIdProblem(id) === undefined;
}

/** Returns the tenant id, or throws ValidationError (field 'id', code INVALID_TENANT_ID). */
export function validateTenantId(id: string, field = 'id'): string {
  if (typeof id !== 'string') throw new ValidationError(field, id, TENANT_ID_ALLOWED, { code: 'INVALID_TENANT_ID' });
  const problem = tenantIdProblem(id);
  if (problem === 'reserved name') {
    throw new ValidationError(field, id, `not a reserved name (${id} is reserved); ${TENANT_ID_ALLOWED}`, { code: 'INVALID_TENANT_ID' });
  }
  if (problem !== undefined) throw new ValidationError(field, id, TENANT_ID_ALLOWED, { code: 'INVALID_TENANT_ID' });
  return id;
}

const USER_NAME_ALLOWED =
  `1..${MAX_NAME_LENGTH} characters: letters, digits, '_' and '$', starting with a letter or '_', ` +
  `not starting with ${RESERVED_ROLE_PREFIXES.join(', ')} (any case) and not ${[...RESERVED_ROLE_NAMES].join(', ')}`;

/** Returns the PostgreSQL role name (the public API's rules), or throws ValidationError (code INVALID_USER_NAME). */
export function validateUserName(name: string, field = 'name'): string {
  const ok =
    typeof name === 'string' &&
    name.length >= 1 &&
    name.length <= MAX_NAME_LENGTH &&
    USER_NAME.test(name) &&
    !RESERVED_ROLE_PREFIXES.some((p) => name.toLowerCase().startsWith(p)) &&
    !RESERVED_ROLE_NAMES.has(name.toLowerCase());
  if (!ok) throw new ValidationError(field, name, USER_NAME_ALLOWED, { code: 'INVALID_USER_NAME' });
  return name;
}

const DATABASE_NAME_ALLOWED =
  `1..${MAX_NAME_LENGTH} characters: letters, digits and '_', starting with a letter or '_', ` + `not ${[...RESERVED_DATABASE_NAMES].join(', ')}`;

/** Returns the database name (the public API's identifier rules), or throws ValidationError (code INVALID_DATABASE_NAME). */
export function validateDatabaseName(name: string, field = 'name'): string {
  const ok =
    typeof name === 'string' &&
    name.length >= 1 &&
    name.length <= MAX_NAME_LENGTH &&
    DATABASE_NAME.test(name) &&
    !RESERVED_DATABASE_NAMES.has(name.toLowerCase());
  if (!ok) throw new ValidationError(field, name, DATABASE_NAME_ALLOWED, { code: 'INVALID_DATABASE_NAME' });
  return name;
}

/** Returns the password when it has 8..99 characters and no NUL; the error never echoes it. */
export function validatePassword(password: string, field = 'password'): string {
  if (typeof password !== 'string') {
    throw new ValidationError(field, typeof password, 'a string', { code: 'INVALID_PASSWORD' });
  }
  // Count code points, not UTF-16 units: what a person typed is what the rule talks about.
  const length = [...password].length;
  const allowed = `${MIN_PASSWORD_LENGTH}..${MAX_PASSWORD_LENGTH} characters, no NUL character`;
  // The wire protocol's strings are NUL-terminated, so a NUL could never be sent as a password.
  if (length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH || password.includes('\0')) {
    throw new ValidationError(field, `<${length} characters, hidden>`, allowed, { code: 'INVALID_PASSWORD' });
  }
  return password;
}

const HOST_ID_ALLOWED = `1..${MAX_NAME_LENGTH} characters: lowercase letters, digits, '_', '.' and '-', starting with a letter or digit`;

/** Returns the host id (chosen by the agent's config), or throws ValidationError (code INVALID_HOST_ID). */
export function validateHostId(id: string, field = 'host_id'): string {
  const ok = typeof id === 'string' && id.length >= 1 && id.length <= MAX_NAME_LENGTH && HOST_ID.test(id);
  if (!ok) throw new ValidationError(field, id, HOST_ID_ALLOWED, { code: 'INVALID_HOST_ID' });
  return id;
}

const LABEL_KEY_ALLOWED = `1..${MAX_NAME_LENGTH} characters: lowercase letters, digits, '_', '.', '/' and '-', starting and ending with a letter or digit`;
const LABEL_VALUE_ALLOWED = `0..${MAX_NAME_LENGTH} characters: letters, digits, '_', '.' and '-', starting and ending with a letter or digit`;

/** Returns a copy of the labels with keys sorted, or throws ValidationError naming the bad key (code INVALID_LABEL). */
export function validateLabels(labels: Record<string, string>, field = 'labels'): Record<string, string> {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new ValidationError(field, labels, 'a map of label keys to values', { code: 'INVALID_LABEL' });
  }
  const keys = Object.keys(labels).sort();
  if (keys.length > MAX_LABELS) {
    throw new ValidationError(field, `${keys.length} labels`, `at most ${MAX_LABELS} labels`, { code: 'INVALID_LABEL' });
  }
  const out: Record<string, string> = {};
  for (const key of keys) {
    if (key.length > MAX_NAME_LENGTH || !LABEL_KEY.test(key)) {
      throw new ValidationError(`${field} key`, key, LABEL_KEY_ALLOWED, { code: 'INVALID_LABEL' });
    }
    const value = labels[key];
    if (typeof value !== 'string' || value.length > MAX_NAME_LENGTH || !LABEL_VALUE.test(value)) {
      throw new ValidationError(`${field}.${key}`, value, LABEL_VALUE_ALLOWED, { code: 'INVALID_LABEL' });
    }
    out[key] = value;
  }
  return out;
}
