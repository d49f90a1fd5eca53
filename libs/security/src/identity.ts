/**
 * Who a component is: `host:<id>`, `router:<id>`, `operator:<name>` or `coordinator:<name>`; and
 * `instance:<host-id>`, the server certificate of a host's PostgreSQL instances (no coordinator
 * service accepts it: a leaked instance key cannot act as the host's agent). The
 * fleet CA writes it into each certificate twice, as the subject CN and as a URI SAN
 * `spiffe://pgs/<kind>/<id>` (the SPIFFE ID shape, so tooling that reads SPIFFE IDs can show it).
 * Pure: no I/O.
 */
import { SecurityError } from './errors.js';

/** The kinds of principal a certificate can name. */
export const IDENTITY_KINDS = ['host', 'router', 'operator', 'coordinator', 'instance'] as const;
/** One of IDENTITY_KINDS. */
export type IdentityKind = (typeof IDENTITY_KINDS)[number];

/** A component's identity. */
export interface Identity {
  readonly kind: IdentityKind;
  readonly id: string;
}

/** The SPIFFE trust domain of the fleet. */
export const TRUST_DOMAIN = 'pgs';

// Host ids, router ids and operator names: letters, digits, '.', '_', '-', starting with a letter or digit.
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function isKind(kind: string): kind is IdentityKind {
  return (IDENTITY_KINDS as readonly string[]).includes(kind);
}

/** Builds an identity, checking kind and id. */
export function identity(kind: IdentityKind, id: string): Identity {
  if (!isKind(kind)) throw new SecurityError('IDENTITY_INVALID', `unknown identity kind "${kind}" (one of ${IDENTITY_KINDS.join(', ')})`);
  if (!ID.test(id))
    throw new SecurityError('IDENTITY_INVALID', `identity id "${id.slice(0, 70)}" must be 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit`);
  return Object.freeze({ kind, id });
}

/** `host:h1`: the subject common name. */
export function identityToString(who: Identity): string {
  return `${who.kind}:${who.id}`;
}

/** `spiffe://pgs/host/h1`: the URI SAN. */
export function identityToUri(who: Identity): string {
  return `spiffe://${TRUST_DOMAIN}/${who.kind}/${who.id}`;
}

/** Parses `host:h1`; undefined when it is not an identity. */
export function parseIdentity(text: string): Identity | undefined {
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  const kind = text.slice(0, colon);
  const id = text.slice(colon + 1);
  return isKind(kind) && ID.test(id) ? Object.freeze({ kind, id }) : undefined;
}

/** Parses `spiffe://pgs/host/h1`; undefined when it is not one of ours. */
export function parseIdentityUri(uri: string): Identity | undefined {
  const prefix = `spiffe://${TRUST_DOMAIN}/`;
  if (!uri.startsWith(prefix)) return undefined;
  const parts = uri.slice(prefix.length).split('/');
  if (parts.length !== 2) return undefined;
  return parseIdentity(`${parts[0]}:${parts[1]}`);
}

/** True when both name the same principal. */
export function sameIdentity(a: Identity | undefined, b: Identity | undefined): boolean {
  return a !== undefined && b !== undefined && a.kind === b.kind && a.id === b.id;
}
