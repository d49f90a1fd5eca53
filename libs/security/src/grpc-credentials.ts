/**
 * grpc-js credentials for the fleet, built in one place: mutual TLS from PEM files or in-memory
 * PEMs, hot certificate renewal (a TlsIdentity is a grpc-js CertificateProvider: `update()` makes new
 * connections use the new certificate without restarting the server or channel), bearer tokens for
 * operators, and the explicit `--insecure` variants that warn on every start. On the server side,
 * the peer's identity is read from the call's verified TLS certificate.
 */
import fs from 'node:fs';
import tls from 'node:tls';
import { ChannelCredentials, credentials as grpcCredentials, experimental, Metadata, ServerCredentials } from '@grpc/grpc-js';
import { Code, RpcError, type CallContext } from '@pgs/rpc';
import type { Logger } from '@pgs/service-kit';
import { SecurityError } from './errors.js';
import { identityToString, type Identity, type IdentityKind } from './identity.js';
import { checkKeyFileMode } from './key-source.js';
import { identityOfPeerCertificate } from './peer-identity.js';
import { identityOfCertificate } from './pki.js';
import type { Decision } from './rbac.js';
import { parseBearer } from './tokens.js';

type CertificateProvider = experimental.CertificateProvider;
type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** The PEMs a TLS endpoint needs: the CA it trusts, its certificate (chain) and its private key. */
export interface TlsMaterial {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** Paths of TLS files (an operator's own PKI, or what a component saved after joining). */
export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

function readPem(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new SecurityError('TLS_MATERIAL_INVALID', `${what} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

/** Reads CA, certificate and key PEM files; the key file must be mode 0600 (or stricter). */
export function readTlsFiles(files: TlsFiles): TlsMaterial {
  const caPem = readPem(files.caFile, 'CA file');
  const certPem = readPem(files.certFile, 'certificate file');
  checkKeyFileMode(files.keyFile);
  const keyPem = readPem(files.keyFile, 'key file');
  return checkTlsMaterial({ caPem, certPem, keyPem });
}

/** Checks that the PEMs parse and the key belongs to the certificate (a clear error now, not a failed handshake later). */
export function checkTlsMaterial(material: TlsMaterial): TlsMaterial {
  try {
    tls.createSecureContext({ ca: material.caPem, cert: material.certPem, key: material.keyPem });
  } catch (err) {
    throw new SecurityError('TLS_MATERIAL_INVALID', `TLS certificate, key or CA unusable: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return material;
}

/**
 * A component's current TLS identity. It feeds grpc-js servers and channels; `update()` (after a
 * renewal) applies to every new connection, existing ones keep their handshake.
 */
export class TlsIdentity implements CertificateProvider {
  private current: TlsMaterial;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  constructor(material: TlsMaterial) {
    this.current = checkTlsMaterial(material);
  }

  /** What is in use now. */
  get material(): TlsMaterial {
    return this.current;
  }

  /** Swaps in a renewed certificate (and key, and CA); throws without changing anything when unusable. */
  update(material: TlsMaterial): void {
    this.current = checkTlsMaterial(material);
    for (const listener of this.caListeners) listener(this.caUpdate());
    for (const listener of this.identityListeners) listener(this.identityUpdate());
  }

  /**
   * The first update goes out after the caller returns: grpc-js registers its server watcher only
   * after adding our listeners, so a synchronous update would be lost and the port would drop every
   * connection ("unloaded credentials").
   */
  private deliverLater(deliver: () => void): void {
    queueMicrotask(deliver);
  }

  private caUpdate(): experimental.CaCertificateUpdate {
    return { caCertificate: Buffer.from(this.current.caPem) };
  }

  private identityUpdate(): experimental.IdentityCertificateUpdate {
    return { certificate: Buffer.from(this.current.certPem), privateKey: Buffer.from(this.current.keyPem) };
  }

  /** grpc-js CertificateProvider. */
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    this.deliverLater(() => this.caListeners.has(listener) && listener(this.caUpdate()));
  }

  /** grpc-js CertificateProvider. */
  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  /** grpc-js CertificateProvider. */
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    this.deliverLater(() => this.identityListeners.has(listener) && listener(this.identityUpdate()));
  }

  /** grpc-js CertificateProvider. */
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

function asIdentity(source: TlsIdentity | TlsMaterial): TlsIdentity {
  return source instanceof TlsIdentity ? source : new TlsIdentity(source);
}

/**
 * Server credentials for mutual TLS. `clientCertificates: 'require'` refuses any connection without a
 * certificate from the CA at the handshake; `'optional'` (the coordinator's one port, where pgsctl may
 * come with a bearer token instead) asks for one and lets each call decide: peerIdentity() is
 * undefined unless the certificate verified.
 */
export function mtlsServerCredentials(source: TlsIdentity | TlsMaterial, options: { clientCertificates: 'require' | 'optional' }): ServerCredentials {
  const id = asIdentity(source);
  return experimental.createCertificateProviderServerCredentials(id, id, options.clientCertificates === 'require');
}

/**
 * The server-identity check for fleet clients: the usual host-name check against the certificate's
 * DNS/IP SANs, and the certificate must name a `coordinator:` (or the given kind). The identity is
 * read from Node's parse of the certificate (peer-identity.ts), so a client never loads the X.509
 * library for it.
 */
function serverCheck(kind: IdentityKind | undefined): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const hostError = tls.checkServerIdentity(host, cert);
    if (hostError) return hostError;
    if (!kind) return undefined;
    const who = identityOfPeerCertificate(cert);
    return who?.kind === kind
      ? undefined
      : new SecurityError('CERTIFICATE_INVALID', `server certificate names ${who ? identityToString(who) : 'no pgs identity'}, expected a ${kind}`);
  };
}

/** Channel credentials for mutual TLS: present our certificate, trust only the fleet CA, check the server is a coordinator. */
export function mtlsChannelCredentials(source: TlsIdentity | TlsMaterial, options: { serverKind?: IdentityKind | null } = {}): ChannelCredentials {
  const id = asIdentity(source);
  const kind = options.serverKind === null ? undefined : (options.serverKind ?? 'coordinator');
  return experimental.createCertificateProviderChannelCredentials(id, id, { checkServerIdentity: serverCheck(kind) });
}

/** Channel credentials that verify the server against `caPem` but present no certificate (pgsctl with a token, a joiner). */
export function tlsChannelCredentials(caPem: string, options: { serverKind?: IdentityKind | null } = {}): ChannelCredentials {
  const kind = options.serverKind === null ? undefined : (options.serverKind ?? 'coordinator');
  return ChannelCredentials.createSsl(Buffer.from(caPem), null, null, { checkServerIdentity: serverCheck(kind) });
}

/** Adds `authorization: Bearer <token>` to every call on a TLS channel (grpc-js refuses call credentials on plaintext). */
export function withBearerToken(channel: ChannelCredentials, token: string): ChannelCredentials {
  return channel.compose(
    grpcCredentials.createFromMetadataGenerator((_params, callback) => {
      const md = new Metadata();
      md.set('authorization', `Bearer ${token}`);
      callback(null, md);
    }),
  );
}

/** Per-call metadata carrying a bearer token (for `--insecure` channels, where call credentials are refused). */
export function bearerMetadata(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

const INSECURE_WARNING = 'gRPC without TLS (--insecure): anyone on the network can read and forge fleet traffic; never use it outside a test machine';

/** Plaintext server credentials, only behind an explicit --insecure flag: logs a warning each time. */
export function insecureServerCredentials(log: Logger): ServerCredentials {
  log.warn({ insecure: true }, INSECURE_WARNING);
  return ServerCredentials.createInsecure();
}

/** Plaintext channel credentials, only behind an explicit --insecure flag: logs a warning each time. */
export function insecureChannelCredentials(log: Logger): ChannelCredentials {
  log.warn({ insecure: true }, INSECURE_WARNING);
  return ChannelCredentials.createInsecure();
}

/** The pgs identity of the call's peer, from its verified TLS certificate; undefined without one. */
export function peerIdentity(ctx: Pick<CallContext, 'peerCertificate'>): Identity | undefined {
  // grpc-js hands over the certificate only when the TLS socket verified it against our CA.
  const cert = ctx.peerCertificate as Partial<tls.PeerCertificate> | undefined;
  if (!cert || !Buffer.isBuffer(cert.raw)) return undefined;
  return identityOfCertificate(cert.raw);
}

/** The bearer token of the call (`authorization` metadata), if any. */
export function bearerToken(ctx: Pick<CallContext, 'metadata'>): string | undefined {
  const values = ctx.metadata.get('authorization');
  if (values.length !== 1) return undefined;
  const value = values[0];
  return parseBearer(typeof value === 'string' ? value : value?.toString('utf8'));
}

/** The peer's identity, which must be of `kind`; throws RpcError UNAUTHENTICATED / PERMISSION_DENIED. */
export function requirePeer(ctx: Pick<CallContext, 'peerCertificate'>, kind: IdentityKind): Identity {
  const who = peerIdentity(ctx);
  if (!who) throw new RpcError(Code.UNAUTHENTICATED, `a ${kind} certificate from the fleet CA is required`, { errorCode: 'UNAUTHENTICATED' });
  if (who.kind !== kind) throw new RpcError(Code.PERMISSION_DENIED, `${identityToString(who)} is not a ${kind}`, { errorCode: 'PERMISSION_DENIED' });
  return who;
}

/** The RpcError for a refused decision (throw it from the service's authorize hook). */
export function decisionError(decision: Extract<Decision, { allow: false }>): RpcError {
  const code = decision.status === 'UNAUTHENTICATED' ? Code.UNAUTHENTICATED : Code.PERMISSION_DENIED;
  return new RpcError(code, decision.reason, { errorCode: decision.status });
}
