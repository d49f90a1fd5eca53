/**
 * The configuration files the agent owns inside an instance: pg_hba.conf (who may connect how)
 * and the settings (listen address, port, socket directory, memory-derived sizes). Both runtimes
 * use the same rules: tenants connect over the network with SCRAM only; the superuser `postgres`
 * exists only for the agent, over the unix socket, and is refused over the network.
 */
import { postgresSettingsFor, type Resources } from '@pgs/tenancy';

/** A host's address as a single-host CIDR. */
export function hostCidr(address: string): string {
  return address.includes(':') ? `${address}/128` : `${address}/32`;
}

/**
 * pg_hba.conf: local superuser by trust (socket dir 0700), other local roles and everyone from the
 * allowed networks by SCRAM; with `replicationUser`, that role (and only it) may also open replication
 * connections from those networks, with SCRAM. With `tlsOnly` those network lines are `hostssl`: a
 * connection without TLS matches no line and is refused (the agent's own unix-socket connections are untouched).
 */
export function hbaConf(allowCidrs: readonly string[], replicationUser = '', tlsOnly = false): string {
  const cidrs = [...new Set(allowCidrs)];
  const kind = tlsOnly ? 'hostssl' : 'host   ';
  const lines = [
    '# Written by pgs-host-agent; edits are overwritten.',
    '# The agent administers the instance as postgres over the unix socket only (directory mode 0700).',
    'local   all   postgres   trust',
    "# Init scripts run over the socket as a short-lived role of the tenant's, never as the superuser.",
    'local   all   all        scram-sha-256',
    '# The superuser never logs in over the network.',
    'host    all   postgres   0.0.0.0/0   reject',
    'host    all   postgres   ::/0        reject',
    tlsOnly
      ? '# Tenants: TLS and SCRAM-SHA-256 only (their passwords are stored as verifiers).'
      : '# Tenants: SCRAM-SHA-256 only (their passwords are stored as verifiers).',
    ...cidrs.map((cidr) => `${kind} all   all   ${cidr}   scram-sha-256`),
    ...(replicationUser === ''
      ? []
      : [
          '# Standbys on other hosts: streaming and base backups as the replication role, SCRAM only.',
          ...cidrs.map((cidr) => `${kind} replication   ${hbaName(replicationUser)}   ${cidr}   scram-sha-256`),
        ]),
    '',
  ];
  return lines.join('\n');
}

/** The TLS settings of an instance: the host's instance certificate, or none (ssl off). */
export function tlsSettings(files: { certFile: string; keyFile: string } | undefined): Record<string, string> {
  return files ? { ssl: 'on', ssl_cert_file: files.certFile, ssl_key_file: files.keyFile } : { ssl: 'off' };
}

/** A role name in pg_hba.conf (double-quoted when it is not a plain lower-case word). */
function hbaName(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/** A postgresql.conf value, quoted. */
function confValue(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Settings of one instance: where it listens and how big it is. */
export function instanceSettings(options: { listenAddresses: string; port: number; socketDir: string; resources: Resources }): Record<string, string> {
  return {
    listen_addresses: options.listenAddresses,
    port: String(options.port),
    unix_socket_directories: options.socketDir,
    unix_socket_permissions: '0700',
    password_encryption: 'scram-sha-256',
    // A major upgrade by logical replication decodes this instance's WAL; wal_level takes a restart
    // to change, so every instance starts ready for it (a little more WAL for UPDATE/DELETE on
    // tables with a replica identity, nothing else).
    wal_level: 'logical',
    ...postgresSettingsFor(options.resources),
  };
}

/** The settings as a postgresql.conf fragment. */
export function settingsConf(settings: Readonly<Record<string, string>>): string {
  const lines = ['# Written by pgs-host-agent from the tenant spec; edits are overwritten.'];
  for (const [name, value] of Object.entries(settings)) lines.push(`${name} = ${confValue(value)}`);
  return `${lines.join('\n')}\n`;
}
