/** What `up` prints once the fleet is ready: where everything is and exactly how to connect. */
import path from 'node:path';
import type { FleetDescription } from './fleet-file.js';

/** A path as short as possible for the reader: relative when under the working directory. */
function show(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

/** The ready banner. */
export function renderBanner(d: FleetDescription, cwd: string): string {
  const ca = show(d.caPath, cwd);
  const lines = [
    '',
    `pgs local fleet is up (state in ${show(d.stateDir, cwd)})`,
    '',
    ...coordinatorLines(d),
    ...d.hosts.map((h, i) => `  ${i === 0 ? 'hosts      ' : '           '}  ${h.id} ${h.address} (zone ${h.zone})`),
    ...d.routers.map((r, i) => `  ${i === 0 ? 'routers    ' : '           '}  ${r.id} ${r.listen}`),
    d.coordinator.insecure
      ? '  security     OFF: plaintext gRPC, components unauthenticated (operators still need the admin token)'
      : `  security     mTLS from the fleet CA ${show(d.coordinator.caFile, cwd)}; fleet-admin token in ${show(d.coordinator.tokenFile, cwd)}`,
  ];
  if (d.demo !== null) {
    const demo = d.demo;
    const pw = encodeURIComponent(require_(demo.uri));
    lines.push(
      '',
      `Connect to the demo tenant "${demo.tenant}" with psql through either router:`,
      ...demo.uris.map((u) => `  psql "${u}"`),
      '',
      '  # any user of a tenant can also name the tenant in the user name, as user.tenant:',
      `  psql "postgresql://${demo.user}.${demo.tenant}:${pw}@${d.routers[0]?.listen ?? ''}/${demo.database}?sslmode=require"`,
      "  # verify the router's certificate against the fleet's own CA:",
      `  psql "postgresql://${demo.user}:${pw}@${d.routers[0]?.listen ?? ''}/${demo.database}?sslmode=verify-full&sslrootcert=${ca}"`,
      `  # the password is kept in ${show(demo.passwordFile, cwd)}`,
      `  # the demo suspends after 5 idle minutes (./pgsctl tenant get ${demo.tenant}); the next psql wakes it`,
    );
  }
  lines.push(
    '',
    'Operate the fleet with pgsctl (from the repository; it finds this fleet by itself):',
    '  ./pgsctl status',
    '  ./pgsctl tenant create acme --access enabled --wait',
    '  ./pgsctl connect acme',
    '  ./pgsctl host list',
    '  ./pgsctl events --watch',
    `  ./pgsctl backup list demo              # backups go to ${show(d.backupsDir, cwd)}`,
    '',
    `Machine-readable description: ${show(path.join(d.stateDir, 'fleet.json'), cwd)}   Logs: ${show(path.join(d.stateDir, 'logs'), cwd)}/`,
    'Ctrl-C stops the fleet (tenants persist across restarts); `npm run fleet:reset` wipes it.',
    '',
  );
  return lines.join('\n');
}

/** One line per coordinator (the leader marked), the store, and how to try a failover. */
function coordinatorLines(d: FleetDescription): string[] {
  if (d.coordinators.length <= 1) return [`  coordinator  ${d.coordinator.grpc} (gRPC)   http://${d.coordinator.http} (REST)`];
  const leader = d.leader === null ? undefined : d.coordinators[d.leader];
  return [
    ...d.coordinators.map(
      (c, i) => `  ${i === 0 ? 'coordinators' : '            '} ${c.grpc} (gRPC)   http://${c.http} (REST)   pid ${c.pid}${i === d.leader ? '   LEADS' : ''}`,
    ),
    ...(d.store?.servers ?? []).map((s, i) => `  ${i === 0 ? 'store      ' : '           '}  ${s.name} postgres ${s.address}:${s.port} (pid ${s.pid})`),
    leader
      ? `  failover     kill -9 ${leader.pid}   # the leader; another coordinator leads within seconds (curl http://<REST>/healthz says role), ./pgsctl keeps working`
      : '  failover     no coordinator led when the fleet became ready; curl http://<REST>/healthz says which one does',
  ];
}

/** The password inside a postgresql:// URI. */
function require_(uri: string): string {
  return decodeURIComponent(new URL(uri).password);
}
