/**
 * The real coordinator as a child process for pgsctl's tests: its TypeScript source through tsx
 * (so no build is needed), a temp data dir, free ports on 127.0.0.1, ready when /healthz says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@pgs/pg-testkit';

const COORDINATOR_MAIN = path.resolve(import.meta.dirname, '..', '..', '..', '..', 'apps', 'coordinator', 'src', 'main.ts');

/** A running coordinator. */
export interface CoordinatorProcess {
  grpc: string;
  http: string;
  /** The fleet CA and the bootstrap fleet-admin token file the coordinator wrote (security is on). */
  caFile: string;
  tokenFile: string;
  /** Stops the process (SIGTERM) and starts it again on the same addresses and data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function healthy(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** One coordinator process on fixed addresses; stop() leaves the data dir. */
async function spawnCoordinator(grpc: string, httpAddress: string, dataDir: string, timeoutMs: number): Promise<{ stop: () => Promise<void> }> {
  let log = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--conditions=@pgs/source',
      '--import',
      'tsx',
      COORDINATOR_MAIN,
      '--grpc-listen',
      grpc,
      '--http-listen',
      httpAddress,
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await healthy(`http://${httpAddress}/healthz`))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`coordinator did not become healthy (exit ${child.exitCode}): ${log.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { stop };
}

/** Starts the coordinator and waits (up to timeoutMs) until /healthz answers 200. */
export async function startCoordinator(timeoutMs = 60_000): Promise<CoordinatorProcess> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsctl-coordinator-'));
  const grpc = `127.0.0.1:${await freePort()}`;
  const httpAddress = `127.0.0.1:${await freePort()}`;
  let current: { stop: () => Promise<void> } | undefined;
  try {
    current = await spawnCoordinator(grpc, httpAddress, dataDir, timeoutMs);
  } catch (err) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    grpc,
    http: httpAddress,
    caFile: path.join(dataDir, 'ca.pem'),
    tokenFile: path.join(dataDir, 'admin.token'),
    restart: async () => {
      await current?.stop();
      current = undefined;
      current = await spawnCoordinator(grpc, httpAddress, dataDir, timeoutMs);
    },
    stop: async () => {
      await current?.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
