import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { SecurityError } from './errors.js';
import { identity } from './identity.js';
import {
  certificateFingerprint,
  certificateInfo,
  createCsr,
  createFleetCa,
  FleetCa,
  generatePrivateKey,
  identityOfCertificate,
  isExpired,
  renewalTime,
  shouldRenew,
  verifyIssuedBy,
  type CertifiedKey,
} from './pki.js';

// X.509 times have whole seconds.
const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const HOUR = 3600_000;

let ca: FleetCa;
let otherCa: FleetCa;
let server: CertifiedKey;
beforeAll(async () => {
  ca = await FleetCa.load(await createFleetCa({ now }));
  otherCa = await FleetCa.load(await createFleetCa({ now, commonName: 'impostor CA' }));
  server = await ca.issue({ identity: identity('coordinator', 'c1'), dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now });
});

/** One TLS handshake on 127.0.0.1: resolves with what each side saw, or the error that stopped it. */
async function handshake(client: CertifiedKey | undefined, opts: { clientCa?: string; requireClientCert?: boolean } = {}) {
  const srv = tls.createServer({
    cert: server.certPem,
    key: server.keyPem,
    ca: ca.certPem,
    requestCert: true,
    rejectUnauthorized: opts.requireClientCert ?? true,
  });
  const serverSide = new Promise<{ authorized: boolean; peerIdentity: string | undefined }>((resolve) => {
    srv.on('secureConnection', (socket) => {
      const peer = socket.getPeerCertificate();
      const who = peer.raw ? identityOfCertificate(peer.raw) : undefined;
      resolve({ authorized: socket.authorized, peerIdentity: who && `${who.kind}:${who.id}` });
      socket.end();
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  try {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: opts.clientCa ?? ca.certPem,
      cert: client?.certPem,
      key: client?.keyPem,
      servername: 'localhost',
    });
    const outcome = await new Promise<{ ok: true } | { ok: false; error: Error }>((resolve) => {
      socket.once('secureConnect', () => resolve({ ok: true }));
      socket.once('error', (error) => resolve({ ok: false, error }));
    });
    if (!outcome.ok) return { client: outcome, server: undefined };
    // TLS 1.3: the server checks the client certificate after the client thinks it is done; wait for its verdict.
    const verdict = await Promise.race([
      serverSide,
      new Promise<undefined>((resolve) => socket.once('error', () => resolve(undefined))),
      new Promise<undefined>((resolve) => socket.once('close', () => resolve(undefined))),
    ]);
    socket.destroy();
    return { client: outcome, server: verdict };
  } finally {
    srv.close();
  }
}

describe('fleet CA', () => {
  it('issues a leaf naming its holder in CN and URI SAN, with server names', () => {
    const info = certificateInfo(server.certPem);
    expect(info.identity).toEqual({ kind: 'coordinator', id: 'c1' });
    expect(info.subject).toBe('CN=coordinator:c1, O=pgs');
    expect(info.dnsNames).toEqual(['localhost']);
    expect(info.ipAddresses).toEqual(['127.0.0.1']);
    expect(info.isCa).toBe(false);
    expect(info.notAfter.getTime() - now.getTime()).toBe(24 * HOUR);
    expect(verifyIssuedBy(server.certPem, ca.certPem, now)).toBe(true);
    expect(verifyIssuedBy(server.certPem, otherCa.certPem, now)).toBe(false);
    expect(certificateInfo(ca.certPem).isCa).toBe(true);
    expect(ca.fingerprint).toBe(certificateFingerprint(ca.certPem));
    expect(ca.fingerprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('signs a CSR with the identity it is told, not the one the CSR asks for', async () => {
    const key = await generatePrivateKey();
    const csr = await createCsr(identity('host', 'h2'), key);
    const cert = await ca.signCsr(csr, { identity: identity('host', 'h1'), now, lifetimeMs: HOUR });
    expect(identityOfCertificate(cert)).toEqual({ kind: 'host', id: 'h1' });
    // The certificate is for the CSR's key: a TLS client can use it with that key.
    const result = await handshake({ certPem: cert, keyPem: key });
    expect(result.server).toEqual({ authorized: true, peerIdentity: 'host:h1' });
  });

  it("issues a server-only certificate (an instance's) without client authentication", async () => {
    const leaf = await ca.issue({ identity: identity('instance', 'h1'), ipAddresses: ['10.0.0.11'], serverOnly: true, now });
    expect(new X509Certificate(leaf.certPem).keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(certificateInfo(leaf.certPem)).toMatchObject({ identity: { kind: 'instance', id: 'h1' }, ipAddresses: ['10.0.0.11'] });
    const component = await ca.issue({ identity: identity('host', 'h1'), now });
    expect(new X509Certificate(component.certPem).keyUsage?.sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });

  it('refuses a CSR that is not one, and a CA whose key does not match', async () => {
    await expect(ca.signCsr('garbage', { identity: identity('host', 'h1'), now })).rejects.toBeInstanceOf(SecurityError);
    const a = await createFleetCa({ now });
    const b = await createFleetCa({ now });
    await expect(FleetCa.load({ certPem: a.certPem, keyPem: b.keyPem })).rejects.toThrow(/does not match/);
    await expect(FleetCa.load({ certPem: server.certPem, keyPem: server.keyPem })).rejects.toThrow(/not a CA/);
  });

  it('renews at 2/3 of the lifetime and knows when it has expired', async () => {
    const leaf = await ca.issue({ identity: identity('router', 'r1'), now, lifetimeMs: 3 * HOUR });
    const { notBefore, notAfter } = certificateInfo(leaf.certPem);
    const twoThirds = notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3;
    expect(renewalTime(leaf.certPem).getTime()).toBe(twoThirds);
    expect(shouldRenew(leaf.certPem, new Date(twoThirds - 1000))).toBe(false);
    expect(shouldRenew(leaf.certPem, new Date(twoThirds))).toBe(true);
    expect(isExpired(leaf.certPem, now)).toBe(false);
    expect(isExpired(leaf.certPem, new Date(notAfter.getTime() + 1000))).toBe(true);
    expect(verifyIssuedBy(leaf.certPem, ca.certPem, new Date(notAfter.getTime() + 1000))).toBe(false);
  });
});

describe('identityOfCertificate', () => {
  it('refuses a certificate whose CN and URI SAN disagree', async () => {
    // The fleet CA never writes such a certificate; build one by hand.
    const x509 = await import('@peculiar/x509');
    const { webcrypto } = await import('node:crypto');
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as import('node:crypto').webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=host:h1',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://pgs/host/h2' }])],
    });
    expect(identityOfCertificate(cert.toString('pem'))).toBeUndefined();
    const cnOnly = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=router:r9', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
    expect(identityOfCertificate(cnOnly.toString('pem'))).toEqual({ kind: 'router', id: 'r9' });
    const foreign = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=www.example.com',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    });
    expect(identityOfCertificate(foreign.toString('pem'))).toBeUndefined();
  });
});

describe('node tls with CA-issued certificates (mTLS on 127.0.0.1)', () => {
  it('accepts a client certificate from the fleet CA and sees its identity', async () => {
    const client = await ca.issue({ identity: identity('host', 'h1'), now });
    const result = await handshake(client);
    expect(result.client.ok).toBe(true);
    expect(result.server).toEqual({ authorized: true, peerIdentity: 'host:h1' });
  });

  it('refuses a client certificate from another CA', async () => {
    const client = await otherCa.issue({ identity: identity('host', 'h1'), now });
    const result = await handshake(client);
    expect(result.server).toBeUndefined();
    const lenient = await handshake(client, { requireClientCert: false });
    expect(lenient.server).toEqual({ authorized: false, peerIdentity: 'host:h1' });
  });

  it('refuses an expired client certificate', async () => {
    const client = await ca.issue({ identity: identity('host', 'h1'), now: new Date(now.getTime() - 48 * HOUR), lifetimeMs: HOUR });
    expect(isExpired(client.certPem, now)).toBe(true);
    const result = await handshake(client);
    expect(result.server).toBeUndefined();
  });

  it('refuses a client without a certificate when one is required', async () => {
    const result = await handshake(undefined);
    expect(result.server).toBeUndefined();
  });

  it('makes the client refuse a server from another CA', async () => {
    const client = await ca.issue({ identity: identity('host', 'h1'), now });
    const result = await handshake(client, { clientCa: otherCa.certPem });
    expect(result.client.ok).toBe(false);
  });
});
