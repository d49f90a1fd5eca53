// From a startup packet (and SNI name) to a routable route and the startup packet to replay.
// The routing-key rules live in @pgs/tenancy; this file only applies them to the cache.
import { RoutingKeyError, resolveRoutingKey, type RoutingDecision, type RoutingSource } from '@pgs/tenancy';
import { encodeStartupMessage, type StartupPacket } from '@pgs/wire-protocol';
import { refuse } from './refusal.js';
import type { RouteEntry } from './route.js';
import { isHeld } from './route-hold.js';

/** A StartupMessage as the wire decoder gives it. */
export type StartupMessage = Extract<StartupPacket, { kind: 'startup-message' }>;

/** What routing needs to know. */
export interface RoutingContext {
  lookup(tenantId: string): RouteEntry | undefined;
  order: readonly RoutingSource[];
  sniDomain: string | undefined;
  /** True when this router wakes suspended tenants: their clients pass routing and are held. */
  wakes?: boolean;
}

/** The routing outcome: the decision and the route it found. */
export interface Routed {
  decision: RoutingDecision;
  route: RouteEntry;
}

/** Picks the tenant and its route; throws RouterRefusal when the connection cannot go anywhere. */
export function routeStartup(packet: StartupMessage, sniHostname: string | undefined, ctx: RoutingContext): Routed {
  let decision: RoutingDecision;
  // Routing keys are parsed by @pgs/tenancy only: domain rules live in the lib, so every app parses them alike.
  try {
    decision = resolveRoutingKey(
      { parameters: packet.parameters, ...(sniHostname !== undefined ? { sniHostname } : {}) },
      { order: ctx.order, ...(ctx.sniDomain !== undefined ? { sniDomain: ctx.sniDomain } : {}) },
    );
  } catch (err) {
    if (!(err instanceof RoutingKeyError)) throw err;
    if (err.code === 'CONFLICTING_TENANT') throw refuse.conflictingTenant(err.message);
    if (err.code === 'INVALID_TENANT') throw refuse.invalidTenant(err.message);
    throw refuse.noTenant(err.message);
  }
  const route = ctx.lookup(decision.tenantId);
  if (!route) throw refuse.unknownTenant(decision.tenantId, decision.source === 'user' || decision.source === 'user_suffix');
  // A held route (a switch in progress) is checked again once the hold ends.
  if (!isHeld(route)) checkRoutable(route, ctx.wakes === true);
  return { decision, route };
}

/** Throws the refusal for a route clients may not use now (a SUSPENDED one may be woken when `wakes`). */
export function checkRoutable(route: RouteEntry, wakes = false): void {
  if (route.state !== 'ROUTABLE' && !(wakes && route.state === 'SUSPENDED')) throw refuse.notRoutable(route);
  if (!route.externalAccess) throw refuse.externalAccessDisabled(route.tenantId);
}

/**
 * The startup packet to send the tenant's server, with the routing parts removed (user suffix,
 * pgs.tenant option): parameters in their original order, the same protocol version, so an
 * unchanged packet encodes to the client's own bytes.
 */
export function startupForBackend(packet: StartupMessage, decision: RoutingDecision): Buffer {
  return encodeStartupMessage({ protocol: packet.protocol, parameters: startupParametersForBackend(packet, decision) });
}

/** The startup parameters startupForBackend sends, not yet encoded. */
export function startupParametersForBackend(packet: StartupMessage, decision: RoutingDecision): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const [name, value] of packet.parameters) {
    if (name === 'options' && decision.options === undefined) continue;
    if (name === 'user') parameters.set(name, decision.user);
    else if (name === 'options') parameters.set(name, decision.options ?? value);
    else if (name === 'database' && decision.database !== undefined) parameters.set(name, decision.database);
    else parameters.set(name, value);
  }
  return parameters;
}
