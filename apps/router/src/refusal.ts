// Every way the router refuses a connection: a FATAL ErrorResponse with a deliberate SQLSTATE and
// a message safe to show, plus a stable reason for the refusal counter and the connection log.
// README.md "Refusals" tables the same.
import { PgError, SqlState, type PgErrorInit, type StartupError } from '@pgs/wire-protocol';
import type { RouteEntry } from './route.js';

/** Why a connection was refused (the `reason` label of pgs_router_connections_refused_total). */
export type RefusalReason =
  | 'protocol_violation'
  | 'unsupported_protocol'
  | 'no_user'
  | 'startup_timeout'
  | 'too_many_startups'
  | 'tls_required'
  | 'no_tenant'
  | 'conflicting_tenant'
  | 'invalid_tenant'
  | 'unknown_tenant'
  | 'tenant_not_routable'
  | 'hold_timeout'
  | 'tenant_waking'
  | 'wake_refused'
  | 'external_access_disabled'
  | 'connection_limit'
  | 'backend_unreachable'
  | 'auth_failed'
  | 'auth_throttled'
  | 'pool_wait_timeout'
  | 'backend_login_failed'
  | 'shutting_down';

/** A refusal: the PostgreSQL error the client sees, and why. */
export class RouterRefusal extends PgError {
  /** The stable reason (metric label). */
  readonly reason: RefusalReason;
  /** False when PostgreSQL would close without a word, or the client could not read an ErrorResponse: just close. */
  readonly tellClient: boolean;
  /** The exact bytes to send when they are not just this error's ErrorResponse (PostgreSQL's startup replies). */
  readonly #reply: Buffer | undefined;

  constructor(reason: RefusalReason, fields: PgErrorInit, options?: { cause?: unknown; tellClient?: boolean; reply?: Buffer }) {
    super(fields, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.tellClient = options?.tellClient ?? true;
    this.#reply = options?.reply;
  }

  /** What to write to the client before closing. */
  replyBytes(): Buffer {
    return this.#reply ?? this.toErrorResponse();
  }
}

const NAME_THE_TENANT =
  'Name the tenant with the user name (user=<user>.<tenant>), with options=-c pgs.tenant=<tenant>, or through TLS with host <tenant>.<domain>.';

function quoted(id: string): string {
  return `"${id.slice(0, 63)}"`;
}

/** Route states a client may expect to pass soon, so the hint says to retry. */
const RETRYABLE: ReadonlySet<RouteEntry['state']> = new Set(['PROVISIONING', 'FAILOVER', 'SUSPENDED', 'SWITCHING']);

const STATE_TEXT: Record<RouteEntry['state'], string> = {
  UNSPECIFIED: 'is not available',
  ROUTABLE: 'is available',
  PROVISIONING: 'is starting up',
  STOPPED: 'is stopped',
  HOST_DOWN: 'is unavailable: its host is down',
  FAILOVER: 'is failing over to a replica',
  SUSPENDED: 'is suspended',
  ERROR: 'is in error',
  SWITCHING: 'is switching to another instance',
};

/** Constructors for each refusal. */
export const refuse = {
  /** PostgreSQL's own end of a bad startup: the same bytes (or the same silent close), counted by SQLSTATE. */
  startupRejected: (err: StartupError): RouterRefusal => {
    const reply = err.replyBytes();
    const reason: RefusalReason =
      err.code === SqlState.FeatureNotSupported
        ? 'unsupported_protocol'
        : err.code === SqlState.InvalidAuthorizationSpecification
          ? 'no_user'
          : 'protocol_violation';
    const fields: PgErrorInit = { code: err.code, message: err.message, ...(err.detail ? { detail: err.detail } : {}) };
    return new RouterRefusal(reason, fields, reply === null ? { cause: err, tellClient: false } : { cause: err, reply });
  },

  protocolViolation: (err: PgError): RouterRefusal =>
    new RouterRefusal(
      'protocol_violation',
      { code: SqlState.ProtocolViolation, message: err.message, ...(err.detail ? { detail: err.detail } : {}) },
      { cause: err },
    ),

  directTlsWithoutCertificates: (): RouterRefusal =>
    new RouterRefusal(
      'protocol_violation',
      { code: SqlState.ProtocolViolation, message: 'direct TLS connection but this router has no TLS certificate' },
      { tellClient: false },
    ),

  directTlsWithoutAlpn: (): RouterRefusal =>
    new RouterRefusal('protocol_violation', {
      code: SqlState.ProtocolViolation,
      message: 'direct TLS connection without ALPN protocol "postgresql"',
      hint: 'Direct TLS (sslnegotiation=direct) needs a client that offers ALPN "postgresql" (libpq 17 or later).',
    }),

  /** `tellClient` false before the startup packet: PostgreSQL (authentication_timeout) just exits then. */
  startupTimeout: (ms: number, tellClient = true): RouterRefusal =>
    new RouterRefusal(
      'startup_timeout',
      {
        code: SqlState.ProtocolViolation,
        message: `startup not completed within ${ms} ms`,
        hint: 'The client was too slow to send its startup packet or to authenticate.',
      },
      { tellClient },
    ),

  tooManyStartups: (limit: number): RouterRefusal =>
    new RouterRefusal('too_many_startups', {
      code: SqlState.TooManyConnections,
      message: `too many connections are starting up at this router (limit ${limit})`,
      hint: 'Retry in a moment.',
    }),

  tlsRequired: (): RouterRefusal =>
    new RouterRefusal('tls_required', {
      code: SqlState.InvalidAuthorizationSpecification,
      message: 'this router accepts only TLS connections',
      hint: 'Connect with sslmode=require (or verify-full).',
    }),

  noTenant: (message: string): RouterRefusal =>
    new RouterRefusal('no_tenant', {
      code: SqlState.InvalidAuthorizationSpecification,
      message: 'no tenant named in the connection',
      detail: message,
      hint: NAME_THE_TENANT,
    }),

  conflictingTenant: (message: string): RouterRefusal =>
    new RouterRefusal('conflicting_tenant', {
      code: SqlState.InvalidAuthorizationSpecification,
      message: 'the connection names more than one tenant',
      detail: message,
      hint: NAME_THE_TENANT,
    }),

  invalidTenant: (message: string): RouterRefusal =>
    new RouterRefusal('invalid_tenant', {
      code: SqlState.InvalidAuthorizationSpecification,
      message: 'invalid tenant name',
      detail: message,
      hint: NAME_THE_TENANT,
    }),

  /** 28000 when the tenant came from the user name (as PostgreSQL answers an unknown role), else 3D000. */
  unknownTenant: (tenantId: string, fromUserName: boolean): RouterRefusal =>
    new RouterRefusal('unknown_tenant', {
      code: fromUserName ? SqlState.InvalidAuthorizationSpecification : SqlState.InvalidCatalogName,
      message: `tenant ${quoted(tenantId)} does not exist`,
      ...(fromUserName ? { hint: NAME_THE_TENANT } : {}),
    }),

  notRoutable: (route: RouteEntry): RouterRefusal =>
    new RouterRefusal('tenant_not_routable', {
      code: SqlState.CannotConnectNow,
      message: `tenant ${quoted(route.tenantId)} ${STATE_TEXT[route.state]}`,
      detail: route.reason ? `${route.state}: ${route.reason}` : `state ${route.state}`,
      ...(RETRYABLE.has(route.state) ? { hint: 'Retry in a few seconds.' } : {}),
    }),

  /** A client held while its tenant's route was in a passing state (a switch) past the hold bound. */
  holdTimeout: (route: RouteEntry, ms: number): RouterRefusal =>
    new RouterRefusal('hold_timeout', {
      code: SqlState.CannotConnectNow,
      message: `tenant ${quoted(route.tenantId)} ${STATE_TEXT[route.state]} and did not serve again within ${ms} ms`,
      detail: route.reason ? `${route.state}: ${route.reason}` : `state ${route.state}`,
      hint: 'Retry in a few seconds.',
    }),

  /** A suspended tenant did not come back within the hold deadline. */
  tenantWaking: (tenantId: string, waitedMs: number): RouterRefusal =>
    new RouterRefusal('tenant_waking', {
      code: SqlState.CannotConnectNow,
      message: `tenant ${quoted(tenantId)} is waking up, try again`,
      detail: `the tenant was suspended while idle and is being started; the router held the connection ${Math.round(waitedMs / 1000)} s`,
      hint: 'Retry in a few seconds.',
    }),

  /** The coordinator will not wake the tenant (e.g. its host has no room left for it). */
  wakeRefused: (tenantId: string, reason: string): RouterRefusal =>
    new RouterRefusal('wake_refused', {
      code: SqlState.CannotConnectNow,
      message: `tenant ${quoted(tenantId)} is suspended and cannot be woken now`,
      detail: reason,
      hint: 'An operator can free capacity on its host, or on a host it may move to.',
    }),

  externalAccessDisabled: (tenantId: string): RouterRefusal =>
    new RouterRefusal('external_access_disabled', {
      code: SqlState.InvalidAuthorizationSpecification,
      message: `external access to tenant ${quoted(tenantId)} is disabled`,
      hint: 'An operator can enable it in the tenant spec (external_access).',
    }),

  connectionLimit: (tenantId: string, limit: number): RouterRefusal =>
    new RouterRefusal('connection_limit', {
      code: SqlState.TooManyConnections,
      message: `too many connections for tenant ${quoted(tenantId)} (limit ${limit} at this router)`,
    }),

  backendUnreachable: (tenantId: string, cause: unknown): RouterRefusal =>
    new RouterRefusal(
      'backend_unreachable',
      { code: SqlState.ConnectionFailure, message: `could not connect to the server of tenant ${quoted(tenantId)}`, hint: 'Retry in a few seconds.' },
      { cause },
    ),

  /** PostgreSQL's own reply to a wrong password, and (deliberately the same) to an unknown user. */
  authFailed: (user: string): RouterRefusal =>
    new RouterRefusal('auth_failed', { code: SqlState.InvalidPassword, message: `password authentication failed for user "${user}"` }),

  /** A SCRAM message that breaks the exchange (PostgreSQL answers the same with 08P01). */
  authProtocol: (message: string, detail: string | undefined): RouterRefusal =>
    new RouterRefusal('protocol_violation', { code: SqlState.ProtocolViolation, message, ...(detail ? { detail } : {}) }),

  authThrottled: (user: string, retryMs: number): RouterRefusal =>
    new RouterRefusal('auth_throttled', {
      code: SqlState.InvalidAuthorizationSpecification,
      message: `too many failed authentication attempts for user "${user}"`,
      hint: `Retry in ${Math.max(1, Math.ceil(retryMs / 1000))} seconds.`,
    }),

  poolWaitTimeout: (tenantId: string, waitMs: number): RouterRefusal =>
    new RouterRefusal('pool_wait_timeout', {
      code: SqlState.TooManyConnections,
      message: `no server connection of tenant ${quoted(tenantId)} became free within ${waitMs} ms`,
      hint: 'Close idle sessions, or ask an operator for a larger router pool (--pool-size, --pool-max-backends).',
    }),

  backendLoginFailed: (tenantId: string, cause: unknown): RouterRefusal =>
    new RouterRefusal(
      'backend_login_failed',
      { code: SqlState.CannotConnectNow, message: `the router could not log in to the server of tenant ${quoted(tenantId)}`, hint: 'Retry in a few seconds.' },
      { cause },
    ),

  shuttingDown: (): RouterRefusal =>
    new RouterRefusal('shutting_down', {
      code: SqlState.AdminShutdown,
      message: 'the router is shutting down',
      hint: 'Reconnect; another router will take the connection.',
    }),
};
