/**
 * Join bootstrap: a component that holds only a join token (which pins the fleet CA's SHA-256,
 * see tokens.ts) learns the CA certificate from the coordinator's own TLS handshake and trusts it only
 * if its fingerprint matches the pin and it signed the coordinator's certificate. This is how
 * kubeadm's `--discovery-token-ca-cert-hash` works: no CA file has to be copied to a new host.
 * The coordinator therefore serves its certificate chain with the CA in it (leaf PEM + CA PEM).
 */
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { SecurityError } from './errors.js';
import { certificateFingerprint, certificateInfo, verifyIssuedBy } from './pki.js';

/** The chain a TLS peer sent, leaf first (node links it through issuerCertificate). */
function peerChain(socket: tls.TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert && cert.raw && !chain.some((c) => c.equals(cert!.raw))) {
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * Connects to `address` (host:port), reads the server's chain and returns the CA certificate (PEM)
 * whose fingerprint is `fingerprint`, after checking it is a CA, it signed the server's certificate,
 * and both are valid at `now`. Throws SecurityError otherwise: never trust a CA that does not match.
 */
export async function fetchPinnedCaCertificate(address: string, fingerprint: string, options: { now: Date; timeoutMs?: number }): Promise<string> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port <= 0) throw new SecurityError('TLS_MATERIAL_INVALID', `coordinator address "${address}" is not host:port`);
  const chain = await new Promise<Buffer[]>((resolve, reject) => {
    // Unverified on purpose: we only read the chain here and verify it against the pin below.
    const socket = tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new SecurityError('TLS_MATERIAL_INVALID', `no TLS handshake with ${address} within ${options.timeoutMs ?? 10_000} ms`));
    }, options.timeoutMs ?? 10_000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const certs = peerChain(socket);
      socket.destroy();
      resolve(certs);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new SecurityError('TLS_MATERIAL_INVALID', `TLS handshake with ${address} failed: ${err.message}`, { cause: err }));
    });
  });
  const leaf = chain[0];
  if (!leaf) throw new SecurityError('CERTIFICATE_INVALID', `${address} sent no certificate`);
  const ca = chain.find((der) => certificateFingerprint(der) === fingerprint);
  if (!ca)
    throw new SecurityError(
      'CERTIFICATE_INVALID',
      `${address} did not present the pinned fleet CA (is the join token for this fleet, and does the coordinator send its CA in its chain?)`,
    );
  if (!certificateInfo(ca).isCa) throw new SecurityError('CERTIFICATE_INVALID', 'the pinned certificate is not a CA');
  if (!verifyIssuedBy(leaf, ca, options.now))
    throw new SecurityError('CERTIFICATE_INVALID', `the pinned fleet CA did not sign ${address}'s certificate, or it is not valid now`);
  return new X509Certificate(ca).toString().replace(/\r\n/g, '\n');
}
