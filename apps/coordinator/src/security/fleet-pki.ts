/**
 * The coordinator's side of the fleet PKI: the fleet CA, created at the first start with
 * its key sealed in the store, and the coordinator's own server certificate issued from it (renewed
 * at 2/3 of its lifetime without a restart). Operators with their own PKI give --tls-ca/--tls-cert/
 * --tls-key instead; then there is no fleet CA here and components bring certificates from that PKI.
 * The CA certificate is also written to `<data-dir>/ca.pem` for pgsctl and the local fleet.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createFleetCa, FleetCa, identity, readTlsFiles, renewalTime, TlsIdentity, type CertifiedKey, type KeyRing } from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import type { Store } from '../store/contract.js';

/** The AAD context the CA key is sealed with. */
export const CA_KEY_CONTEXT = 'pgs:fleet-ca-key';
/** The coordinator's identity in its certificate. */
export const COORDINATOR_IDENTITY = identity('coordinator', 'coordinator');
/** The CA certificate file written into the data dir. */
export const CA_FILE = 'ca.pem';

/** The PKI the coordinator runs with. */
export interface FleetPki {
  /** The fleet CA; undefined with an operator's own PKI (Join and renewal are then unavailable). */
  readonly ca: FleetCa | undefined;
  /** The server identity for the gRPC port. */
  readonly tls: TlsIdentity;
  stop(): void;
}

/** What loadFleetPki needs. */
export interface FleetPkiOptions {
  store: Store;
  keys: KeyRing;
  dataDir: string;
  /** The --grpc-listen host and --tls-names: extra SANs of the server certificate. */
  names: readonly string[];
  /** Own PKI files (all three or none). */
  files: { caFile: string; certFile: string; keyFile: string } | undefined;
  clock: () => number;
  log: Logger;
}

/** Loads the fleet CA, creating it at the first start (key sealed with the key ring). */
export async function loadFleetCa(store: Store, keys: KeyRing, clock: () => number, log: Logger): Promise<FleetCa> {
  let stored = await store.read.secrets.getCa();
  if (!stored) {
    const created = await createFleetCa({ now: new Date(clock()) });
    stored = await store.transaction((tx) =>
      tx.secrets.putCaOnce({ certPem: created.certPem, keySealed: keys.seal(created.keyPem, CA_KEY_CONTEXT), createdAt: clock() }),
    );
    log.info({ keyId: keys.activeKeyId }, 'fleet CA created; its key is stored sealed');
  }
  return FleetCa.load({ certPem: stored.certPem, keyPem: keys.openText(stored.keySealed, CA_KEY_CONTEXT) });
}

function sans(names: readonly string[]): { dnsNames: string[]; ipAddresses: string[] } {
  const all = new Set(['localhost', '127.0.0.1', ...names.filter((n) => n !== '' && n !== '0.0.0.0' && n !== '::')]);
  return { dnsNames: [...all].filter((n) => net.isIP(n) === 0), ipAddresses: [...all].filter((n) => net.isIP(n) !== 0) };
}

async function issueServerCertificate(ca: FleetCa, names: readonly string[], clock: () => number): Promise<CertifiedKey> {
  const leaf = await ca.issue({ identity: COORDINATOR_IDENTITY, ...sans(names), now: new Date(clock()) });
  // The CA goes into the served chain: a joiner with only a token pin reads it from the handshake.
  return { certPem: leaf.certPem + ca.certPem, keyPem: leaf.keyPem };
}

/** Loads (or creates) the PKI and the coordinator's TLS identity; keeps the server certificate fresh. */
export async function loadFleetPki(options: FleetPkiOptions): Promise<FleetPki> {
  const log = options.log.child({ component: 'pki' });
  if (options.files) {
    const tls = new TlsIdentity(readTlsFiles(options.files));
    log.info({ certFile: options.files.certFile, caFile: options.files.caFile }, "serving TLS with the operator's own PKI; join tokens are unavailable");
    return { ca: undefined, tls, stop: () => undefined };
  }
  const ca = await loadFleetCa(options.store, options.keys, options.clock, log);
  writeCaFile(options.dataDir, ca.certPem);
  const first = await issueServerCertificate(ca, options.names, options.clock);
  const tls = new TlsIdentity({ caPem: ca.certPem, ...first });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (): void => {
    if (stopped) return;
    const delay = Math.max(1000, renewalTime(tls.material.certPem).getTime() - options.clock());
    timer = setTimeout(() => void renew(), Math.min(delay, 2 ** 31 - 1));
    timer.unref();
  };
  const renew = async (): Promise<void> => {
    try {
      tls.update({ caPem: ca.certPem, ...(await issueServerCertificate(ca, options.names, options.clock)) });
      log.info({}, 'server certificate renewed');
    } catch (err) {
      log.error({ err }, 'server certificate renewal failed; retrying');
    }
    schedule();
  };
  schedule();
  log.info({ caFingerprint: ca.fingerprint, caFile: path.join(options.dataDir, CA_FILE) }, 'fleet CA loaded');
  return {
    ca,
    tls,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** Writes the (public) CA certificate for pgsctl and the local fleet to read. */
function writeCaFile(dataDir: string, certPem: string): void {
  const file = path.join(dataDir, CA_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, certPem, { mode: 0o644 });
  fs.renameSync(tmp, file);
}
