import type { Logger } from '@pgs/service-kit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TlsIdentity, type TlsMaterial } from './grpc-credentials.js';
import { identity } from './identity.js';
import { certificateInfo, createFleetCa, FleetCa, identityOfCertificate, verifyIssuedBy } from './pki.js';
import { startCertificateRenewal, type Renewal } from './renewal.js';

const HOUR = 3600_000;
const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, child: () => silent };
let ca: FleetCa;
let running: Renewal | undefined;

beforeAll(async () => {
  ca = await FleetCa.load(await createFleetCa({ now: new Date() }));
});
afterEach(() => running?.stop());

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function tlsFor(issuedAt: Date, lifetimeMs: number): Promise<TlsIdentity> {
  const leaf = await ca.issue({ identity: identity('host', 'h1'), now: issuedAt, lifetimeMs });
  return new TlsIdentity({ caPem: ca.certPem, ...leaf });
}

describe('startCertificateRenewal', () => {
  it('renews a certificate past 2/3 of its life with a fresh key the CA signs', async () => {
    const tls = await tlsFor(new Date(Date.now() - 20 * HOUR), 24 * HOUR);
    const old = tls.material;
    const renewed: TlsMaterial[] = [];
    running = startCertificateRenewal({
      tls,
      identity: identity('host', 'h1'),
      log: silent,
      renew: async (csr) => ({ certPem: await ca.signCsr(csr, { identity: identity('host', 'h1'), now: new Date() }) }),
      onRenewed: (m) => void renewed.push(m),
    });
    await waitFor(() => renewed.length === 1);
    expect(tls.material).toBe(renewed[0]);
    expect(tls.material.keyPem).not.toBe(old.keyPem);
    expect(identityOfCertificate(tls.material.certPem)).toEqual({ kind: 'host', id: 'h1' });
    expect(verifyIssuedBy(tls.material.certPem, ca.certPem, new Date())).toBe(true);
    expect(certificateInfo(tls.material.certPem).notAfter.getTime()).toBeGreaterThan(Date.now() + 23 * HOUR);
  });

  it('leaves a young certificate alone', async () => {
    const tls = await tlsFor(new Date(), 24 * HOUR);
    let calls = 0;
    running = startCertificateRenewal({ tls, identity: identity('host', 'h1'), log: silent, renew: async () => (calls++, { certPem: '' }) });
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toBe(0);
  });

  it('retries after a failure and reports an expired certificate once', async () => {
    const tls = await tlsFor(new Date(Date.now() - 48 * HOUR), HOUR);
    let calls = 0;
    let expiredReports = 0;
    running = startCertificateRenewal({
      tls,
      identity: identity('host', 'h1'),
      log: silent,
      retryMs: 10,
      onExpired: () => expiredReports++,
      renew: async (csr) => {
        calls++;
        if (calls < 3) throw new Error('coordinator unavailable');
        return { certPem: await ca.signCsr(csr, { identity: identity('host', 'h1'), now: new Date() }) };
      },
    });
    await waitFor(() => calls === 3 && verifyIssuedBy(tls.material.certPem, ca.certPem, new Date()));
    expect(expiredReports).toBe(1);
  });

  it('renewNow rejects when the coordinator refuses, and keeps the old certificate', async () => {
    const tls = await tlsFor(new Date(), 24 * HOUR);
    const before = tls.material;
    running = startCertificateRenewal({
      tls,
      identity: identity('host', 'h1'),
      log: silent,
      retryMs: 60_000,
      renew: async () => Promise.reject(new Error('PERMISSION_DENIED')),
    });
    await expect(running.renewNow()).rejects.toThrow('PERMISSION_DENIED');
    expect(tls.material).toBe(before);
  });
});
