/**
 * Who may call the coordinator: every gRPC service is wrapped with libs/security's
 * guardService, which authenticates each call (verified certificate, else bearer token), checks it
 * against the role table and reports the decision here. Refusals go to the audit log with the
 * principal (allowed mutating calls are audited by the services themselves, which now receive the
 * real principal instead of a fixed "operator").
 */
import type { DescService } from '@bufbuild/protobuf';
import type { CallContext, ServiceImpl } from '@pgs/rpc';
import {
  certificateOrTokenAuthenticator,
  claimedIdentityAuthenticator,
  describePrincipal,
  guardService,
  principalOf,
  type AccessEvent,
  type Authentication,
  type OperatorPrincipal,
  type Principal,
} from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import type { Store } from '../store/contract.js';

/** How the coordinator authenticates and audits calls. */
export interface Access {
  authenticate: (ctx: CallContext) => Promise<Authentication>;
  onDecision: (event: AccessEvent) => void;
  /** Wraps a service: no handler runs unchecked. */
  guard<S extends DescService>(service: S, impl: ServiceImpl<S>, policy: 'operator' | 'component'): ServiceImpl<S>;
}

/** The principal as the audit log writes it (`operator:alice (reader)`, `host:h1`, `anonymous`). */
export function principalName(principal: Principal | undefined): string {
  return principal ? describePrincipal(principal) : 'anonymous';
}

/** The audit name of the caller of a guarded call. */
export function callerOf(ctx: CallContext): string {
  return principalName(principalOf(ctx));
}

/** Appends one refusal to the audit log (the guard's, the agent stream's host check, a refused join). */
export async function auditRefusal(
  store: Store,
  event: { time: number; principal: string; method: string; tenantId?: string | undefined; hostId?: string | undefined; reason: string; peer: string },
): Promise<void> {
  await store.transaction((tx) =>
    tx.events.append({
      time: event.time,
      principal: event.principal,
      action: 'access.refused',
      tenantId: event.tenantId ?? '',
      hostId: event.hostId ?? '',
      outcome: 'REFUSED',
      message: event.reason,
      details: { method: event.method, peer: event.peer },
    }),
  );
}

/** Builds the authenticator and the audit hook. */
export function createAccess(options: { store: Store; insecure: boolean; clock: () => number; log: Logger }): Access {
  const { store, clock } = options;
  const base = certificateOrTokenAuthenticator({
    findToken: async (hash) => await store.read.tokens.find(hash),
    // An `operator:<name>` certificate (own PKI) stands for the live operator token of that name.
    findOperator: async (name): Promise<OperatorPrincipal | undefined> => {
      const t = await store.read.tokens.findOperator(name);
      if (!t || t.role === undefined || t.expiresAtMs <= clock()) return undefined;
      return { kind: 'operator', name: t.name, role: t.role, tenantIds: [...t.tenantIds] };
    },
    now: () => new Date(clock()),
  });
  // Without TLS there are no certificates: components name themselves (the --insecure warning says so).
  const authenticate = options.insecure ? claimedIdentityAuthenticator(base) : base;
  const log = options.log.child({ component: 'access' });
  const onDecision = (e: AccessEvent): void => {
    if (e.decision.allow) return;
    const principal = principalName(e.principal);
    log.info({ method: e.method, principal, tenantId: e.tenantId, peer: e.peer, reason: e.decision.reason }, 'call refused');
    auditRefusal(store, { time: clock(), principal, method: e.method, tenantId: e.tenantId, reason: e.decision.reason, peer: e.peer }).catch((err: unknown) => {
      // The refusal stands either way; a store that cannot write is reported, not hidden.
      log.error({ err, method: e.method }, 'cannot audit a refusal');
    });
  };
  return {
    authenticate,
    onDecision,
    guard: (service, impl, policy) => guardService(service, impl, { policy, authenticate, onDecision }),
  };
}
