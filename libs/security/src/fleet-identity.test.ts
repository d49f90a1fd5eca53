/**
 * connectFleetIdentity against a real gRPC EnrollmentService (a fake coordinator at a seam we own,
 * built from this lib's CA and token functions): join, keep, reload, renew, refuse.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server } from '@grpc/grpc-js';
import { EnrollmentService } from '@pgs/proto';
import { addService, Code, createClient, RpcError } from '@pgs/rpc';
import { ConfigError, type Logger } from '@pgs/service-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectFleetIdentity, identityDirFiles, saveIdentityMaterial, type FleetIdentityOptions, type FleetLink } from './fleet-identity.js';
import { mtlsServerCredentials, peerIdentity, TlsIdentity } from './grpc-credentials.js';
import { IDENTITY_CLAIM_HEADER } from './guard.js';
import { identity, identityToString, type Identity } from './identity.js';
import { certificateInfo, createCsr, createFleetCa, FleetCa, generatePrivateKey, identityOfCertificate } from './pki.js';
import { scanForLeaks } from './leak-scan.js';
import { hashToken, issueToken, redeemJoinToken, type TokenRecord } from './tokens.js';

const server = new Server();
const tokens = new Map<string, TokenRecord>();
const joins: Identity[] = [];
const renewals: Identity[] = [];
const dirs: string[] = [];
const links: FleetLink[] = [];
const logLines: string[] = [];
let ca: FleetCa;
let address: string;
/** Lifetime the fake coordinator gives joined certificates (the renewal test shortens it). */
let joinLifetimeMs: number | undefined;

const log: Logger = {
  debug: (obj, msg) => void logLines.push(JSON.stringify({ ...obj, msg })),
  info: (obj, msg) => void logLines.push(JSON.stringify({ ...obj, msg })),
  warn: (obj, msg) => void logLines.push(JSON.stringify({ ...obj, msg })),
  error: (obj, msg) => void logLines.push(JSON.stringify({ ...obj, msg })),
  child: () => log,
};

function joinToken(kind: 'host' | 'router', id: string): string {
  const { token, record } = issueToken({ kind, name: id, now: new Date(), caFingerprint: ca.fingerprint });
  tokens.set(record.hash, record);
  return token;
}

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-fleet-identity-'));
  dirs.push(dir);
  return dir;
}

async function connect(options: Partial<FleetIdentityOptions> & ({ hostId: string } | { routerId: string })): Promise<FleetLink> {
  const link = await connectFleetIdentity({
    coordinator: address,
    insecure: false,
    joinToken: undefined,
    identityDir: tempDir(),
    files: {},
    log,
    ...options,
  } as FleetIdentityOptions);
  links.push(link);
  return link;
}

/** Who the fake coordinator sees on a call over the link: proves the link is mTLS with the joined certificate. */
async function seenAs(link: FleetLink): Promise<string> {
  const client = createClient(EnrollmentService, address, link.credentials);
  try {
    const keyPem = await generatePrivateKey();
    const res = await client.renewCertificate({ csrPem: await createCsr(link.identity, keyPem) });
    return identityToString(identityOfCertificate(res.certificatePem)!);
  } finally {
    client.close();
  }
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  const now = new Date();
  ca = await FleetCa.load(await createFleetCa({ now }));
  const leaf = await ca.issue({ identity: identity('coordinator', 'c1'), ipAddresses: ['127.0.0.1'], now });
  addService(server, EnrollmentService, {
    join: async (req) => {
      const kind = req.kind === 'host' || req.kind === 'router' ? req.kind : undefined;
      if (!kind) throw new RpcError(Code.INVALID_ARGUMENT, 'kind must be host or router');
      const hash = hashToken(req.token);
      const r = redeemJoinToken(req.token, tokens.get(hash), { kind, id: req.componentId }, new Date());
      if (!r.ok)
        throw new RpcError(
          r.refusal === 'wrong-kind' || r.refusal === 'wrong-id' ? Code.PERMISSION_DENIED : Code.UNAUTHENTICATED,
          `join token refused: ${r.refusal}`,
        );
      tokens.set(hash, r.record);
      joins.push(r.identity);
      const certificatePem = await ca.signCsr(req.csrPem, { identity: r.identity, now: new Date(), lifetimeMs: joinLifetimeMs });
      return { certificatePem, caCertificatePem: ca.certPem, expiresAt: certificateInfo(certificatePem).notAfter.toISOString() };
    },
    issueInstanceCertificate: async () => {
      throw new RpcError(Code.UNIMPLEMENTED, 'not part of these tests');
    },
    renewCertificate: async (req, ctx) => {
      const who = peerIdentity(ctx);
      if (!who) throw new RpcError(Code.UNAUTHENTICATED, 'a fleet certificate is required');
      renewals.push(who);
      const certificatePem = await ca.signCsr(req.csrPem, { identity: who, now: new Date() });
      return { certificatePem, caCertificatePem: ca.certPem, expiresAt: certificateInfo(certificatePem).notAfter.toISOString() };
    },
  });
  const serverTls = new TlsIdentity({ caPem: ca.certPem, certPem: leaf.certPem + ca.certPem, keyPem: leaf.keyPem });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', mtlsServerCredentials(serverTls, { clientCertificates: 'optional' }), (err, p) => (err ? reject(err) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
});

afterAll(() => {
  for (const l of links) l.stop();
  server.forceShutdown();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('connectFleetIdentity', () => {
  it('a host joins with a token, keeps its key 0600, speaks mTLS as host:<id>, and reloads without the token', async () => {
    const dir = tempDir();
    const token = joinToken('host', 'h1');
    const first = await connect({ hostId: 'h1', joinToken: token, identityDir: dir });
    const files = identityDirFiles(dir);
    expect(fs.statSync(files.keyFile).mode & 0o777).toBe(0o600);
    expect(identityOfCertificate(fs.readFileSync(files.certFile, 'utf8'))).toEqual({ kind: 'host', id: 'h1' });
    expect(fs.readFileSync(files.caFile, 'utf8')).toBe(ca.certPem);
    expect(await seenAs(first)).toBe('host:h1');
    expect(renewals.at(-1)).toEqual({ kind: 'host', id: 'h1' });
    first.stop();

    const joinsBefore = joins.length;
    const again = await connect({ hostId: 'h1', identityDir: dir });
    expect(joins.length).toBe(joinsBefore);
    expect(await seenAs(again)).toBe('host:h1');
    expect(scanForLeaks(logLines.join('\n'), { knownSecrets: [token] })).toEqual([]);
  });

  it('a router joins as router:<id> with the same helper', async () => {
    const link = await connect({ routerId: 'r9', joinToken: joinToken('router', 'r9') });
    expect(link.identity).toEqual({ kind: 'router', id: 'r9' });
    expect(await seenAs(link)).toBe('router:r9');
  });

  it('renews at 2/3 of the lifetime over mTLS and saves the new certificate', async () => {
    const dir = tempDir();
    // Certificates are backdated 5 minutes for clock skew: this lifetime puts 2/3 about a second from now.
    joinLifetimeMs = 151_500;
    try {
      await connect({ hostId: 'h-renew', joinToken: joinToken('host', 'h-renew'), identityDir: dir });
    } finally {
      joinLifetimeMs = undefined;
    }
    const certFile = identityDirFiles(dir).certFile;
    const joinedSerial = certificateInfo(fs.readFileSync(certFile, 'utf8')).serialNumber;
    await until(() => certificateInfo(fs.readFileSync(certFile, 'utf8')).serialNumber !== joinedSerial, 'the renewed certificate on disk');
    expect(renewals).toContainEqual({ kind: 'host', id: 'h-renew' });
    expect(identityOfCertificate(fs.readFileSync(certFile, 'utf8'))).toEqual({ kind: 'host', id: 'h-renew' });
    expect(fs.statSync(identityDirFiles(dir).keyFile).mode & 0o777).toBe(0o600);
  });

  it('refuses to start without a token or a saved certificate, naming the token command', async () => {
    await expect(connect({ hostId: 'h2' })).rejects.toThrow(ConfigError);
    await expect(connect({ hostId: 'h2' })).rejects.toThrow(/pgsctl token create --kind host --id h2/);
  });

  it('refuses a token for another component, and a used token', async () => {
    const token = joinToken('host', 'h3');
    await expect(connect({ hostId: 'h4', joinToken: token })).rejects.toThrow(/wrong-id/);
    await expect(connect({ routerId: 'h3', joinToken: token })).rejects.toThrow(/wrong-kind/);
    await connect({ hostId: 'h3', joinToken: token });
    await expect(connect({ hostId: 'h3', joinToken: token })).rejects.toThrow(/used/);
  });

  it('refuses a saved certificate or own certificate files that name another component', async () => {
    const dir = tempDir();
    await connect({ hostId: 'ha', joinToken: joinToken('host', 'ha'), identityDir: dir });
    await expect(connect({ hostId: 'hb', identityDir: dir })).rejects.toThrow(/names host:ha, not host:hb/);
    const files = identityDirFiles(dir);
    await expect(connect({ hostId: 'hb', files })).rejects.toThrow(/names host:ha, not host:hb/);
    await expect(connect({ routerId: 'ha', files })).rejects.toThrow(/names host:ha, not router:ha/);
    const own = await connect({ hostId: 'ha', files });
    expect(await seenAs(own)).toBe('host:ha');
    await expect(connect({ hostId: 'ha', files: { certFile: files.certFile, keyFile: files.keyFile } })).rejects.toThrow(/needs --coordinator-ca/);
    await expect(connect({ hostId: 'ha', files: { caFile: files.caFile, certFile: files.certFile } })).rejects.toThrow(/go together/);
  });

  it('joins again when the saved certificate expired and a new token is given; without one it says so', async () => {
    const dir = tempDir();
    const keyPem = await generatePrivateKey();
    const past = new Date(Date.now() - 48 * 3600_000);
    const certPem = await ca.signCsr(await createCsr(identity('host', 'h-old'), keyPem), {
      identity: identity('host', 'h-old'),
      now: past,
      lifetimeMs: 3600_000,
    });
    saveIdentityMaterial(dir, { caPem: ca.certPem, certPem, keyPem });
    await expect(connect({ hostId: 'h-old', identityDir: dir })).rejects.toThrow(/has expired: start with a new join token/);
    const link = await connect({ hostId: 'h-old', identityDir: dir, joinToken: joinToken('host', 'h-old') });
    expect(await seenAs(link)).toBe('host:h-old');
    expect(certificateInfo(fs.readFileSync(identityDirFiles(dir).certFile, 'utf8')).notAfter.getTime()).toBeGreaterThan(Date.now());
  });

  it('--insecure: plaintext, the identity claimed in call metadata, no files', async () => {
    const dir = path.join(tempDir(), 'never');
    const link = await connect({ hostId: 'h5', insecure: true, identityDir: dir });
    expect(link.metadata?.get(IDENTITY_CLAIM_HEADER)).toEqual(['host:h5']);
    expect(fs.existsSync(dir)).toBe(false);
    expect(logLines.some((l) => l.includes('"insecure":true'))).toBe(true);
  });
});
