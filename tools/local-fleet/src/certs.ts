/**
 * The local fleet's own CA and the routers' certificate, made once with the openssl CLI so
 * `sslmode=require` and `sslmode=verify-full sslrootcert=<state>/ca.crt` work out of the box.
 * SANs: localhost, 127.0.0.1, pgs.localhost and *.pgs.localhost (tenant SNI names).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { FleetLayout } from './layout.js';

/** The routers' SNI domain: <tenant>.pgs.localhost names a tenant. */
export const SNI_DOMAIN = 'pgs.localhost';

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`openssl ${args[0]} failed: ${stderr || (err as Error).message}; is the openssl CLI installed?`, { cause: err });
  }
}

/** Makes the CA and the router certificate unless they exist; returns true when it made them. */
export function ensureCertificates(layout: FleetLayout): boolean {
  if ([layout.caCert, layout.caKey, layout.routerCert, layout.routerKey].every((f) => fs.existsSync(f))) return false;
  const dir = layout.certsDir;
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    [
      'req',
      '-x509',
      ...curve,
      '-keyout',
      layout.caKey,
      '-out',
      layout.caCert,
      '-days',
      '3650',
      '-subj',
      '/CN=pgs local fleet CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const csr = path.join(dir, 'router.csr');
  const ext = path.join(dir, 'router.ext');
  openssl(['req', ...curve, '-keyout', layout.routerKey, '-out', csr, '-subj', '/CN=localhost'], dir);
  fs.writeFileSync(
    ext,
    [
      `subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:${SNI_DOMAIN},DNS:*.${SNI_DOMAIN}`,
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  // 825 days: the longest validity clients such as macOS accept for a server certificate.
  openssl(
    ['x509', '-req', '-in', csr, '-CA', layout.caCert, '-CAkey', layout.caKey, '-CAcreateserial', '-out', layout.routerCert, '-days', '825', '-extfile', ext],
    dir,
  );
  fs.rmSync(csr);
  fs.rmSync(ext);
  fs.chmodSync(layout.caKey, 0o600);
  fs.chmodSync(layout.routerKey, 0o600);
  fs.chmodSync(layout.caCert, 0o644);
  return true;
}
