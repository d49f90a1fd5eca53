// Startup packets captured from real clients (see capture-fixtures.ts), for golden tests here and
// in other projects (e.g. the router's handshake tests).
import { readFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';

/** One capture: every connection the client opened, each the packets it sent in order (hex). */
export interface ClientFixture {
  name: string;
  /** The client's version string. */
  client: string;
  /** How the client was run (PORT stands for the capture port). */
  command: string;
  connections: string[][];
}

let cache: ClientFixture[] | undefined;

/** Every captured client fixture. */
export function clientFixtures(): ClientFixture[] {
  cache ??= (JSON.parse(readFileSync(new URL('./fixtures/client-startup-packets.json', import.meta.url), 'utf8')) as { fixtures: ClientFixture[] }).fixtures;
  return cache;
}

/** One fixture by name; throws if there is none. */
export function clientFixture(name: string): ClientFixture {
  const f = clientFixtures().find((x) => x.name === name);
  if (!f) throw new Error(`no client fixture named ${name}`);
  return f;
}

/** The packets of a fixture's first connection, as buffers. */
export function fixturePackets(name: string, connection = 0): Buffer[] {
  const conn = clientFixture(name).connections[connection];
  if (!conn) throw new Error(`fixture ${name} has no connection ${connection}`);
  return conn.map((hex) => Buffer.from(hex, 'hex'));
}
