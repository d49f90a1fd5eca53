/**
 * End to end: `up --coordinators 3` in a temp state dir: three coordinators on a PostgreSQL store
 * (primary and synchronous standby) the launcher runs; pgsctl creates a tenant and psql queries it;
 * kill -9 of the leading coordinator, another one leads and pgsctl creates a second tenant; SIGINT
 * and not one process left (launcher, coordinators, store servers, agents, routers, tenant postgres).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '@pgs/pg-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetDescription } from './fleet-file.js';
import { findPostgresInstances } from './postgres-instances.js';
import { isAlive } from './pids.js';
import { leaderIndex } from './up.js';

const run = promisify(execFile);
const MAIN = path.join(import.meta.dirname, 'main.ts');
const PGSCTL = path.resolve(import.meta.dirname, '..', '..', 'pgsctl', 'src', 'main.ts');
const TSX_LOADER = pathToFileURL(path.resolve(import.meta.dirname, '..', '..', '..', 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const TSX = ['--conditions=@pgs/source', '--import', TSX_LOADER];

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, child: ChildProcess, log: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (child.exitCode !== null) throw new Error(`launcher exited (${child.exitCode}) before ${what}:\n${log().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`${what} not reached after ${timeoutMs} ms:\n${log().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('local fleet with three coordinators on PostgreSQL', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-fleet-ha-'));
  fs.chmodSync(root, 0o755);
  const stateDir = path.join(root, '.pgs', 'local');
  let launcher: ChildProcess;
  let output = '';
  let fleet: FleetDescription;
  // Loopback addresses of our own, apart from a developer's fleet and the single-coordinator test.
  const net = `127.0.${200 + Math.floor(Math.random() * 50)}`;
  const pgsctl = (...args: string[]) =>
    run(process.execPath, [...TSX, PGSCTL, ...args], { cwd: root, env: { ...process.env, PGS_COORDINATOR: '' }, timeout: 120_000 });

  beforeAll(async () => {
    launcher = spawn(
      process.execPath,
      [
        ...TSX,
        MAIN,
        'up',
        '--coordinators',
        '3',
        '--state-dir',
        stateDir,
        '--coordinator-port',
        String(await freePort()),
        '--http-port',
        String(await freePort()),
        '--router-port',
        String(await freePort()),
        '--host-addresses',
        `${net}.11,${net}.12`,
        '--demo-tenant',
        '',
        '--start-timeout',
        '120s',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    launcher.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    launcher.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const file = path.join(stateDir, 'fleet.json');
    fleet = await until(
      'fleet ready',
      300_000,
      async () => {
        if (!fs.existsSync(file)) return undefined;
        const d = JSON.parse(fs.readFileSync(file, 'utf8')) as FleetDescription;
        return d.state === 'ready' ? d : undefined;
      },
      launcher,
      () => output,
    );
  }, 360_000);

  afterAll(async () => {
    if (launcher && launcher.exitCode === null) {
      launcher.kill('SIGINT');
      await new Promise((resolve) => launcher.once('exit', resolve));
    }
    await run(process.execPath, [...TSX, MAIN, 'reset', '--state-dir', stateDir], { timeout: 180_000 });
    fs.rmSync(root, { recursive: true, force: true });
  }, 300_000);

  it('describes three coordinators, the leader and the store, and says how to try a failover', () => {
    expect(fleet.coordinators).toHaveLength(3);
    expect(fleet.coordinator.grpc).toBe(fleet.coordinators.map((c) => c.grpc).join(','));
    expect(fleet.store?.servers.map((s) => s.name)).toEqual(['store-primary', 'store-standby']);
    expect(fleet.leader).not.toBeNull();
    const leader = fleet.coordinators[fleet.leader ?? -1];
    expect(output).toContain(`kill -9 ${leader?.pid}`);
    // The store password reaches the coordinators in their environment, never argv or fleet.json.
    const password = fs.readFileSync(path.join(stateDir, 'certs', 'store-password'), 'utf8').trim();
    expect(fs.readFileSync(path.join(stateDir, 'fleet.json'), 'utf8')).not.toContain(password);
    for (const pid of [...fleet.coordinators.map((c) => c.pid), ...(fleet.store?.servers ?? []).map((s) => s.pid)])
      expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toContain(password);
  });

  it('creates and queries a tenant, survives kill -9 of the leader, and creates another', async () => {
    const hosts = JSON.parse((await pgsctl('host', 'list', '-o', 'json')).stdout) as Array<{ id: string; state: string }>;
    expect(hosts.map((h) => `${h.id}:${h.state}`).sort()).toEqual(['h1:READY', 'h2:READY']);
    await pgsctl('tenant', 'create', 'acme', '--access', 'enabled', '--password', 'acme-secret-1', '--wait', '--timeout', '120s');
    const uri = (await pgsctl('connect', 'acme', '--uri')).stdout.trim();
    const query = await run('psql', [uri, '-X', '-A', '-t', '-c', 'SELECT current_database()'], {
      env: { ...process.env, PGPASSWORD: 'acme-secret-1' },
      timeout: 30_000,
    });
    expect(query.stdout.trim()).toBe('acme');

    const first = (await leaderIndex(fleet.coordinators)) as number;
    expect(first).toBeDefined();
    const killedAt = performance.now();
    process.kill(fleet.coordinators[first]?.pid ?? 0, 'SIGKILL');
    const next = await until(
      'another coordinator leading',
      60_000,
      async () => {
        const i = await leaderIndex(fleet.coordinators);
        return i !== undefined && i !== first ? i : undefined;
      },
      launcher,
      () => output,
    );
    console.log(`local fleet HA: coordinator ${first + 1} killed, coordinator ${next + 1} leads after ${Math.round(performance.now() - killedAt)} ms`);
    await until(
      'the launcher noticing the kill',
      30_000,
      async () => (output.includes('exited (SIGKILL)') ? true : undefined),
      launcher,
      () => output,
    );
    // pgsctl finds the new leader among the addresses in fleet.json.
    await pgsctl('tenant', 'create', 'beta', '--access', 'enabled', '--password', 'beta-secret-1', '--wait', '--timeout', '120s');
    const got = JSON.parse((await pgsctl('tenant', 'get', 'acme', '-o', 'json')).stdout) as { tenant: { status: string } };
    expect(got.tenant.status).toBe('ACTIVE');
    const beta = (await pgsctl('connect', 'beta', '--uri')).stdout.trim();
    const second = await run('psql', [beta, '-X', '-A', '-t', '-c', 'SELECT current_database()'], {
      env: { ...process.env, PGPASSWORD: 'beta-secret-1' },
      timeout: 30_000,
    });
    expect(second.stdout.trim()).toBe('beta');
  }, 400_000);

  it('stops everything on SIGINT, the store included, leaving no process behind', async () => {
    const pids = [
      ...fleet.coordinators.map((c) => c.pid),
      ...(fleet.store?.servers ?? []).map((s) => s.pid),
      ...fleet.hosts.map((h) => h.pid),
      ...fleet.routers.map((r) => r.pid),
    ];
    const postgres = findPostgresInstances(fleet.hosts.map((h) => h.dataRoot)).map((i) => i.pid);
    expect(postgres.length).toBeGreaterThanOrEqual(2);
    launcher.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => launcher.once('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    expect([...pids, ...postgres].filter(isAlive)).toEqual([]);
    expect(output).toContain('stopped store-primary');
    expect(output).toContain('local fleet stopped');
  }, 180_000);
});
