import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureCertificates } from './certs.js';
import { createDirectories, fleetLayout } from './layout.js';

describe('local fleet certificates (openssl CLI)', () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-fleet-certs-'));
  // Enterable by others, as a checkout is; a 0700 dir would move the agents' data roots to /var/tmp.
  fs.chmodSync(stateDir, 0o755);
  afterAll(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it('makes a CA and a router certificate for localhost, 127.0.0.1 and *.pgs.localhost, once', () => {
    const layout = fleetLayout(stateDir);
    expect(layout.agentsDir.startsWith(stateDir)).toBe(true);
    createDirectories(layout);
    expect(ensureCertificates(layout)).toBe(true);
    const ca = new crypto.X509Certificate(fs.readFileSync(layout.caCert));
    const cert = new crypto.X509Certificate(fs.readFileSync(layout.routerCert));
    expect(ca.ca).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('acme.pgs.localhost')).toBe('*.pgs.localhost');
    expect(cert.checkHost('example.com')).toBeUndefined();
    expect(fs.statSync(layout.routerKey).mode & 0o077).toBe(0);
    // A second start keeps the same CA, so clients that trust it keep working.
    expect(ensureCertificates(layout)).toBe(false);
    expect(new crypto.X509Certificate(fs.readFileSync(layout.caCert)).fingerprint256).toBe(ca.fingerprint256);
  });
});
