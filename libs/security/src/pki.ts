/**
 * The fleet CA: an ECDSA P-256 key and a self-signed certificate the coordinator creates at its
 * first start (the key is then kept sealed with the KeyRing), and short-lived leaf certificates it
 * issues to components. A leaf names its holder twice: subject CN `host:h1` and URI SAN
 * `spiffe://pgs/host/h1`; servers also get DNS and IP SANs. Components renew at 2/3 of their
 * certificate's lifetime. Certificates are built in-process with @peculiar/x509 on WebCrypto.
 */
// tsyringe, used inside @peculiar/x509, needs a Reflect polyfill loaded before it.
import 'reflect-metadata';
import { createHash, X509Certificate as NodeX509, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SecurityError } from './errors.js';
import { identityToString, identityToUri, parseIdentity, parseIdentityUri, sameIdentity, type Identity } from './identity.js';

// The build has no DOM lib: take WebCrypto's types from node:crypto.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

// Node's webcrypto is the standard Crypto; the cast only bridges the missing DOM lib type.
x509.cryptoProvider.set(webcrypto as never);

const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const ORGANIZATION = 'pgs';
/** Backdating notBefore absorbs small clock differences between coordinator and components. */
const CLOCK_SKEW_MS = 5 * 60_000;

/** Default lifetime of a component certificate: a day, renewed after 16 hours. */
export const DEFAULT_LEAF_LIFETIME_MS = 24 * 3600_000;
/** Default lifetime of the fleet CA: ten years. */
export const DEFAULT_CA_LIFETIME_MS = 10 * 365 * 24 * 3600_000;

/** A certificate and its private key, both PEM (the key PKCS#8, unencrypted: seal it before storing). */
export interface CertifiedKey {
  readonly certPem: string;
  readonly keyPem: string;
}

/** What a leaf certificate is for, and for whom. */
export interface LeafRequest {
  identity: Identity;
  /** DNS names a server is reached by (e.g. `localhost`, `coordinator.example`). */
  dnsNames?: readonly string[];
  /** IP addresses a server is reached by (e.g. `127.0.0.1`). */
  ipAddresses?: readonly string[];
  lifetimeMs?: number;
  /** Server authentication only (no clientAuth): an instance certificate must never log in anywhere. */
  serverOnly?: boolean;
  now: Date;
}

/** What a certificate says, parsed. */
export interface CertificateInfo {
  /** The pgs identity, when the certificate carries a consistent one. */
  identity: Identity | undefined;
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  dnsNames: string[];
  ipAddresses: string[];
  /** SHA-256 of the DER, base64url: what a join token pins for the CA. */
  fingerprint: string;
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // positive INTEGER (RFC 5280 section 4.1.2.2)
  return Buffer.from(bytes).toString('hex');
}

/** PEM text with `\n` line ends and a final newline, so PEMs can be concatenated into chains. */
function normalizePem(pem: string): string {
  return `${pem.replace(/\r\n/g, '\n').trimEnd()}\n`;
}

function toPem(der: ArrayBuffer, label: string): string {
  return normalizePem(x509.PemConverter.encode(der, label));
}

function parseCert(cert: string | Uint8Array | x509.X509Certificate, what = 'certificate'): x509.X509Certificate {
  if (cert instanceof x509.X509Certificate) return cert;
  try {
    return new x509.X509Certificate(typeof cert === 'string' ? cert : new Uint8Array(cert));
  } catch (err) {
    throw new SecurityError('CERTIFICATE_INVALID', `${what} is not a PEM or DER X.509 certificate`, { cause: err });
  }
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKeyPem(keyPem: string): Promise<CryptoKey> {
  try {
    const der = x509.PemConverter.decodeFirst(keyPem);
    return await webcrypto.subtle.importKey('pkcs8', der, KEY_ALG, true, ['sign']);
  } catch (err) {
    throw new SecurityError('CERTIFICATE_INVALID', 'private key is not a PKCS#8 ECDSA P-256 key in PEM', { cause: err });
  }
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** A fresh ECDSA P-256 private key, PKCS#8 PEM (a joining component keeps it; only the CSR travels). */
export async function generatePrivateKey(): Promise<string> {
  return exportKeyPem((await generateKeys()).privateKey);
}

async function publicKeyOf(keyPem: string): Promise<CryptoKey> {
  const priv = await importKeyPem(keyPem);
  // WebCrypto cannot derive a public key from a private one; the JWK of an EC private key carries x and y.
  const { d: _d, key_ops: _ops, ...publicJwk } = await webcrypto.subtle.exportKey('jwk', priv);
  return webcrypto.subtle.importKey('jwk', publicJwk, KEY_ALG, true, ['verify']);
}

/** A PKCS#10 request for `identity` signed with `keyPem` (what a component sends with its join token or renewal). */
export async function createCsr(identity: Identity, keyPem: string): Promise<string> {
  const keys = { privateKey: await importKeyPem(keyPem), publicKey: await publicKeyOf(keyPem) };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${identityToString(identity)}, O=${ORGANIZATION}`,
    keys,
    signingAlgorithm: SIGN_ALG,
  });
  return normalizePem(csr.toString('pem'));
}

/** SHA-256 of a certificate's DER, base64url (43 characters). */
export function certificateFingerprint(cert: string | Uint8Array): string {
  return createHash('sha256')
    .update(Buffer.from(parseCert(cert).rawData))
    .digest('base64url');
}

function sanNames(cert: x509.X509Certificate): { type: string; value: string }[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.items.map((n) => ({ type: n.type, value: n.value })) : [];
}

/**
 * The pgs identity a certificate names: its URI SAN `spiffe://pgs/<kind>/<id>`, else its CN
 * `<kind>:<id>` (certificates from an operator's own PKI may carry only one). Undefined when there is
 * none, or when the two disagree. Only meaningful for a certificate TLS has already verified.
 */
export function identityOfCertificate(cert: string | Uint8Array | x509.X509Certificate): Identity | undefined {
  const parsed = parseCert(cert);
  const uris = sanNames(parsed).filter((n) => n.type === 'url' && n.value.startsWith('spiffe://'));
  const fromUris = uris.map((n) => parseIdentityUri(n.value));
  // Several SPIFFE ids, or one that is not ours, make the certificate ambiguous: refuse it.
  if (uris.length > 1 || fromUris.some((i) => i === undefined)) return undefined;
  const cns = parsed.subjectName.getField('CN');
  const fromCn = cns.length === 1 ? parseIdentity(cns[0]!) : undefined;
  const fromUri = fromUris[0];
  if (fromUri && fromCn && !sameIdentity(fromUri, fromCn)) return undefined;
  return fromUri ?? fromCn;
}

/** Parses a certificate's identity, names, validity and fingerprint. */
export function certificateInfo(cert: string | Uint8Array): CertificateInfo {
  const parsed = parseCert(cert);
  const names = sanNames(parsed);
  return {
    identity: identityOfCertificate(parsed),
    subject: parsed.subject,
    issuer: parsed.issuer,
    serialNumber: parsed.serialNumber,
    notBefore: parsed.notBefore,
    notAfter: parsed.notAfter,
    isCa: parsed.getExtension(x509.BasicConstraintsExtension)?.ca ?? false,
    dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === 'ip').map((n) => n.value),
    fingerprint: createHash('sha256').update(Buffer.from(parsed.rawData)).digest('base64url'),
  };
}

/** True when `now` is outside the certificate's validity period. */
export function isExpired(cert: string | Uint8Array, now: Date): boolean {
  const { notBefore, notAfter } = parseCert(cert);
  return now.getTime() < notBefore.getTime() || now.getTime() > notAfter.getTime();
}

/** The moment a holder should renew: 2/3 into the certificate's lifetime. */
export function renewalTime(cert: string | Uint8Array): Date {
  const { notBefore, notAfter } = parseCert(cert);
  return new Date(notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3);
}

/** True from 2/3 of the certificate's lifetime on (and when it has expired). */
export function shouldRenew(cert: string | Uint8Array, now: Date): boolean {
  return now.getTime() >= renewalTime(cert).getTime();
}

/** True when `ca` signed `cert` and `cert` is valid at `now` (a check for files, TLS does its own). */
export function verifyIssuedBy(cert: string | Uint8Array, ca: string | Uint8Array, now: Date): boolean {
  const leaf = new NodeX509(Buffer.from(parseCert(cert).rawData));
  const issuer = new NodeX509(Buffer.from(parseCert(ca, 'CA certificate').rawData));
  return leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey) && !isExpired(cert, now);
}

/** Creates a fleet CA: a new P-256 key and a self-signed CA certificate. */
export async function createFleetCa(options: { now: Date; commonName?: string; lifetimeMs?: number }): Promise<CertifiedKey> {
  const keys = await generateKeys();
  const notBefore = new Date(options.now.getTime() - CLOCK_SKEW_MS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${options.commonName ?? 'pgs fleet CA'}, O=${ORGANIZATION}`,
    notBefore,
    notAfter: new Date(options.now.getTime() + (options.lifetimeMs ?? DEFAULT_CA_LIFETIME_MS)),
    signingAlgorithm: SIGN_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: normalizePem(cert.toString('pem')), keyPem: await exportKeyPem(keys.privateKey) };
}

/** A loaded fleet CA that issues component certificates. */
export class FleetCa {
  private constructor(
    private readonly cert: x509.X509Certificate,
    private readonly signingKey: CryptoKey,
    /** The CA certificate, PEM: every component trusts it. */
    readonly certPem: string,
  ) {}

  /** Loads a CA from its certificate and (opened) private key; checks they belong together. */
  static async load(ca: CertifiedKey): Promise<FleetCa> {
    const cert = parseCert(ca.certPem, 'CA certificate');
    if (!(cert.getExtension(x509.BasicConstraintsExtension)?.ca ?? false))
      throw new SecurityError('CERTIFICATE_INVALID', 'the CA certificate is not a CA (basicConstraints cA=false)');
    const signingKey = await importKeyPem(ca.keyPem);
    const publicJwk = await webcrypto.subtle.exportKey('jwk', await publicKeyOf(ca.keyPem));
    const certJwk = await webcrypto.subtle.exportKey('jwk', await cert.publicKey.export(KEY_ALG, ['verify']));
    if (publicJwk.x !== certJwk.x || publicJwk.y !== certJwk.y)
      throw new SecurityError('CERTIFICATE_INVALID', 'the CA private key does not match the CA certificate');
    return new FleetCa(cert, signingKey, normalizePem(cert.toString('pem')));
  }

  /** SHA-256 of the CA certificate, base64url: join tokens carry it so a joiner can trust the CA. */
  get fingerprint(): string {
    return certificateFingerprint(this.certPem);
  }

  /** When the CA itself expires. */
  get notAfter(): Date {
    return this.cert.notAfter;
  }

  /** Issues a certificate with a new key (for the coordinator itself, for tests, for `pgsctl` operator certs). */
  async issue(request: LeafRequest): Promise<CertifiedKey> {
    const keys = await generateKeys();
    const certPem = await this.sign(keys.publicKey, request);
    return { certPem, keyPem: await exportKeyPem(keys.privateKey) };
  }

  /**
   * Issues a certificate for the key in a CSR. The identity comes from `request` (the join token or
   * the caller's current certificate), never from the CSR's subject, which the requester chose.
   */
  async signCsr(csrPem: string, request: LeafRequest): Promise<string> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (err) {
      throw new SecurityError('CERTIFICATE_INVALID', 'not a PEM PKCS#10 certificate request', { cause: err });
    }
    if (!(await csr.verify())) throw new SecurityError('CERTIFICATE_INVALID', 'the certificate request is not signed by its own key');
    let publicKey: CryptoKey;
    try {
      publicKey = await csr.publicKey.export(KEY_ALG, ['verify']);
    } catch (err) {
      throw new SecurityError('CERTIFICATE_INVALID', 'the certificate request key is not ECDSA P-256', { cause: err });
    }
    return this.sign(publicKey, request);
  }

  private async sign(publicKey: CryptoKey, request: LeafRequest): Promise<string> {
    const lifetimeMs = request.lifetimeMs ?? DEFAULT_LEAF_LIFETIME_MS;
    if (!(lifetimeMs > 0)) throw new SecurityError('CERTIFICATE_INVALID', `certificate lifetime must be positive, got ${lifetimeMs} ms`);
    const notAfter = new Date(Math.min(request.now.getTime() + lifetimeMs, this.cert.notAfter.getTime()));
    const names: x509.JsonGeneralNames = [
      { type: 'url', value: identityToUri(request.identity) },
      ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(request.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `CN=${identityToString(request.identity)}, O=${ORGANIZATION}`,
      issuer: this.cert.subject,
      notBefore: new Date(request.now.getTime() - CLOCK_SKEW_MS),
      notAfter,
      signingAlgorithm: SIGN_ALG,
      publicKey,
      signingKey: this.signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        // Every component is a TLS client of the coordinator; the coordinator is also a server.
        new x509.ExtendedKeyUsageExtension(
          request.serverOnly ? [x509.ExtendedKeyUsage.serverAuth] : [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth],
        ),
        new x509.SubjectAlternativeNameExtension(names),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert.publicKey),
      ],
    });
    return normalizePem(cert.toString('pem'));
  }
}
