// A throwaway CA and server certificates made with the openssl CLI, for TLS tests.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Files of a test CA and one server certificate for `*.db.test`, `localhost` and 127.0.0.1. */
export interface TestCa {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** Issues another server certificate (for reload tests) and returns its paths. */
  issue(name: string): { cert: string; key: string };
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Creates the CA and a first server certificate in a temp dir. */
export function createTestCa(): TestCa {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-router-ca-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=pgs test CA'], dir);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,DNS:*.db.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  const issue = (name: string): { cert: string; key: string } => {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-extfile',
        'ext.cnf',
      ],
      dir,
    );
    return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  };
  const first = issue('server');
  return {
    dir,
    caCert: path.join(dir, 'ca.crt'),
    serverCert: first.cert,
    serverKey: first.key,
    issue,
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
