/**
 * Puts authentication and authorization in front of every handler of a gRPC service, so no RPC can
 * be served unchecked: the coordinator wraps its service implementations once (`guardService`) and
 * each call is authenticated (verified certificate or bearer token), decided (rbac.ts, with the
 * tenant the request names) and reported (`onDecision`: the audit log) before the handler runs.
 * Handlers of list/watch calls read `tenantFilterOf(ctx)` to hide other tenants from tenant-scoped
 * callers; the agent stream reads `principalOf(ctx)` to check host claims.
 */
import type { DescService } from '@bufbuild/protobuf';
import type { CallContext, ServiceImpl } from '@pgs/rpc';
import { Metadata } from '@grpc/grpc-js';
import { bearerToken, decisionError, peerIdentity } from './grpc-credentials.js';
import { identityToString, parseIdentity, type Identity } from './identity.js';
import { authorize, authorizeComponent, tenantIdOf, type Decision, type OperatorPrincipal, type Principal } from './rbac.js';
import { authenticateOperatorToken, hashToken, type TokenRecord } from './tokens.js';

/** Who is calling, or why nobody valid is. */
export type Authentication = { principal: Principal } | { principal: undefined; reason: string };

/** One access decision, for the audit log and metrics. */
export interface AccessEvent {
  /** Full method name, `pgs.operator.v1.CoordinatorService/CreateTenant`. */
  method: string;
  principal: Principal | undefined;
  tenantId: string | undefined;
  decision: Decision;
  /** The gRPC peer address. */
  peer: string;
}

/** How guardService authenticates, decides and reports. */
export interface GuardOptions {
  authenticate: (ctx: CallContext) => Authentication | Promise<Authentication>;
  /** `operator` for CoordinatorService (role table), `component` for agent, route feed and enrollment services. */
  policy: 'operator' | 'component';
  /** Every decision; audit refusals and allowed calls whose `decision.rule.mutating` is true. */
  onDecision?: (event: AccessEvent) => void;
}

const decisions = new WeakMap<CallContext, { principal: Principal | undefined; decision: Decision }>();

/** The authenticated caller of a guarded call. */
export function principalOf(ctx: CallContext): Principal | undefined {
  return decisions.get(ctx)?.principal;
}

/** For tenant-scoped callers of list/watch calls: the only tenants whose data may be returned. Undefined = no limit. */
export function tenantFilterOf(ctx: CallContext): ReadonlySet<string> | undefined {
  const found = decisions.get(ctx)?.decision;
  return found?.allow ? found.tenantFilter : undefined;
}

/**
 * Wraps every handler of `impl` (all four method kinds) with authentication and authorization.
 * A refused call fails with UNAUTHENTICATED / PERMISSION_DENIED and never reaches the handler.
 */
export function guardService<S extends DescService>(service: S, impl: ServiceImpl<S>, options: GuardOptions): ServiceImpl<S> {
  const handlers = impl as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const guarded: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const method of service.methods) {
    const handler = handlers[method.localName];
    if (typeof handler !== 'function') throw new Error(`no handler for ${service.typeName}.${method.name}`);
    const fullName = `${service.typeName}/${method.name}`;
    const takesRequest = method.methodKind === 'unary' || method.methodKind === 'server_streaming';
    guarded[method.localName] = async (...args: unknown[]) => {
      const ctx = args[args.length - 1] as CallContext;
      const auth = await options.authenticate(ctx);
      // rbac knows which request field names the tenant of each operator RPC.
      const tenantId = takesRequest && options.policy === 'operator' ? tenantIdOf(fullName, args[0]) : undefined;
      const decision: Decision =
        auth.principal === undefined && options.policy === 'operator'
          ? { allow: false, status: 'UNAUTHENTICATED', reason: auth.reason, rule: undefined }
          : options.policy === 'operator'
            ? authorize(auth.principal, fullName, tenantId)
            : authorizeComponent(auth.principal, fullName);
      options.onDecision?.({ method: fullName, principal: auth.principal, tenantId, decision, peer: ctx.peer });
      if (!decision.allow) throw decisionError(decision);
      decisions.set(ctx, { principal: auth.principal, decision });
      return handler(...args);
    };
  }
  return guarded as unknown as ServiceImpl<S>;
}

/** Where an authenticator finds tokens and operators. */
export interface AuthenticatorOptions {
  /** The stored record for a token hash (hashToken), if any. */
  findToken: (hash: string) => TokenRecord | undefined | Promise<TokenRecord | undefined>;
  /** The operator an `operator:<name>` certificate stands for (role and tenants), if any. */
  findOperator?: (name: string) => OperatorPrincipal | undefined | Promise<OperatorPrincipal | undefined>;
  now: () => Date;
}

/**
 * The usual authentication: a verified certificate names a host, router or operator; otherwise a
 * bearer token names an operator. A presented but bad token is a refusal (with its reason), not
 * an anonymous call.
 */
export function certificateOrTokenAuthenticator(options: AuthenticatorOptions): (ctx: CallContext) => Promise<Authentication> {
  return async (ctx) => {
    const who = peerIdentity(ctx);
    if (who && (who.kind === 'host' || who.kind === 'router')) return { principal: { kind: who.kind, id: who.id } };
    const token = bearerToken(ctx);
    if (token !== undefined) {
      const record = await options.findToken(hashToken(token));
      const result = authenticateOperatorToken(token, record, options.now());
      return result.ok ? { principal: result.principal } : { principal: undefined, reason: `bearer token refused: ${result.refusal}` };
    }
    if (who?.kind === 'operator') {
      const operator = await options.findOperator?.(who.id);
      return operator ? { principal: operator } : { principal: undefined, reason: `certificate operator:${who.id} names no known operator` };
    }
    return { principal: undefined, reason: 'no credentials: present a bearer token or a certificate from the fleet CA' };
  };
}

/** Metadata key an `--insecure` component names itself with (there is no certificate to do it). */
export const IDENTITY_CLAIM_HEADER = 'pgs-identity';

/** Metadata claiming `who` on an `--insecure` channel (agents and routers send it on their streams). */
export function identityClaimMetadata(who: Identity): Metadata {
  const md = new Metadata();
  md.set(IDENTITY_CLAIM_HEADER, identityToString(who));
  return md;
}

/**
 * For `--insecure` only: when `inner` finds no principal, believe a host or router that names
 * itself in `pgs-identity` metadata. Anyone on the network can claim anything then, which is why
 * --insecure warns on every start; never use it with TLS on.
 */
export function claimedIdentityAuthenticator(
  inner: (ctx: CallContext) => Authentication | Promise<Authentication>,
): (ctx: CallContext) => Promise<Authentication> {
  return async (ctx) => {
    const found = await inner(ctx);
    if (found.principal) return found;
    const values = ctx.metadata.get(IDENTITY_CLAIM_HEADER);
    const claim = values.length === 1 && typeof values[0] === 'string' ? parseIdentity(values[0]) : undefined;
    if (claim && (claim.kind === 'host' || claim.kind === 'router')) return { principal: { kind: claim.kind, id: claim.id } };
    return found;
  };
}
