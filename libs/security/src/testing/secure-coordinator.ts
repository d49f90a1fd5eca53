/**
 * The real coordinator as a child process with security on (its TypeScript source through tsx), for
 * the join/mTLS tests of agents and routers. Black-box: only its data dir files (ca.pem, admin.token) and gRPC API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@pgs/pg-testkit';
import { CoordinatorService } from '@pgs/proto';
import { createClient, type Client } from '@pgs/rpc';
import { tlsChannelCredentials, withBearerToken } from '../index.js';

const COORDINATOR_MAIN = path.resolve(import.meta.dirname, '..', '..', '..', '..', 'apps', 'coordinator', 'src', 'main.ts');

/** A running secure coordinator. */
export interface SecureCoordinator {
  grpc: string;
  dataDir: string;
  caPem: string;
  /** CoordinatorService as the bootstrap fleet-admin. */
  admin: Client<typeof CoordinatorService>;
  /** Everything it logged. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts it and waits until its data dir holds the CA and the admin token and it listens. */
export async function startSecureCoordinator(timeoutMs = 60_000): Promise<SecureCoordinator> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-secure-coord-'));
  const grpc = `127.0.0.1:${await freePort()}`;
  const httpAddress = `127.0.0.1:${await freePort()}`;
  let out = '';
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=@pgs/source', '--import', 'tsx', COORDINATOR_MAIN, '--grpc-listen', grpc, '--http-listen', httpAddress, '--data-dir', dataDir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const clients: { close(): void }[] = [];
  const stop = async (): Promise<void> => {
    for (const c of clients) c.close();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  while (!out.includes('coordinator listening')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`coordinator did not start (exit ${child.exitCode}): ${out.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const caPem = fs.readFileSync(path.join(dataDir, 'ca.pem'), 'utf8');
  const token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  const admin = createClient(CoordinatorService, grpc, withBearerToken(tlsChannelCredentials(caPem), token));
  clients.push(admin);
  return { grpc, dataDir, caPem, admin, output: () => out, stop };
}
