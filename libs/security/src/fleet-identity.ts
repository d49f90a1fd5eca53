/**
 * A host agent's or router's identity on its link to the coordinator: a `host:<id>` or
 * `router:<id>` certificate from the fleet CA. First start with a join token: read the fleet CA from
 * the coordinator's handshake (trusted only if it matches the token's pin), make a key, join, and
 * keep key + certificate in the identity dir (key mode 0600). Later starts load the files. Operators
 * with their own PKI give the files directly. The certificate is renewed at 2/3 of its lifetime over
 * the still-valid mTLS link. With --insecure there is no certificate: the component names itself in
 * call metadata (the coordinator accepts such claims only when it runs --insecure too).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChannelCredentials, Metadata } from '@grpc/grpc-js';
import { EnrollmentService } from '@pgs/proto';
import { Code, createLeaderClient, splitAddresses } from '@pgs/rpc';
import { ConfigError, type Logger } from '@pgs/service-kit';
import { fetchPinnedCaCertificate } from './ca-pin.js';
import {
  insecureChannelCredentials,
  mtlsChannelCredentials,
  readTlsFiles,
  TlsIdentity,
  tlsChannelCredentials,
  type TlsFiles,
  type TlsMaterial,
} from './grpc-credentials.js';
import { identityClaimMetadata } from './guard.js';
import { identity, identityToString, sameIdentity, type Identity } from './identity.js';
import { createCsr, generatePrivateKey, identityOfCertificate, isExpired } from './pki.js';
import { startCertificateRenewal, type Renewal } from './renewal.js';
import { joinTokenCaFingerprint, tokenLabel } from './tokens.js';

/** How a component reaches the coordinator. */
export interface FleetLink {
  readonly credentials: ChannelCredentials;
  /** Per-call metadata (the identity claim of --insecure); undefined with TLS. */
  readonly metadata: Metadata | undefined;
  /** Who the link speaks for. */
  readonly identity: Identity;
  /** The CA the fleet's certificates chain to, as held now (renewals may bring a new one); undefined with --insecure. */
  caPem(): string | undefined;
  /** Stops renewing (and closes the renewal client). */
  stop(): void;
}

/** Which component this is: a host agent names its host id, a router its router id. */
export type FleetComponent = { hostId: string; routerId?: undefined } | { routerId: string; hostId?: undefined };

/** What connectFleetIdentity needs. */
export type FleetIdentityOptions = FleetComponent & {
  coordinator: string;
  insecure: boolean;
  joinToken: string | undefined;
  /** Where a joined component keeps ca.pem, cert.pem, key.pem. */
  identityDir: string;
  /** Own PKI (--coordinator-ca, --identity-cert, --identity-key): the certificate and key go together. */
  files: Partial<TlsFiles>;
  log: Logger;
  /** Lifetime of each join / renewal call. Default 15 s. */
  callTimeoutMs?: number;
};

const FILE_NAMES = { caFile: 'ca.pem', certFile: 'cert.pem', keyFile: 'key.pem' } as const;

/** The component's identity from its options. */
export function fleetComponentIdentity(component: FleetComponent): Identity {
  return component.hostId !== undefined ? identity('host', component.hostId) : identity('router', component.routerId);
}

/** The files a joined component keeps in its identity dir. */
export function identityDirFiles(dir: string): TlsFiles {
  return { caFile: path.join(dir, FILE_NAMES.caFile), certFile: path.join(dir, FILE_NAMES.certFile), keyFile: path.join(dir, FILE_NAMES.keyFile) };
}

/** Writes the material atomically (rename), the key readable by its owner only. */
export function saveIdentityMaterial(dir: string, material: TlsMaterial): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = identityDirFiles(dir);
  const write = (file: string, text: string, mode: number): void => {
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text, { mode });
    // writeFileSync's mode is filtered by the umask and ignored for an existing file.
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  };
  write(files.caFile, material.caPem, 0o644);
  write(files.keyFile, material.keyPem, 0o600);
  write(files.certFile, material.certPem, 0o644);
}

/** A certificate that names someone else would be refused by the coordinator anyway: say so at start. */
function checkNames(material: TlsMaterial, expected: Identity, source: string): void {
  const named = identityOfCertificate(material.certPem);
  if (!sameIdentity(named, expected)) {
    throw new ConfigError(`${source} names ${named ? identityToString(named) : 'no fleet identity'}, not ${identityToString(expected)}`);
  }
}

/**
 * The pinned CA from the first coordinator that answers (several coordinators share one fleet CA,
 * and any of them may be down); the last failure when none does.
 */
async function pinnedCaFromAny(addresses: readonly string[], pin: string): Promise<string> {
  let last: unknown = new ConfigError('no coordinator address given');
  for (const address of addresses) {
    try {
      return await fetchPinnedCaCertificate(address, pin, { now: new Date() });
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

/** How long a join waits for a coordinator that leads and answers. */
const JOIN_WAIT_MS = 60_000;
/** Answers that mean "not now" rather than "no": no leader, a leader stepping down, a slow one. */
const JOIN_RETRY_CODES: ReadonlySet<number> = new Set([Code.UNAVAILABLE, Code.CANCELLED, Code.DEADLINE_EXCEEDED]);

async function join(options: FleetIdentityOptions, who: Identity, token: string): Promise<TlsMaterial> {
  const pin = joinTokenCaFingerprint(token);
  const caPem = options.files.caFile
    ? fs.readFileSync(options.files.caFile, 'utf8')
    : pin
      ? await pinnedCaFromAny(splitAddresses(options.coordinator), pin)
      : undefined;
  if (!caPem) throw new ConfigError('the join token pins no CA; give --coordinator-ca');
  const keyPem = await generatePrivateKey();
  const csrPem = await createCsr(who, keyPem);
  // Joining is a start-up step: a component started while the coordinators elect a leader (or while
  // a loaded machine makes leadership change hands, which cancels calls in flight at the old one)
  // waits for one, up to JOIN_WAIT_MS, instead of exiting.
  const enroll = createLeaderClient(EnrollmentService, splitAddresses(options.coordinator), tlsChannelCredentials(caPem));
  const deadline = Date.now() + JOIN_WAIT_MS;
  try {
    for (;;) {
      try {
        const res = await enroll.join({ token, kind: who.kind, componentId: who.id, csrPem }, { timeoutMs: options.callTimeoutMs ?? 15_000 });
        options.log.info({ token: tokenLabel(token), identity: identityToString(who), expiresAt: res.expiresAt }, 'joined the fleet');
        return { caPem: res.caCertificatePem, certPem: res.certificatePem, keyPem };
      } catch (err) {
        if (!JOIN_RETRY_CODES.has((err as { code?: number }).code ?? -1) || Date.now() >= deadline) throw err;
        options.log.warn({ err: (err as Error).message }, 'no coordinator could take the join yet (a leader is being chosen?); trying again');
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  } finally {
    enroll.close();
  }
}

/** The saved certificate, a new one from the join token, or a ConfigError saying what to give. */
async function savedOrJoined(options: FleetIdentityOptions, who: Identity, log: Logger): Promise<TlsMaterial> {
  const saved = identityDirFiles(options.identityDir);
  const hasSaved = fs.existsSync(saved.certFile) && fs.existsSync(saved.keyFile);
  if (hasSaved) {
    const material = readTlsFiles(saved);
    checkNames(material, who, `the certificate in ${options.identityDir}`);
    if (!isExpired(material.certPem, new Date())) {
      log.info({ dir: options.identityDir }, 'fleet certificate loaded');
      return material;
    }
    // Off for longer than a certificate lives: renewal cannot help, only a new join token.
    if (!options.joinToken)
      throw new ConfigError(
        `the fleet certificate in ${options.identityDir} has expired: start with a new join token (--join-token / PGS_JOIN_TOKEN, from "pgsctl token create --kind ${who.kind} --id ${who.id}")`,
      );
    log.warn({ dir: options.identityDir }, 'fleet certificate expired: joining again with the join token');
  } else if (!options.joinToken) {
    throw new ConfigError(
      `no fleet certificate in ${options.identityDir}: give a join token (--join-token / PGS_JOIN_TOKEN, from "pgsctl token create --kind ${who.kind} --id ${who.id}"), own certificate files, or --insecure`,
    );
  }
  const material = await join(options, who, options.joinToken);
  saveIdentityMaterial(options.identityDir, material);
  return material;
}

/** Loads or obtains the component's certificate and builds its channel credentials (starting renewal). */
export async function connectFleetIdentity(options: FleetIdentityOptions): Promise<FleetLink> {
  const who = fleetComponentIdentity(options);
  const log = options.log.child({ component: 'fleet-identity' });
  if (options.insecure) {
    return { credentials: insecureChannelCredentials(log), metadata: identityClaimMetadata(who), identity: who, caPem: () => undefined, stop: () => undefined };
  }
  const { caFile, certFile, keyFile } = options.files;
  if (Boolean(certFile) !== Boolean(keyFile)) throw new ConfigError('--identity-cert and --identity-key go together');
  if (certFile && keyFile) {
    if (!caFile) throw new ConfigError('--identity-cert needs --coordinator-ca');
    const material = readTlsFiles({ caFile, certFile, keyFile });
    checkNames(material, who, `--identity-cert ${certFile}`);
    log.info({ certFile }, "using the operator's own certificate (no renewal here)");
    return {
      credentials: mtlsChannelCredentials(new TlsIdentity(material)),
      metadata: undefined,
      identity: who,
      caPem: () => material.caPem,
      stop: () => undefined,
    };
  }
  const tls = new TlsIdentity(await savedOrJoined(options, who, log));
  const renewClient = createLeaderClient(EnrollmentService, splitAddresses(options.coordinator), mtlsChannelCredentials(tls));
  const renewal: Renewal = startCertificateRenewal({
    tls,
    identity: who,
    log,
    renew: async (csrPem) => {
      const r = await renewClient.renewCertificate({ csrPem }, { timeoutMs: options.callTimeoutMs ?? 15_000 });
      return { certPem: r.certificatePem, caPem: r.caCertificatePem };
    },
    onRenewed: (next) => saveIdentityMaterial(options.identityDir, next),
    onExpired: () => log.error({ dir: options.identityDir }, 'fleet certificate expired: delete the identity dir and restart with a new join token'),
  });
  return {
    credentials: mtlsChannelCredentials(tls),
    metadata: undefined,
    identity: who,
    caPem: () => tls.material.caPem,
    stop: () => {
      renewal.stop();
      renewClient.close();
    },
  };
}
