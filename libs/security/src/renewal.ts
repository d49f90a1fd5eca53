/**
 * Keeps a component's certificate fresh: at 2/3 of its lifetime, make a new key and CSR, ask the
 * coordinator to sign it (over the still-valid mTLS link), and swap the result into the TlsIdentity
 * so new connections use it. A failed attempt is retried with capped backoff until the certificate
 * expires; after that only a new join token helps, and the caller is told.
 */
import type { Logger } from '@pgs/service-kit';
import type { TlsIdentity, TlsMaterial } from './grpc-credentials.js';
import { identityToString, type Identity } from './identity.js';
import { certificateInfo, createCsr, generatePrivateKey, isExpired, renewalTime } from './pki.js';

/** How to renew, and what to do after. */
export interface RenewalOptions {
  /** The identity the TLS links use; updated in place. */
  tls: TlsIdentity;
  /** Who we are (goes into the CSR; the coordinator takes the identity from our current certificate). */
  identity: Identity;
  /** Sends the CSR to the coordinator, returns the signed certificate PEM (and the CA PEM when it changed). */
  renew: (csrPem: string) => Promise<{ certPem: string; caPem?: string }>;
  /** Called with the new material after each renewal (e.g. to write the cert and key files, key mode 0600). */
  onRenewed?: (material: TlsMaterial) => void | Promise<void>;
  /** Called once when the certificate expired without a successful renewal. */
  onExpired?: () => void;
  log: Logger;
  /** The clock (tests). */
  now?: () => Date;
  /** First retry delay after a failure; doubles up to 5 minutes. Default 5 s. */
  retryMs?: number;
}

/** A running renewal loop. */
export interface Renewal {
  /** Renews now, whatever the certificate's age; rejects when that fails (a retry is scheduled anyway). */
  renewNow(): Promise<void>;
  stop(): void;
}

const MAX_RETRY_MS = 5 * 60_000;
// setTimeout's limit: a delay above it fires at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Starts renewing the certificate in `tls` at 2/3 of each certificate's lifetime. */
export function startCertificateRenewal(options: RenewalOptions): Renewal {
  const now = options.now ?? (() => new Date());
  const log = options.log.child({ component: 'cert-renewal', identity: identityToString(options.identity) });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let retryMs = options.retryMs ?? 5000;
  let expiredReported = false;

  const schedule = (delayMs: number): void => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void attempt(), Math.max(0, Math.min(delayMs, MAX_TIMER_MS)));
    timer.unref();
  };

  const scheduleNext = (): void => {
    const at = renewalTime(options.tls.material.certPem).getTime();
    schedule(at - now().getTime());
  };

  async function renewOnce(): Promise<void> {
    const keyPem = await generatePrivateKey();
    const csrPem = await createCsr(options.identity, keyPem);
    const signed = await options.renew(csrPem);
    const material: TlsMaterial = { caPem: signed.caPem ?? options.tls.material.caPem, certPem: signed.certPem, keyPem };
    options.tls.update(material);
    await options.onRenewed?.(material);
    const info = certificateInfo(signed.certPem);
    log.info({ serial: info.serialNumber, notAfter: info.notAfter.toISOString() }, 'certificate renewed');
  }

  async function attempt(rethrow = false): Promise<void> {
    if (stopped) return;
    try {
      await renewOnce();
      retryMs = options.retryMs ?? 5000;
      expiredReported = false;
      scheduleNext();
    } catch (err) {
      if (stopped) return;
      const expired = isExpired(options.tls.material.certPem, now());
      log.warn({ err, retryInMs: retryMs, expired }, 'certificate renewal failed');
      if (expired && !expiredReported) {
        expiredReported = true;
        options.onExpired?.();
      }
      schedule(retryMs);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      if (rethrow) throw err;
    }
  }

  scheduleNext();
  return {
    renewNow: async () => {
      clearTimeout(timer);
      await attempt(true);
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
