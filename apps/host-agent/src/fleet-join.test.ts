/**
 * The agent's mTLS link to a real, secure coordinator: the first start joins with a
 * one-time token (PGS_JOIN_TOKEN) and keeps its key (0600) and certificate under the data root; a
 * restart needs no token; no credentials, or host A's certificate for host B, stop the agent at
 * start; and a stream with A's certificate that says Hello as B is refused by the coordinator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentControlService, HostState } from '@pgs/proto';
import { Code, createClient, RpcError } from '@pgs/rpc';
import { identityDirFiles, identityOfCertificate, mtlsChannelCredentials, readTlsFiles, scanForLeaks } from '@pgs/security';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSecureCoordinator, type SecureCoordinator } from '@pgs/security/testing';
import { tempDataRoot, waitFor } from './testing/test-env.js';

const appDir = path.resolve(import.meta.dirname, '..');

interface AgentProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

let coordinator: SecureCoordinator;
const agents: AgentProcess[] = [];
const dataRoots: string[] = [];

function dataRoot(): string {
  const dir = tempDataRoot('pgs-agent-join-');
  dataRoots.push(dir);
  return dir;
}

function startAgent(hostId: string, root: string, extra: { args?: string[]; env?: Record<string, string> } = {}): AgentProcess {
  const portFirst = 23000 + crypto.randomInt(0, 500) * 10;
  const args = [
    '--conditions=@pgs/source',
    '--import',
    'tsx',
    path.join(appDir, 'src', 'main.ts'),
    '--host-id',
    hostId,
    '--address',
    '127.0.0.1',
    '--coordinator',
    coordinator.grpc,
    '--data-root',
    root,
    '--port-range',
    `${portFirst}-${portFirst + 9}`,
    '--ops-listen',
    '127.0.0.1:0',
    '--spare-clones',
    '0',
    '--reconnect-min',
    '50ms',
    '--reconnect-max',
    '500ms',
    ...(extra.args ?? []),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, PGS_LOG_LEVEL: 'info', ...extra.env };
  // The suite's own environment must not leak security settings into the agent under test.
  for (const name of ['PGS_INSECURE', 'PGS_IDENTITY_DIR', 'PGS_COORDINATOR_CA', 'PGS_IDENTITY_CERT', 'PGS_IDENTITY_KEY']) delete env[name];
  if (!extra.env?.PGS_JOIN_TOKEN) delete env.PGS_JOIN_TOKEN;
  const child = spawn(process.execPath, args, { cwd: appDir, stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const agent = { child, output: () => out, exited };
  agents.push(agent);
  return agent;
}

async function stopAgent(agent: AgentProcess): Promise<void> {
  if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGTERM');
  await agent.exited;
}

/** Lines the agent logged with this msg. */
function logged(agent: AgentProcess, msg: string): number {
  return agent
    .output()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`)).length;
}

async function hostState(hostId: string): Promise<HostState | undefined> {
  const { hosts } = await coordinator.admin.listHosts({});
  return hosts.find((h) => h.id === hostId)?.state;
}

beforeAll(async () => {
  coordinator = await startSecureCoordinator();
}, 90_000);

afterAll(async () => {
  for (const a of agents) {
    if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
    await a.exited;
  }
  await coordinator?.stop();
  for (const d of dataRoots) fs.rmSync(d, { recursive: true, force: true });
});

describe('host agent fleet identity', () => {
  let joinedIdentityDir = '';

  it('joins with a join token, keeps its key private, and restarts without the token', async () => {
    const root = dataRoot();
    const { token } = await coordinator.admin.createJoinToken({ kind: 'host', componentId: 'hj1', ttlSeconds: 600 });
    const first = startAgent('hj1', root, { env: { PGS_JOIN_TOKEN: token } });
    await waitFor('the agent connected over mTLS', () => logged(first, 'connected to the coordinator') > 0, 60_000);
    await waitFor('host hj1 READY at the coordinator', async () => (await hostState('hj1')) === HostState.READY, 20_000);
    joinedIdentityDir = path.join(root, 'identity');
    const files = identityDirFiles(joinedIdentityDir);
    expect(fs.statSync(files.keyFile).mode & 0o777).toBe(0o600);
    expect(identityOfCertificate(fs.readFileSync(files.certFile, 'utf8'))).toEqual({ kind: 'host', id: 'hj1' });
    expect(first.output()).toContain('joined the fleet');
    expect(scanForLeaks(first.output(), { knownSecrets: [token] })).toEqual([]);
    await stopAgent(first);

    const again = startAgent('hj1', root);
    await waitFor('the restarted agent connected', () => logged(again, 'connected to the coordinator') > 0, 60_000);
    expect(again.output()).toContain('fleet certificate loaded');
    expect(again.output()).not.toContain('joined the fleet');
    await stopAgent(again);
  }, 150_000);

  it("stops at start without credentials, or with another host's certificate", async () => {
    const none = startAgent('hj2', dataRoot());
    expect(await none.exited).not.toBe(0);
    expect(none.output()).toMatch(/no fleet certificate in .*give a join token.*pgsctl token create --kind host --id hj2/);

    const borrowed = startAgent('hj2', dataRoot(), { args: ['--identity-dir', joinedIdentityDir] });
    expect(await borrowed.exited).not.toBe(0);
    expect(borrowed.output()).toContain('names host:hj1, not host:hj2');
    expect(await hostState('hj2')).toBeUndefined();
  }, 60_000);

  it("refuses a stream with host A's certificate that says Hello as host B", async () => {
    const client = createClient(AgentControlService, coordinator.grpc, mtlsChannelCredentials(readTlsFiles(identityDirFiles(joinedIdentityDir))));
    try {
      const stream = client.connect();
      await stream.send({
        message: {
          case: 'hello',
          value: {
            hostId: 'hj3',
            address: '127.0.0.1',
            capacity: { cpuMillis: 1000, memoryMib: 1024, diskMib: 1024 },
            runtime: 'process',
            agentVersion: 'test',
          },
        },
      });
      const refusal = await (async () => {
        try {
          for await (const response of stream) return new Error(`unexpected ${response.message.case}`);
          return new Error('stream ended without a refusal');
        } catch (err) {
          return err as Error;
        }
      })();
      expect(refusal).toBeInstanceOf(RpcError);
      expect((refusal as RpcError).code).toBe(Code.PERMISSION_DENIED);
      expect(await hostState('hj3')).toBeUndefined();
    } finally {
      client.close();
    }
  }, 30_000);
});
