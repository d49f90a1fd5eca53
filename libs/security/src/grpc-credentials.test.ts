import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server, type ServerCredentials } from '@grpc/grpc-js';
import { EchoService } from '@pgs/proto/testing';
import { addService, Code, createClient, RpcError, type CallContext } from '@pgs/rpc';
import type { Logger } from '@pgs/service-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bearerMetadata,
  bearerToken,
  insecureChannelCredentials,
  insecureServerCredentials,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  peerIdentity,
  readTlsFiles,
  requirePeer,
  TlsIdentity,
  tlsChannelCredentials,
  withBearerToken,
  type TlsMaterial,
} from './grpc-credentials.js';
import { identity, identityToString } from './identity.js';
import { certificateInfo, createFleetCa, FleetCa, type CertifiedKey } from './pki.js';

const now = new Date();
const HOUR = 3600_000;
let ca: FleetCa;
let otherCa: FleetCa;
let serverCert: CertifiedKey;
const servers: Server[] = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-grpc-tls-'));

function material(pair: CertifiedKey, caPem = ca.certPem): TlsMaterial {
  return { caPem, certPem: pair.certPem, keyPem: pair.keyPem };
}

/** An echo server that answers `<peer identity>|<bearer token>|<peer cert serial>`. */
async function startServer(credentials: ServerCredentials): Promise<string> {
  const server = new Server();
  const describe = (ctx: CallContext): string => {
    const who = peerIdentity(ctx);
    const serial = (ctx.peerCertificate as { serialNumber?: string } | undefined)?.serialNumber ?? '';
    return `${who ? identityToString(who) : 'anonymous'}|${bearerToken(ctx) ?? ''}|${serial}`;
  };
  addService(server, EchoService, {
    echo: async (req, ctx) => {
      if (req.text === 'host-only') requirePeer(ctx, 'host');
      return { text: describe(ctx) };
    },
    echoMany: async () => undefined,
    collect: async () => ({ texts: [] }),
    chat: async () => undefined,
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
  servers.push(server);
  return `127.0.0.1:${port}`;
}

async function call(
  address: string,
  credentials: Parameters<typeof createClient>[2],
  text = 'hi',
  metadata?: Parameters<ReturnType<typeof createClient<typeof EchoService>>['echo']>[1],
): Promise<string> {
  const client = createClient(EchoService, address, credentials);
  try {
    return (await client.echo({ text }, { timeoutMs: 5000, ...metadata })).text;
  } finally {
    client.close();
  }
}

async function refusal(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof RpcError) return err.code;
    throw err;
  }
  return Code.OK;
}

beforeAll(async () => {
  ca = await FleetCa.load(await createFleetCa({ now }));
  otherCa = await FleetCa.load(await createFleetCa({ now }));
  serverCert = await ca.issue({ identity: identity('coordinator', 'c1'), dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now });
});
afterAll(() => {
  for (const s of servers) s.forceShutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('mTLS required (agent and router links)', () => {
  let address: string;
  beforeAll(async () => {
    address = await startServer(mtlsServerCredentials(material(serverCert), { clientCertificates: 'require' }));
  });

  it('accepts a component with a fleet certificate and tells the handler who it is', async () => {
    const host = await ca.issue({ identity: identity('host', 'h1'), now });
    const [who, , serial] = (await call(address, mtlsChannelCredentials(material(host)), 'host-only')).split('|');
    expect(who).toBe('host:h1');
    expect(serial).toBe(certificateInfo(host.certPem).serialNumber.toUpperCase());
  });

  it('refuses a component without a certificate, with one from another CA, or an expired one', async () => {
    expect(await refusal(call(address, tlsChannelCredentials(ca.certPem)))).toBe(Code.UNAVAILABLE);
    const foreign = await otherCa.issue({ identity: identity('host', 'h1'), now });
    expect(await refusal(call(address, mtlsChannelCredentials(material(foreign))))).toBe(Code.UNAVAILABLE);
    const expired = await ca.issue({ identity: identity('host', 'h1'), now: new Date(now.getTime() - 48 * HOUR), lifetimeMs: HOUR });
    expect(await refusal(call(address, mtlsChannelCredentials(material(expired))))).toBe(Code.UNAVAILABLE);
  });

  it('lets a renewed certificate in through the same TlsIdentity', async () => {
    const expired = await ca.issue({ identity: identity('router', 'r1'), now: new Date(now.getTime() - 48 * HOUR), lifetimeMs: HOUR });
    const tlsIdentity = new TlsIdentity(material(expired));
    const credentials = mtlsChannelCredentials(tlsIdentity);
    expect(await refusal(call(address, credentials))).toBe(Code.UNAVAILABLE);
    const renewed = await ca.issue({ identity: identity('router', 'r1'), now });
    tlsIdentity.update(material(renewed));
    const [who, , serial] = (await call(address, credentials)).split('|');
    expect(who).toBe('router:r1');
    expect(serial).toBe(certificateInfo(renewed.certPem).serialNumber.toUpperCase());
  });

  it('refuses a router on a host-only call', async () => {
    const router = await ca.issue({ identity: identity('router', 'r1'), now });
    expect(await refusal(call(address, mtlsChannelCredentials(material(router)), 'host-only'))).toBe(Code.PERMISSION_DENIED);
  });

  it('makes the client refuse a server that is not a coordinator of the fleet CA', async () => {
    const impostorCert = await ca.issue({ identity: identity('host', 'h9'), ipAddresses: ['127.0.0.1'], now });
    const impostor = await startServer(mtlsServerCredentials(material(impostorCert), { clientCertificates: 'require' }));
    const host = await ca.issue({ identity: identity('host', 'h1'), now });
    expect(await refusal(call(impostor, mtlsChannelCredentials(material(host))))).toBe(Code.UNAVAILABLE);
    // Without the kind check the same server is fine (e.g. a test double).
    expect(await call(impostor, mtlsChannelCredentials(material(host), { serverKind: null }))).toMatch(/^host:h1\|/);
    const foreignServer = await otherCa.issue({ identity: identity('coordinator', 'c1'), ipAddresses: ['127.0.0.1'], now });
    const foreign = await startServer(mtlsServerCredentials(material(foreignServer, otherCa.certPem), { clientCertificates: 'require' }));
    expect(await refusal(call(foreign, mtlsChannelCredentials(material(host))))).toBe(Code.UNAVAILABLE);
  });
});

describe('client certificate optional (the coordinator port pgsctl shares)', () => {
  let address: string;
  beforeAll(async () => {
    address = await startServer(mtlsServerCredentials(new TlsIdentity(material(serverCert)), { clientCertificates: 'optional' }));
  });

  it('passes a bearer token over server-authenticated TLS', async () => {
    expect(await call(address, withBearerToken(tlsChannelCredentials(ca.certPem), 'pgso_tok'))).toBe('anonymous|pgso_tok|');
  });

  it('gives no identity for a certificate from another CA', async () => {
    const foreign = await otherCa.issue({ identity: identity('operator', 'mallory'), now });
    expect(await call(address, mtlsChannelCredentials(material(foreign)))).toBe('anonymous||');
    expect(await refusal(call(address, mtlsChannelCredentials(material(foreign)), 'host-only'))).toBe(Code.UNAUTHENTICATED);
  });

  it('names an operator certificate from the fleet CA', async () => {
    const alice = await ca.issue({ identity: identity('operator', 'alice'), now });
    expect(await call(address, mtlsChannelCredentials(material(alice)))).toMatch(/^operator:alice\|\|/);
  });
});

describe('--insecure', () => {
  it('works in plaintext and warns on every start', async () => {
    const warnings: string[] = [];
    const log: Logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (_obj, msg) => warnings.push(msg ?? ''),
      error: () => undefined,
      child: () => log,
    };
    const address = await startServer(insecureServerCredentials(log));
    expect(await call(address, insecureChannelCredentials(log), 'hi', { metadata: bearerMetadata('pgso_x') })).toBe('anonymous|pgso_x|');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/without TLS \(--insecure\)/);
  });
});

describe('readTlsFiles', () => {
  it('reads PEM files, insists on a private key file, and catches a key that does not match', async () => {
    const host = await ca.issue({ identity: identity('host', 'h1'), now });
    const other = await ca.issue({ identity: identity('host', 'h2'), now });
    const files = { caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'h1.pem'), keyFile: path.join(dir, 'h1.key') };
    fs.writeFileSync(files.caFile, ca.certPem);
    fs.writeFileSync(files.certFile, host.certPem);
    fs.writeFileSync(files.keyFile, host.keyPem, { mode: 0o600 });
    expect(readTlsFiles(files).certPem).toBe(host.certPem);
    fs.chmodSync(files.keyFile, 0o640);
    expect(() => readTlsFiles(files)).toThrow(/chmod 600/);
    fs.writeFileSync(files.keyFile, other.keyPem, { mode: 0o600 });
    fs.chmodSync(files.keyFile, 0o600);
    expect(() => readTlsFiles(files)).toThrow(/TLS certificate, key or CA unusable/);
    expect(() => readTlsFiles({ ...files, caFile: path.join(dir, 'missing.pem') })).toThrow(/CA file .* cannot be read: ENOENT/);
  });
});
