/**
 * Test support: a quiet logger, a throwaway data root, unique tenant ids, polling with a deadline,
 * and a process runtime wired like main.ts wires it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { Logger } from '@pgs/service-kit';
import { CgroupLimits, detectCgroupRoot } from '../runtime/cgroup-limits.js';
import { postgresRunAs } from '../runtime/os-user.js';
import { PortAllocator } from '../runtime/port-allocator.js';
import { findPostgresInstall } from '../runtime/postgres-install.js';
import { ProcessRuntime } from '../runtime/process-runtime.js';

/** The rows of one query on a connection of its own (opened and closed around it). */
export async function sql<T extends pg.QueryResultRow>(config: pg.ClientConfig, text: string): Promise<T[]> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/** A logger that is silent unless PGS_TEST_LOG names a level. */
export function testLogger(): Logger {
  return pino({ level: process.env.PGS_TEST_LOG ?? 'silent' });
}

/** A fresh data root under the OS temp dir. */
export function tempDataRoot(prefix = 'pgs-agent-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** A tenant id unique to this test run. */
export function uniqueTenantId(prefix = 't'): string {
  return `${prefix}${crypto.randomBytes(4).toString('hex')}`;
}

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

/** A process runtime on `dataRoot`, listening on `address`, with ports from a range of its own. */
export function testProcessRuntime(options: {
  dataRoot: string;
  address?: string;
  portRange?: { first: number; last: number };
  log?: Logger;
  stopTimeoutMs?: number;
  binDirPatterns?: string[];
}): ProcessRuntime {
  const log = options.log ?? testLogger();
  const address = options.address ?? '127.0.0.1';
  // A random window keeps parallel test files off each other's ports.
  const first = options.portRange?.first ?? 21000 + crypto.randomInt(0, 400) * 10;
  const range = options.portRange ?? { first, last: first + 9 };
  return new ProcessRuntime({
    dataRoot: options.dataRoot,
    address,
    allowCidrs: ['127.0.0.0/8'],
    install: findPostgresInstall(options.binDirPatterns ?? ['/usr/lib/postgresql/*/bin'], options.binDirPatterns ? undefined : process.env.PGS_PG_BIN_DIR),
    runAs: postgresRunAs('postgres'),
    ports: new PortAllocator(range, address),
    cgroups: new CgroupLimits(detectCgroupRoot(), log),
    log,
    startTimeoutMs: 30_000,
    stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
    spareClones: 1,
  });
}
