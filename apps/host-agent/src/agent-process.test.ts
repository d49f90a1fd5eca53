// The agent as a real process: kill -9 and restart adopt the running instance (same postgres pid,
// reported healthy); a tenant postgres killed behind the agent's back is reported down and brought back.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstanceState } from '@pgs/proto';
import { isAlive } from './runtime/postmaster-pid.js';
import { FakeCoordinator, ownerSpec } from './testing/fake-coordinator.js';
import { tempDataRoot, testProcessRuntime, uniqueTenantId, waitFor } from './testing/test-env.js';

const appDir = path.resolve(import.meta.dirname, '..');

interface AgentProcess {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<void>;
}

function startAgent(coordinator: string, dataRoot: string, portFirst: number): AgentProcess {
  const args = [
    '--conditions=@pgs/source',
    '--import',
    'tsx',
    path.join(appDir, 'src', 'main.ts'),
    '--host-id',
    'h-proc',
    '--address',
    '127.0.0.1',
    '--coordinator',
    coordinator,
    '--data-root',
    dataRoot,
    '--port-range',
    `${portFirst}-${portFirst + 9}`,
    '--ops-listen',
    '127.0.0.1:0',
    '--labels',
    'zone=a,region=eu',
    '--health-interval',
    '200ms',
    '--report-interval',
    '500ms',
    '--reconnect-min',
    '50ms',
    '--reconnect-max',
    '500ms',
    '--spare-clones',
    '1',
    // The fake coordinator is plaintext; fleet-join.test.ts covers the mTLS link to the real one.
    '--insecure',
  ];
  const child = spawn(process.execPath, args, { cwd: appDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGS_LOG_LEVEL: 'info' } });
  const lines: Record<string, unknown>[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ msg: line });
    }
  });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => {
    if (stderr.length > 0 && process.env.PGS_TEST_LOG) process.stderr.write(stderr.join(''));
  });
  return { child, lines, exited };
}

describe('host agent process: kill -9, restart, adopt', () => {
  const dataRoot = tempDataRoot();
  const portFirst = 22000 + crypto.randomInt(0, 300) * 10;
  let coordinator: FakeCoordinator;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    coordinator = await FakeCoordinator.start();
  });

  afterAll(async () => {
    for (const a of agents) {
      if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
      await a.exited;
    }
    // Whatever the test left running goes, even after a failure.
    const runtime = testProcessRuntime({ dataRoot });
    for (const i of await runtime.list()) await runtime.remove(i.tenantId);
    await coordinator.stop();
    fs.rmSync(dataRoot, { recursive: true, force: true });
  });

  it('adopts after kill -9 with the same postgres pid, serves /healthz and /metrics, and revives a killed postgres', async () => {
    const t = uniqueTenantId('k');
    const first = startAgent(coordinator.address, dataRoot, portFirst);
    agents.push(first);
    await waitFor('agent 1 to connect', () => coordinator.connected && coordinator.hellos.length === 1, 30_000);
    const started = await waitFor('the start log line', () => first.lines.find((l) => l.msg === 'host agent started'));
    const ops = String(started.ops);
    await coordinator.desired({ full: true, instances: [ownerSpec(t, 'owner-k-secret')] });
    const running = await waitFor('the instance running', () => coordinator.running(t));

    const health = (await (await fetch(`http://${ops}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ ok: true, hostId: 'h-proc', runtime: 'process', coordinatorConnected: true });
    const metrics = await (await fetch(`http://${ops}/metrics`)).text();
    expect(metrics).toMatch(/pgs_agent_instances\{[^}]*state="RUNNING"[^}]*\} 1/);
    expect(metrics).toMatch(/pgs_agent_realization_seconds_count\{[^}]*outcome="realized"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/pgs_agent_health_check_seconds_count/);

    first.child.kill('SIGKILL');
    await first.exited;
    expect(isAlive(running.pid)).toBe(true);

    const hellos = coordinator.hellos.length;
    const second = startAgent(coordinator.address, dataRoot, portFirst);
    agents.push(second);
    await waitFor('agent 2 to say hello', () => coordinator.hellos.length > hellos && coordinator.connected, 30_000);
    const adopted = coordinator.hellos.at(-1)?.instances.find((i) => i.tenantId === t);
    expect(adopted).toMatchObject({ state: InstanceState.RUNNING, pid: running.pid, port: running.port });
    expect(adopted?.health).toMatchObject({ up: true, acceptingConnections: true });
    expect(second.lines.some((l) => l.msg === 'adopted a running instance' && l.tenantId === t)).toBe(true);

    // postgres killed behind the agent's back: reported down, then brought back on the same port.
    process.kill(running.pid, 'SIGKILL');
    await waitFor('a CRASHED report', () => coordinator.statuses.some((s) => s.tenantId === t && s.state === InstanceState.CRASHED && s.health?.up === false));
    const revived = await waitFor('the instance running again', () => {
      const s = coordinator.running(t);
      return s && s.pid !== running.pid ? s : undefined;
    });
    expect(revived.port).toBe(running.port);
    const client = new pg.Client({ host: '127.0.0.1', port: revived.port, user: t, password: 'owner-k-secret', database: t });
    await client.connect();
    await client.end();

    // A clean stop of the agent leaves the instance running.
    second.child.kill('SIGTERM');
    await second.exited;
    expect(second.child.exitCode).toBe(0);
    expect(isAlive(revived.pid)).toBe(true);
  }, 120_000);
});
