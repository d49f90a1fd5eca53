/**
 * Test support for the docker runtime: whether a Docker Engine API is reachable at
 * PGS_DOCKER_SOCKET (scripts/setup-podman.sh prepares Podman's), and a runtime wired to it.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { Logger } from '@pgs/service-kit';
import { DockerRuntime } from '../runtime/docker-runtime.js';
import { PortAllocator } from '../runtime/port-allocator.js';
import { testLogger } from './test-env.js';

/** Why the docker tests cannot run here, or undefined when the API answers /_ping. */
export async function dockerUnavailableReason(socketPath: string | undefined): Promise<string | undefined> {
  if (!socketPath) return 'PGS_DOCKER_SOCKET is not set (run apps/host-agent/scripts/setup-podman.sh and export PGS_DOCKER_SOCKET=/run/pgs-podman/podman.sock)';
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? undefined : `the Docker API at ${socketPath} answered /_ping with ${res.statusCode}`);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(`no Docker API at ${socketPath}: ${err.message}`));
  });
}

/** A docker runtime for `hostId` on `socketPath`, with a port window of its own. */
export function testDockerRuntime(options: { socketPath: string; hostId: string; dataRoot: string; log?: Logger; portFirst?: number }): DockerRuntime {
  const log = options.log ?? testLogger();
  const first = options.portFirst ?? 24000 + crypto.randomInt(0, 300) * 10;
  return new DockerRuntime({
    socketPath: options.socketPath,
    hostId: options.hostId,
    address: '127.0.0.1',
    dataRoot: options.dataRoot,
    imageTemplate: 'localhost/pgs-postgres:{version}',
    defaultVersion: process.env.PGS_PG_MAJOR ?? '15',
    ports: new PortAllocator({ first, last: first + 9 }, '127.0.0.1'),
    log,
    startTimeoutMs: 60_000,
    stopTimeoutMs: 10_000,
  });
}
