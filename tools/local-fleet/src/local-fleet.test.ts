/**
 * End to end: `up` in a temp state dir with its own ports and loopback addresses, psql through
 * both routers to the demo tenant (TLS required, and verify-full against the fleet's CA), pgsctl
 * against it, then SIGINT and not one process left: launcher, coordinator, agents, routers, postgres.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '@pgs/pg-testkit';
import { identityOfCertificate, scanForLeaks } from '@pgs/security';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetDescription } from './fleet-file.js';
import { findPostgresInstances } from './postgres-instances.js';
import { isAlive } from './pids.js';

const run = promisify(execFile);
const MAIN = path.join(import.meta.dirname, 'main.ts');
const PGSCTL = path.resolve(import.meta.dirname, '..', '..', 'pgsctl', 'src', 'main.ts');
// tsx by absolute URL: pgsctl runs with cwd outside the repository, where a bare 'tsx' would not resolve.
const TSX_LOADER = pathToFileURL(path.resolve(import.meta.dirname, '..', '..', '..', 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const TSX = ['--conditions=@pgs/source', '--import', TSX_LOADER];

async function waitFor<T>(what: string, timeoutMs: number, check: () => T | undefined, child: ChildProcess, log: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (child.exitCode !== null) throw new Error(`launcher exited (${child.exitCode}) before ${what}:\n${log().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`${what} not reached after ${timeoutMs} ms:\n${log().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function psql(uri: string, sql: string): Promise<{ stdout: string }> {
  return run('psql', [uri, '-X', '-A', '-t', '-c', sql], { timeout: 20_000 });
}

describe('local fleet launcher', () => {
  // Laid out like a repository (<root>/.pgs/local), so pgsctl run in <root> finds the fleet itself.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-fleet-e2e-'));
  fs.chmodSync(root, 0o755);
  const stateDir = path.join(root, '.pgs', 'local');
  let launcher: ChildProcess;
  let output = '';
  let fleet: FleetDescription;
  // A /24 of loopback of our own, so this fleet never meets a developer's fleet on 127.0.0.11-13.
  const net = `127.0.${100 + Math.floor(Math.random() * 100)}`;

  beforeAll(async () => {
    const base = await freePort();
    launcher = spawn(
      process.execPath,
      [
        ...TSX,
        MAIN,
        'up',
        '--state-dir',
        stateDir,
        '--coordinator-port',
        String(await freePort()),
        '--http-port',
        String(await freePort()),
        '--router-port',
        String(base),
        '--host-addresses',
        `${net}.11,${net}.12,${net}.13`,
        '--start-timeout',
        '90s',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    launcher.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    launcher.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const file = path.join(stateDir, 'fleet.json');
    fleet = await waitFor(
      'fleet ready',
      240_000,
      () => {
        if (!fs.existsSync(file)) return undefined;
        const d = JSON.parse(fs.readFileSync(file, 'utf8')) as FleetDescription;
        return d.state === 'ready' ? d : undefined;
      },
      launcher,
      () => output,
    );
  }, 300_000);

  afterAll(async () => {
    if (launcher && launcher.exitCode === null) {
      launcher.kill('SIGINT');
      await new Promise((resolve) => launcher.once('exit', resolve));
    }
    // Whatever a failed run left behind: `down` stops it by pid files.
    await run(process.execPath, [...TSX, MAIN, 'down', '--state-dir', stateDir], { timeout: 120_000 });
    await run(process.execPath, [...TSX, MAIN, 'reset', '--state-dir', stateDir], { timeout: 120_000 });
    fs.rmSync(root, { recursive: true, force: true });
  }, 300_000);

  it('prints how to connect and describes itself in fleet.json', () => {
    expect(fleet.routers).toHaveLength(2);
    expect(fleet.hosts.map((h) => h.address)).toEqual([`${net}.11`, `${net}.12`, `${net}.13`]);
    expect(fleet.demo?.uris).toHaveLength(2);
    for (const uri of fleet.demo?.uris ?? []) expect(output).toContain(`psql "${uri}"`);
    expect(output).toContain('./pgsctl');
    expect(fs.statSync(path.join(stateDir, 'demo-password')).mode & 0o077).toBe(0);
    // Security: the admin token is private, and every link is mTLS.
    expect(fs.statSync(fleet.coordinator.tokenFile).mode & 0o077).toBe(0);
    expect(fs.statSync(path.join(stateDir, 'certs', 'coordinator-secret.key')).mode & 0o077).toBe(0);
    expect(fleet.coordinator.insecure).toBe(false);
    expect(output).not.toContain('security     OFF');
    expect(fs.readFileSync(fleet.coordinator.caFile, 'utf8')).toContain('BEGIN CERTIFICATE');
  });

  it('runs every agent and router joined with its own fleet certificate, none in plaintext', () => {
    const holders = [
      ...fleet.hosts.map((h) => ({ who: { kind: 'host', id: h.id }, dir: path.join(h.dataRoot, 'identity'), log: h.log })),
      ...fleet.routers.map((r) => ({ who: { kind: 'router', id: r.id }, dir: path.join(path.dirname(r.cachePath), `identity-${r.id}`), log: r.log })),
    ];
    expect(holders).toHaveLength(5);
    for (const { who, dir, log } of holders) {
      expect(identityOfCertificate(fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8'))).toEqual(who);
      expect(fs.statSync(path.join(dir, 'key.pem')).mode & 0o077).toBe(0);
      const text = fs.readFileSync(log, 'utf8');
      expect(text).toContain('joined the fleet');
      expect(text).not.toContain('"insecure":true');
    }
    expect(fs.readFileSync(fleet.coordinator.log, 'utf8')).not.toContain('"insecure":true');
  });

  it('writes no token, private key or password into any process log', () => {
    // The launcher's own terminal banner shows the demo URI to the developer on purpose; the logs of
    // coordinator, agents and routers must hold no secret at all.
    const logs = fs
      .readdirSync(path.join(stateDir, 'logs'))
      .map((f) => fs.readFileSync(path.join(stateDir, 'logs', f), 'utf8'))
      .join('\n');
    const token = fs.readFileSync(fleet.coordinator.tokenFile, 'utf8').trim();
    const password = fs.readFileSync(path.join(stateDir, 'demo-password'), 'utf8').trim();
    expect(logs.length).toBeGreaterThan(0);
    expect(scanForLeaks(logs, { knownSecrets: [token, password] })).toEqual([]);
  });

  it('lets psql reach the demo tenant through both routers, with TLS required and verified', async () => {
    for (const uri of fleet.demo?.uris ?? []) {
      // sslmode=require: psql fails unless the router speaks TLS.
      const { stdout } = await psql(uri, "SELECT current_user || ' ' || current_database()");
      expect(stdout.trim()).toBe('demo demo');
    }
    const verified = await psql(fleet.demo?.uriVerifyFull ?? '', 'SELECT 1');
    expect(verified.stdout.trim()).toBe('1');
    const password = fs.readFileSync(path.join(stateDir, 'demo-password'), 'utf8').trim();
    const userTenant = await psql(`postgresql://demo.demo:${password}@${fleet.routers[1]?.listen}/demo?sslmode=require`, 'SELECT current_user');
    expect(userTenant.stdout.trim()).toBe('demo');
  });

  it('is found by pgsctl from the directory above .pgs without an address, which creates a tenant and prints a working URI', async () => {
    const pgsctl = (...args: string[]) =>
      run(process.execPath, [...TSX, PGSCTL, ...args], { cwd: root, env: { ...process.env, PGS_COORDINATOR: '' }, timeout: 120_000 });
    const hosts = JSON.parse((await pgsctl('host', 'list', '-o', 'json')).stdout) as Array<{ id: string; state: string }>;
    expect(hosts.map((h) => `${h.id}:${h.state}`).sort()).toEqual(['h1:READY', 'h2:READY', 'h3:READY']);
    const created = await pgsctl('tenant', 'create', 'acme', '--access', 'enabled', '--password', 'acme-secret-1', '--wait', '--timeout', '90s', '-o', 'json');
    expect((JSON.parse(created.stdout) as { tenant: { status: string } }).tenant.status).toBe('ACTIVE');
    expect(created.stderr).toMatch(/tenant acme is ACTIVE \(\d+\.\ds\)/);
    const uri = (await pgsctl('connect', 'acme', '--uri')).stdout.trim();
    expect(uri).toBe(`postgresql://acme@${fleet.routers[0]?.listen}/acme?sslmode=require`);
    const { stdout } = await run('psql', [uri, '-X', '-A', '-t', '-c', 'SELECT current_database()'], {
      env: { ...process.env, PGPASSWORD: 'acme-secret-1' },
      timeout: 20_000,
    });
    expect(stdout.trim()).toBe('acme');
  }, 180_000);

  it('stops everything on SIGINT, leaving no process behind', async () => {
    const pids = [fleet.coordinator.pid, ...fleet.hosts.map((h) => h.pid), ...fleet.routers.map((r) => r.pid)];
    const postgres = findPostgresInstances(fleet.hosts.map((h) => h.dataRoot)).map((i) => i.pid);
    expect(postgres.length).toBeGreaterThanOrEqual(1);
    launcher.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => launcher.once('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    expect([...pids, ...postgres].filter(isAlive)).toEqual([]);
    expect(JSON.parse(fs.readFileSync(path.join(stateDir, 'fleet.json'), 'utf8'))).toMatchObject({ state: 'stopped' });
    expect(output).toContain('local fleet stopped');
  }, 120_000);
});
