/**
 * pgs.security.v1.EnrollmentService: a host or router joins once with a single-use join token and
 * gets a short-lived certificate naming it; later it renews over mTLS with its still-valid
 * certificate. The identity in the certificate comes from the token or the current certificate,
 * never from the request's CSR subject.
 */
import net from 'node:net';
import type { EnrollmentService } from '@pgs/proto';
import { Code, RpcError, type ServiceImpl } from '@pgs/rpc';
import { certificateInfo, hashToken, identity, principalOf, redeemJoinToken, tokenLabel, type FleetCa, type TokenRefusal } from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import type { Store } from '../store/contract.js';
import { auditRefusal } from './access.js';

const UNAUTHENTICATED_REFUSALS: readonly TokenRefusal[] = ['malformed', 'unknown', 'expired', 'used', 'revoked'];

/** What the enrollment service needs. */
export interface EnrollmentDeps {
  store: Store;
  ca: FleetCa | undefined;
  /** Lifetime of issued certificates. */
  lifetimeMs: number;
  clock: () => number;
  log: Logger;
}

function needCa(ca: FleetCa | undefined): FleetCa {
  if (!ca)
    throw new RpcError(Code.FAILED_PRECONDITION, 'this coordinator runs with its own PKI (--tls-*): get certificates from that PKI', {
      errorCode: 'NO_FLEET_CA',
    });
  return ca;
}

async function sign(
  ca: FleetCa,
  csrPem: string,
  who: ReturnType<typeof identity>,
  deps: EnrollmentDeps,
): Promise<{ certificatePem: string; caCertificatePem: string; expiresAt: string }> {
  let certPem: string;
  try {
    certPem = await ca.signCsr(csrPem, { identity: who, now: new Date(deps.clock()), lifetimeMs: deps.lifetimeMs });
  } catch (err) {
    throw new RpcError(Code.INVALID_ARGUMENT, err instanceof Error ? err.message : 'bad certificate request', {
      errorCode: 'CSR_INVALID',
      details: { field: 'csr_pem' },
      cause: err,
    });
  }
  return { certificatePem: certPem, caCertificatePem: ca.certPem, expiresAt: certificateInfo(certPem).notAfter.toISOString() };
}

/**
 * The address an instance certificate may name: an IP literal that no other host is registered
 * with, so no agent can get a certificate that routers would accept for another host's instances.
 * (A host's own address may change: its agent asks before its Hello re-registers it.)
 */
async function instanceAddress(address: string, hostId: string, store: Store): Promise<string> {
  if (net.isIP(address) === 0)
    throw new RpcError(Code.INVALID_ARGUMENT, `address "${address.slice(0, 64)}" is not an IP address`, { details: { field: 'address' } });
  const other = (await store.read.hosts.list()).find((h) => h.id !== hostId && h.address === address);
  if (other) throw new RpcError(Code.PERMISSION_DENIED, `address ${address} belongs to host "${other.id}"`, { errorCode: 'PERMISSION_DENIED' });
  return address;
}

/** The EnrollmentService implementation (wrap it with the guard: Join is open, renewal needs a component certificate). */
export function enrollmentService(deps: EnrollmentDeps): ServiceImpl<typeof EnrollmentService> {
  const log = deps.log.child({ component: 'enrollment' });
  return {
    async join(req, ctx) {
      const ca = needCa(deps.ca);
      const kind = req.kind === 'host' || req.kind === 'router' ? req.kind : undefined;
      const refuse = (status: Code, reason: string): never => {
        auditRefusal(deps.store, {
          time: deps.clock(),
          principal: `${req.kind || '?'}:${req.componentId || '?'}`,
          method: 'pgs.security.v1.EnrollmentService/Join',
          hostId: kind === 'host' ? req.componentId : undefined,
          reason,
          peer: ctx.peer,
        }).catch((err: unknown) => log.error({ err }, 'cannot audit a refusal'));
        log.info({ kind: req.kind, componentId: req.componentId, reason, peer: ctx.peer }, 'join refused');
        throw new RpcError(status, reason, { errorCode: status === Code.UNAUTHENTICATED ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED' });
      };
      if (!kind) throw new RpcError(Code.INVALID_ARGUMENT, `kind must be host or router, got "${req.kind}"`, { details: { field: 'kind' } });
      const now = deps.clock();
      const hash = hashToken(req.token);
      const redeemed = redeemJoinToken(req.token, await deps.store.read.tokens.find(hash), { kind, id: req.componentId }, new Date(now));
      if (!redeemed.ok) {
        return refuse(
          UNAUTHENTICATED_REFUSALS.includes(redeemed.refusal) ? Code.UNAUTHENTICATED : Code.PERMISSION_DENIED,
          `join token refused: ${redeemed.refusal}`,
        );
      }
      // Sign first: a bad CSR must not burn the token.
      const signed = await sign(ca, req.csrPem, redeemed.identity, deps);
      const used = await deps.store.transaction(async (tx) => {
        if (!(await tx.tokens.markUsed(hash, now))) return false;
        await tx.events.append({
          time: now,
          principal: `${kind}:${req.componentId}`,
          action: 'component.joined',
          hostId: kind === 'host' ? req.componentId : '',
          message: `${kind} "${req.componentId}" joined the fleet`,
          details: { token: tokenLabel(req.token), expiresAt: signed.expiresAt, peer: ctx.peer },
        });
        return true;
      });
      // Two joins raced with one token: only the first transaction wins.
      if (!used) return refuse(Code.UNAUTHENTICATED, 'join token refused: used');
      log.info({ kind, componentId: req.componentId, expiresAt: signed.expiresAt }, 'component joined');
      return signed;
    },
    async issueInstanceCertificate(req, ctx) {
      const ca = needCa(deps.ca);
      const who = principalOf(ctx);
      if (!who || who.kind !== 'host')
        throw new RpcError(Code.PERMISSION_DENIED, 'an instance certificate is issued to a host agent only', { errorCode: 'PERMISSION_DENIED' });
      const address = await instanceAddress(req.address, who.id, deps.store);
      let certPem: string;
      try {
        certPem = await ca.signCsr(req.csrPem, {
          identity: identity('instance', who.id),
          ipAddresses: [address],
          serverOnly: true,
          now: new Date(deps.clock()),
          lifetimeMs: deps.lifetimeMs,
        });
      } catch (err) {
        throw new RpcError(Code.INVALID_ARGUMENT, err instanceof Error ? err.message : 'bad certificate request', {
          errorCode: 'CSR_INVALID',
          details: { field: 'csr_pem' },
          cause: err,
        });
      }
      const expiresAt = certificateInfo(certPem).notAfter.toISOString();
      log.info({ hostId: who.id, address, expiresAt }, 'instance certificate issued');
      return { certificatePem: certPem, caCertificatePem: ca.certPem, expiresAt };
    },
    async renewCertificate(req, ctx) {
      const ca = needCa(deps.ca);
      const who = principalOf(ctx);
      if (!who || who.kind === 'operator')
        throw new RpcError(Code.UNAUTHENTICATED, 'renewal needs a host or router certificate', { errorCode: 'UNAUTHENTICATED' });
      const signed = await sign(ca, req.csrPem, identity(who.kind, who.id), deps);
      log.info({ identity: `${who.kind}:${who.id}`, expiresAt: signed.expiresAt }, 'certificate renewed');
      return signed;
    },
  };
}
