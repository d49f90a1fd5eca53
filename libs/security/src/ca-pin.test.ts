import { once } from 'node:events';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchPinnedCaCertificate } from './ca-pin.js';
import { identity } from './identity.js';
import { createFleetCa, FleetCa, type CertifiedKey } from './pki.js';

const now = new Date();
let ca: FleetCa;
let leaf: CertifiedKey;
const servers: tls.Server[] = [];

async function serve(certChainPem: string, keyPem: string): Promise<string> {
  const server = tls.createServer({ cert: certChainPem, key: keyPem }, (socket) => socket.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

beforeAll(async () => {
  ca = await FleetCa.load(await createFleetCa({ now }));
  leaf = await ca.issue({ identity: identity('coordinator', 'c1'), ipAddresses: ['127.0.0.1'], now });
});
afterAll(() => {
  for (const s of servers) s.close();
});

describe('fetchPinnedCaCertificate', () => {
  it('returns the CA the pin names, from the server chain', async () => {
    const address = await serve(leaf.certPem + ca.certPem, leaf.keyPem);
    const pem = await fetchPinnedCaCertificate(address, ca.fingerprint, { now });
    expect(pem).toBe(ca.certPem);
  });

  it('refuses a server whose chain lacks the pinned CA', async () => {
    const other = await FleetCa.load(await createFleetCa({ now }));
    const otherLeaf = await other.issue({ identity: identity('coordinator', 'c1'), ipAddresses: ['127.0.0.1'], now });
    const impostor = await serve(otherLeaf.certPem + other.certPem, otherLeaf.keyPem);
    await expect(fetchPinnedCaCertificate(impostor, ca.fingerprint, { now })).rejects.toThrow(/did not present the pinned fleet CA/);
    const leafOnly = await serve(leaf.certPem, leaf.keyPem);
    await expect(fetchPinnedCaCertificate(leafOnly, ca.fingerprint, { now })).rejects.toThrow(/did not present the pinned fleet CA/);
  });

  it('refuses a pinned CA appended to a chain it did not sign', async () => {
    const other = await FleetCa.load(await createFleetCa({ now }));
    const otherLeaf = await other.issue({ identity: identity('coordinator', 'c1'), ipAddresses: ['127.0.0.1'], now });
    // The impostor appends the real (public) CA to its own chain: the pin matches nothing it signed.
    const impostor = await serve(otherLeaf.certPem + ca.certPem, otherLeaf.keyPem);
    await expect(fetchPinnedCaCertificate(impostor, ca.fingerprint, { now })).rejects.toThrow(/did not present the pinned fleet CA|did not sign/);
  });

  it('refuses a forged leaf that names the pinned CA as issuer but is signed by another key', async () => {
    const x509 = await import('@peculiar/x509');
    const { webcrypto } = await import('node:crypto');
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as import('node:crypto').webcrypto.CryptoKeyPair;
    const realCa = new x509.X509Certificate(ca.certPem);
    // Same issuer name and authority key id as the real CA, so TLS links the chain; only the signature is wrong.
    const forged = await x509.X509CertificateGenerator.create({
      subject: 'CN=coordinator:c1, O=pgs',
      issuer: realCa.subject,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 3600_000),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm: alg,
      extensions: [
        await x509.AuthorityKeyIdentifierExtension.create(realCa.publicKey),
        new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }]),
      ],
    } as never);
    const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    const impostor = await serve(`${forged.toString('pem')}\n${ca.certPem}`, keyPem);
    await expect(fetchPinnedCaCertificate(impostor, ca.fingerprint, { now })).rejects.toThrow(/did not sign/);
  });

  it('reports an unreachable coordinator', async () => {
    const address = await serve(leaf.certPem + ca.certPem, leaf.keyPem);
    servers.pop()!.close();
    await expect(fetchPinnedCaCertificate(address, ca.fingerprint, { now, timeoutMs: 2000 })).rejects.toThrow(/TLS handshake with .* failed|no TLS handshake/);
  });
});
