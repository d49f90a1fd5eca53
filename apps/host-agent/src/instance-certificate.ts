/**
 * The server certificate of this host's PostgreSQL instances: one key and one certificate from the
 * fleet CA for every instance on the host, naming the host's address (IP SAN) and
 * `instance:<host-id>` (an identity no coordinator service accepts, server authentication only, so
 * a key read out of an instance cannot act as the agent). Routers and standbys verify it against
 * the fleet CA with verify-full semantics on that address.
 *
 * The key never leaves the host: the agent makes it and sends a CSR over its mTLS link
 * (IssueInstanceCertificate). The files live in <data-root>/instance-tls/, readable by postgres
 * (the key 0600, owned by the postgres OS user, as PostgreSQL demands). A valid saved certificate
 * is used at once after a restart; otherwise the agent asks, retrying in the background while the
 * coordinator is away. Renewed at 2/3 of its lifetime like the agent's own certificate; running
 * instances then reload (PostgreSQL re-reads its SSL files on SIGHUP).
 */
import fs from 'node:fs';
import path from 'node:path';
import { EnrollmentService } from '@pgs/proto';
import { Code, createLeaderClient, RpcError, splitAddresses } from '@pgs/rpc';
import {
  certificateInfo,
  createCsr,
  generatePrivateKey,
  identity,
  isExpired,
  startCertificateRenewal,
  TlsIdentity,
  verifyIssuedBy,
  type FleetLink,
  type Renewal,
  type TlsMaterial,
} from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import { jitteredBackoff } from './backoff.js';
import { messageOf } from './errors.js';
import type { OsUser } from './runtime/os-user.js';
import type { InstanceTlsFiles } from './runtime/runtime.js';

/** What the instance certificate needs. */
export interface InstanceCertificateOptions {
  link: FleetLink;
  /** The coordinator's gRPC address. */
  coordinator: string;
  hostId: string;
  /** The host's advertised address: what the certificate names. */
  address: string;
  dataRoot: string;
  /** The OS user postgres runs as (owner of the key); undefined: the agent's own user. */
  owner: OsUser | undefined;
  log: Logger;
  /** Called once the files first exist (instances then serve TLS). */
  onAvailable(files: InstanceTlsFiles): void;
  /** Called after each renewal (running instances reload their SSL files). */
  onRenewed(): void;
  /** Lifetime of each call. Default 15 s. */
  callTimeoutMs?: number;
}

/** A running instance certificate. */
export interface InstanceCertificate {
  /** The files, once there is a certificate; undefined until then. */
  files(): InstanceTlsFiles | undefined;
  stop(): void;
}

/** Where the instances' certificate, key and the fleet CA are kept. */
export function instanceTlsFiles(dataRoot: string): InstanceTlsFiles {
  const dir = path.join(dataRoot, 'instance-tls');
  return { dir, certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key'), caFile: path.join(dir, 'ca.crt') };
}

/** Writes one file atomically (rename) with its mode and owner. */
function writeFile(file: string, text: string, mode: number, owner: OsUser | undefined): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode });
  // writeFileSync's mode is filtered by the umask.
  fs.chmodSync(tmp, mode);
  if (owner) fs.chownSync(tmp, owner.uid, owner.gid);
  fs.renameSync(tmp, file);
}

/** Writes key, certificate and CA (the key first: a certificate never names a key that is not there yet). */
export function saveInstanceTls(files: InstanceTlsFiles, material: TlsMaterial, owner: OsUser | undefined): void {
  // postgres (and the tools run as postgres) must traverse the directory; only the key is secret.
  fs.mkdirSync(files.dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(files.dir, 0o755);
  writeFile(files.keyFile, material.keyPem, 0o600, owner);
  writeFile(files.certFile, material.certPem, 0o644, owner);
  writeFile(files.caFile, material.caPem, 0o644, owner);
}

/** The saved material when it is complete, unexpired, issued by `caPem` and names `address`. */
function savedMaterial(files: InstanceTlsFiles, caPem: string, address: string, log: Logger): TlsMaterial | undefined {
  if (![files.certFile, files.keyFile, files.caFile].every((f) => fs.existsSync(f))) return undefined;
  try {
    const material: TlsMaterial = { certPem: fs.readFileSync(files.certFile, 'utf8'), keyPem: fs.readFileSync(files.keyFile, 'utf8'), caPem };
    const now = new Date();
    if (isExpired(material.certPem, now)) return undefined;
    if (!verifyIssuedBy(material.certPem, caPem, now)) return undefined;
    if (!certificateInfo(material.certPem).ipAddresses.includes(address)) return undefined;
    return new TlsIdentity(material).material;
  } catch (err) {
    log.warn({ err, dir: files.dir }, 'saved instance certificate unusable; asking for a new one');
    return undefined;
  }
}

/**
 * Loads the saved instance certificate or asks the coordinator for one, then keeps it renewed.
 * Undefined when this agent cannot have one (--insecure: no fleet CA to trust).
 */
export async function startInstanceCertificate(o: InstanceCertificateOptions): Promise<InstanceCertificate | undefined> {
  const log = o.log.child({ component: 'instance-certificate' });
  const caPem = o.link.caPem();
  if (caPem === undefined) {
    log.warn({}, 'no fleet CA (--insecure): instances serve no TLS; routers and standbys reach them in plaintext');
    return undefined;
  }
  const files = instanceTlsFiles(o.dataRoot);
  const who = identity('instance', o.hostId);
  const client = createLeaderClient(EnrollmentService, splitAddresses(o.coordinator), o.link.credentials);
  const timeoutMs = o.callTimeoutMs ?? 15_000;
  const issue = async (csrPem: string): Promise<{ certPem: string; caPem: string }> => {
    const r = await client.issueInstanceCertificate({ csrPem, address: o.address }, { timeoutMs });
    return { certPem: r.certificatePem, caPem: r.caCertificatePem };
  };
  let available: InstanceTlsFiles | undefined;
  let renewal: Renewal | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;

  const keepRenewed = (material: TlsMaterial): void => {
    renewal = startCertificateRenewal({
      tls: new TlsIdentity(material),
      identity: who,
      log,
      renew: issue,
      onRenewed: (next) => {
        saveInstanceTls(files, next, o.owner);
        o.onRenewed();
      },
      onExpired: () =>
        log.error({ dir: files.dir }, 'instance certificate expired: routers and standbys refuse these instances until the coordinator issues a new one'),
    });
  };

  const saved = savedMaterial(files, caPem, o.address, log);
  if (saved) {
    available = files;
    log.info({ dir: files.dir, notAfter: certificateInfo(saved.certPem).notAfter.toISOString() }, 'instance certificate loaded');
    keepRenewed(saved);
  } else {
    const obtain = async (attempt: number): Promise<void> => {
      if (stopped) return;
      try {
        const keyPem = await generatePrivateKey();
        const signed = await issue(await createCsr(who, keyPem));
        const material: TlsMaterial = { certPem: signed.certPem, keyPem, caPem: signed.caPem };
        saveInstanceTls(files, material, o.owner);
        available = files;
        log.info({ dir: files.dir, address: o.address, notAfter: certificateInfo(signed.certPem).notAfter.toISOString() }, 'instance certificate issued');
        if (stopped) return;
        keepRenewed(material);
        o.onAvailable(files);
      } catch (err) {
        if (stopped) return;
        // A coordinator with its own PKI has no fleet CA to sign with: asking again will not help.
        if (err instanceof RpcError && err.code === Code.FAILED_PRECONDITION) {
          log.warn({ reason: messageOf(err) }, 'the coordinator issues no instance certificates: instances serve no TLS');
          return;
        }
        const delayMs = jitteredBackoff(attempt, 1000, 60_000);
        log.warn({ err, retryInMs: delayMs }, 'instance certificate not issued yet; instances serve no TLS until it is');
        retry = setTimeout(() => void obtain(attempt + 1), delayMs);
        retry.unref();
      }
    };
    await obtain(1);
  }
  return {
    files: () => available,
    stop: () => {
      stopped = true;
      clearTimeout(retry);
      renewal?.stop();
      client.close();
    },
  };
}
