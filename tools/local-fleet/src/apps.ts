/** The built apps the fleet runs, and the flags each gets (see each app's README / --help). */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './options.js';

/** dist/main.js of each app. */
export const APP_SCRIPTS = Object.freeze({
  coordinator: path.join(REPO_ROOT, 'apps', 'coordinator', 'dist', 'main.js'),
  agent: path.join(REPO_ROOT, 'apps', 'host-agent', 'dist', 'main.js'),
  router: path.join(REPO_ROOT, 'apps', 'router', 'dist', 'main.js'),
});

/** What the command line of the fleet process `name` contains (coordinator, hN, rN, launcher). */
export function expectedCommand(name: string): string {
  if (name === 'coordinator' || /^coordinator-\d+$/.test(name)) return APP_SCRIPTS.coordinator;
  if (/^h\d+$/.test(name)) return APP_SCRIPTS.agent;
  if (/^r\d+$/.test(name)) return APP_SCRIPTS.router;
  // The launcher runs from dist (npm start) or, in tests, from src through tsx.
  return path.join('tools', 'local-fleet');
}

/** Throws with the build command when an app has not been built. */
export function checkBuilt(): void {
  const missing = Object.values(APP_SCRIPTS).filter((s) => !fs.existsSync(s));
  if (missing.length > 0) {
    throw new Error(`not built: ${missing.map((m) => path.relative(REPO_ROOT, m)).join(', ')}; run \`npm start\` (it builds first) or \`npm run build\``);
  }
}

/** Coordinator flags. */
export function coordinatorArgs(p: {
  grpc: string;
  http: string;
  dataDir: string;
  secretKeyFile: string;
  backupsDir: string;
  insecure: boolean;
  /** Several coordinators share one bootstrap admin token file (whichever leads first writes it). */
  adminTokenFile?: string;
}): string[] {
  return [
    ...(p.adminTokenFile ? ['--admin-token-file', p.adminTokenFile] : []),
    '--grpc-listen',
    p.grpc,
    '--http-listen',
    p.http,
    '--data-dir',
    p.dataDir,
    '--secret-key-file',
    p.secretKeyFile,
    '--backup-repo',
    `posix:${p.backupsDir}`,
    ...(p.insecure ? ['--insecure'] : []),
  ];
}

/** Host agent flags. */
export function agentArgs(p: {
  id: string;
  address: string;
  zone: string;
  coordinator: string;
  dataRoot: string;
  ops: string;
  runtime: string;
  portRange: string;
  cpu: string;
  memory: string;
  disk: string;
  insecure: boolean;
}): string[] {
  return [
    ...(p.insecure ? ['--insecure'] : []),
    '--host-id',
    p.id,
    '--address',
    p.address,
    '--coordinator',
    p.coordinator,
    '--data-root',
    p.dataRoot,
    '--runtime',
    p.runtime,
    '--port-range',
    p.portRange,
    '--ops-listen',
    p.ops,
    '--labels',
    `zone=${p.zone},region=local`,
    '--cpu',
    p.cpu,
    '--memory',
    p.memory,
    '--disk',
    p.disk,
  ];
}

/** Router flags. */
export function routerArgs(p: {
  id: string;
  listen: string;
  coordinator: string;
  cachePath: string;
  ops: string;
  tlsCert: string;
  tlsKey: string;
  sniDomain: string;
  insecure: boolean;
}): string[] {
  return [
    ...(p.insecure ? ['--insecure'] : []),
    '--router-id',
    p.id,
    '--listen',
    p.listen,
    '--coordinator',
    p.coordinator,
    '--cache-path',
    p.cachePath,
    '--ops-listen',
    p.ops,
    '--cancel-listen',
    '127.0.0.1:0',
    '--tls-cert',
    p.tlsCert,
    '--tls-key',
    p.tlsKey,
    '--sni-domain',
    p.sniDomain,
    // Ctrl-C should not wait half a minute for idle psql sessions.
    '--shutdown-timeout',
    '3s',
  ];
}
