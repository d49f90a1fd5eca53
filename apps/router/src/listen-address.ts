import { ConfigError } from '@pgs/service-kit';

/** A TCP endpoint given as `host:port` (IPv6 as `[::1]:5432`). */
export interface HostPort {
  host: string;
  port: number;
}

/** Parses `host:port`; `what` names the option in the error. */
export function parseHostPort(text: string, what: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${what}: "${text}" is not host:port (e.g. 127.0.0.1:5432)`);
  return { host: (m[1] ?? m[2])!, port };
}

/** Formats an endpoint as `host:port`, bracketing IPv6 hosts. */
export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
