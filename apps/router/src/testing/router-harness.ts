// Starts a router in-process against a fake route feed, with its log lines captured.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { readRouterConfig } from '../config.js';
import { formatHostPort } from '../listen-address.js';
import { startRouter, type RunningRouter } from '../router.js';

/** A router under test. */
export interface TestRouter extends RunningRouter {
  readonly host: string;
  readonly port: number;
  readonly cachePath: string;
  /** Parsed log lines so far. */
  readonly logs: Array<Record<string, unknown>>;
  /** GETs a path of the ops endpoint. */
  get(pathname: string): Promise<{ status: number; body: string }>;
}

/** Starts a router with test defaults; `args` add or override flags. */
export async function startTestRouter(options: {
  coordinator: string;
  cachePath?: string;
  routerId?: string;
  args?: string[];
  secure?: boolean;
}): Promise<TestRouter> {
  const cachePath = options.cachePath ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-router-')), 'routes.db');
  const argv = [
    '--listen',
    '127.0.0.1:0',
    '--coordinator',
    options.coordinator,
    '--cache-path',
    cachePath,
    '--router-id',
    options.routerId ?? 'r1',
    '--cancel-listen',
    '127.0.0.1:0',
    '--ops-listen',
    '127.0.0.1:0',
    '--sync-backoff-min',
    '20ms',
    '--sync-backoff-max',
    '200ms',
    '--shutdown-timeout',
    '3s',
    // The fake route feed is plaintext; `secure` routers (fleet-identity.test.ts) use mTLS to a real coordinator.
    ...(options.secure ? [] : ['--insecure']),
    ...(options.args ?? []),
  ];
  const read = readRouterConfig(argv, {});
  if (read.kind !== 'config') throw new Error('unexpected --help');
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const router = await startRouter(read.config, log);
  return Object.assign(router, {
    host: router.listen.host,
    port: router.listen.port,
    cachePath,
    logs,
    async get(pathname: string) {
      const res = await fetch(`http://${router.ops.address}${pathname}`);
      return { status: res.status, body: await res.text() };
    },
    toString: () => formatHostPort(router.listen),
  });
}
