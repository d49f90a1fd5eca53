/**
 * The router's identity on its link to the coordinator (issue 10): a `router:<id>` certificate from
 * the fleet CA. First start with a join token: read the fleet CA from the coordinator's handshake
 * (trusted only if it matches the token's pin), make a key, join, and keep key + certificate in the
 * identity dir (key mode 0600). Later starts load the files. Operators with their own PKI give the
 * files directly. The certificate is renewed at 2/3 of its lifetime over the still-valid mTLS link.
 * With --insecure there is no certificate: the router names itself in call metadata.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChannelCredentials, Metadata } from '@grpc/grpc-js';
import { EnrollmentService } from '@pgs/proto';
import { createClient } from '@pgs/rpc';
import {
  createCsr,
  fetchPinnedCaCertificate,
  generatePrivateKey,
  identity,
  identityClaimMetadata,
  insecureChannelCredentials,
  joinTokenCaFingerprint,
  mtlsChannelCredentials,
  readTlsFiles,
  startCertificateRenewal,
  tlsChannelCredentials,
  TlsIdentity,
  tokenLabel,
  type Renewal,
  type TlsFiles,
  type TlsMaterial,
} from '@pgs/security';
import { ConfigError, type Logger } from '@pgs/service-kit';

/** How the router reaches the coordinator. */
export interface FleetLink {
  readonly credentials: ChannelCredentials;
  /** Per-call metadata (the identity claim of --insecure); undefined with TLS. */
  readonly metadata: Metadata | undefined;
  stop(): void;
}

/** What connectFleetIdentity needs. */
export interface FleetIdentityOptions {
  routerId: string;
  coordinator: string;
  insecure: boolean;
  joinToken: string | undefined;
  /** Where a joined router keeps ca.pem, cert.pem, key.pem. */
  identityDir: string;
  /** Own PKI: all three files, or none. */
  files: Partial<TlsFiles>;
  log: Logger;
}

const FILES = { caFile: 'ca.pem', certFile: 'cert.pem', keyFile: 'key.pem' } as const;

function dirFiles(dir: string): TlsFiles {
  return { caFile: path.join(dir, FILES.caFile), certFile: path.join(dir, FILES.certFile), keyFile: path.join(dir, FILES.keyFile) };
}

/** Writes the material atomically; the key readable by its owner only. */
function saveMaterial(dir: string, material: TlsMaterial): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = dirFiles(dir);
  const write = (file: string, text: string, mode: number): void => {
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text, { mode });
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  };
  write(files.caFile, material.caPem, 0o644);
  write(files.keyFile, material.keyPem, 0o600);
  write(files.certFile, material.certPem, 0o644);
}

async function join(options: FleetIdentityOptions, token: string): Promise<TlsMaterial> {
  const pin = joinTokenCaFingerprint(token);
  const caPem = options.files.caFile ? fs.readFileSync(options.files.caFile, 'utf8') : pin ? await fetchPinnedCaCertificate(options.coordinator, pin, { now: new Date() }) : undefined;
  if (!caPem) throw new ConfigError('the join token pins no CA; give --coordinator-ca');
  const keyPem = await generatePrivateKey();
  const csrPem = await createCsr(identity('router', options.routerId), keyPem);
  const enroll = createClient(EnrollmentService, options.coordinator, tlsChannelCredentials(caPem));
  try {
    const res = await enroll.join({ token, kind: 'router', componentId: options.routerId, csrPem }, { timeoutMs: 15_000 });
    options.log.info({ token: tokenLabel(token), expiresAt: res.expiresAt }, 'joined the fleet');
    return { caPem: res.caCertificatePem, certPem: res.certificatePem, keyPem };
  } finally {
    enroll.close();
  }
}

/** Loads or obtains the router's certificate and builds its channel credentials (starting renewal). */
export async function connectFleetIdentity(options: FleetIdentityOptions): Promise<FleetLink> {
  const log = options.log.child({ component: 'fleet-identity' });
  if (options.insecure) {
    return { credentials: insecureChannelCredentials(log), metadata: identityClaimMetadata(identity('router', options.routerId)), stop: () => undefined };
  }
  const own = [options.files.certFile, options.files.keyFile];
  if (own.filter(Boolean).length === 1) throw new ConfigError('--identity-cert and --identity-key go together');
  if (options.files.certFile && options.files.keyFile) {
    if (!options.files.caFile) throw new ConfigError('--identity-cert needs --coordinator-ca');
    const tls = new TlsIdentity(readTlsFiles(options.files as TlsFiles));
    log.info({ certFile: options.files.certFile }, 'using the operator\'s own certificate (no renewal here)');
    return { credentials: mtlsChannelCredentials(tls), metadata: undefined, stop: () => undefined };
  }
  const saved = dirFiles(options.identityDir);
  let material: TlsMaterial;
  if (fs.existsSync(saved.certFile) && fs.existsSync(saved.keyFile)) {
    material = readTlsFiles(saved);
    log.info({ dir: options.identityDir }, 'fleet certificate loaded');
  } else {
    if (!options.joinToken) {
      throw new ConfigError(`no fleet certificate in ${options.identityDir}: give a join token (--join-token / PGS_JOIN_TOKEN, from "pgsctl token create --kind router"), own certificate files, or --insecure`);
    }
    material = await join(options, options.joinToken);
    saveMaterial(options.identityDir, material);
  }
  const tls = new TlsIdentity(material);
  const renewClient = createClient(EnrollmentService, options.coordinator, mtlsChannelCredentials(tls));
  const renewal: Renewal = startCertificateRenewal({
    tls,
    identity: identity('router', options.routerId),
    log,
    renew: async (csrPem) => {
      const r = await renewClient.renewCertificate({ csrPem }, { timeoutMs: 15_000 });
      return { certPem: r.certificatePem, caPem: r.caCertificatePem };
    },
    onRenewed: (next) => saveMaterial(options.identityDir, next),
    onExpired: () => log.error({ dir: options.identityDir }, 'fleet certificate expired: delete the identity dir and restart with a new join token'),
  });
  return {
    credentials: mtlsChannelCredentials(tls),
    metadata: undefined,
    stop: () => {
      renewal.stop();
      renewClient.close();
    },
  };
}
