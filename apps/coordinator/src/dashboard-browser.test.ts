/**
 * The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core)
 * against a real coordinator process with a fake agent on it: a wrong token shows the sign-in
 * error; the admin token shows hosts and tenants; a tenant created with pgsctl appears live (the
 * event stream, no reload), turns ACTIVE as its placement is realized and shows its first backup;
 * search filters; the keyboard opens a tenant's page; a token refused mid-session returns to
 * sign-in. Screenshots go to apps/coordinator/.artifacts/dashboard/ (git-ignored). Skipped only when Chromium is missing
 * (apps/coordinator/scripts/setup-chromium.sh installs it; CI runs that script).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@pgs/pg-testkit';
import { credentials } from '@grpc/grpc-js';
import { CoordinatorService } from '@pgs/proto';
import { createClient } from '@pgs/rpc';
import { bearerMetadata } from '@pgs/security';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withCallMetadata } from './testing/call-metadata.js';
import { eventually } from './testing/harness.js';
import { FakeAgent } from './testing/fake-agent.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
const appDir = path.resolve(import.meta.dirname, '..');
const artifacts = path.join(appDir, '.artifacts', 'dashboard');
// Without the background-networking flags Chromium dials out at start, which a closed network refuses.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

if (!hasChromium) console.warn(`dashboard browser test skipped: ${CHROMIUM} is missing (install it with apps/coordinator/scripts/setup-chromium.sh)`);

let child: ChildProcess | undefined;
let agent: FakeAgent | undefined;
let context: BrowserContext | undefined;
let output = '';
let base = '';
let grpcAddress = '';
let adminToken = '';
let adminTokenFile = '';
const temp: string[] = [];

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temp.push(dir);
  return dir;
}

async function rest(method: string, p: string, body?: unknown): Promise<Response> {
  return fetch(`${base}${p}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Runs the built pgsctl (tools/pgsctl, built before tests run) as an operator would, against the test's coordinator. */
async function pgsctl(...args: string[]): Promise<{ code: number | null; output: string }> {
  const bin = path.resolve(appDir, '../../tools/pgsctl/bin/pgsctl.js');
  const child = spawn(process.execPath, [bin, '--coordinator', grpcAddress, '--insecure', '--token-file', adminTokenFile, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, HOME: tempDir('pgs-pgsctl-home-') },
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  child.stdin.end('beta-password-1');
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output };
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

describe.skipIf(!hasChromium)(`dashboard in headless Chromium (${CHROMIUM})`, () => {
  beforeAll(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    const dataDir = tempDir('pgs-coord-ui-');
    const grpc = `127.0.0.1:${await freePort()}`;
    const http = `127.0.0.1:${await freePort()}`;
    base = `http://${http}`;
    grpcAddress = grpc;
    // --insecure so the fake agent needs no certificate; operators (and the page) still need tokens.
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/main.ts',
        '--data-dir',
        dataDir,
        '--grpc-listen',
        grpc,
        '--http-listen',
        http,
        '--insecure',
        '--reconcile-interval',
        '100',
        '--backup-repo',
        `posix:${tempDir('pgs-coord-ui-repo-')}`,
      ],
      {
        cwd: appDir,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    await eventually(
      () => output.includes('coordinator listening') || (child?.exitCode !== null ? Promise.reject(new Error(output)) : false),
      // tsx compiles the coordinator on start: over 30 s on a loaded two-core machine.
      90_000,
      'coordinator listening',
    );
    adminTokenFile = path.join(dataDir, 'admin.token');
    adminToken = fs.readFileSync(adminTokenFile, 'utf8').trim();
    agent = new FakeAgent({ hostId: 'ui-host-1', address: '127.0.0.71', coordinator: grpc, autoRealize: true });
    await agent.connect();
    expect((await rest('POST', '/v1/postgres/instances', { name: 'alpha', description: 'first tenant', password: 'alpha-password-1' })).status).toBe(201);
    context = await chromium.launchPersistentContext(tempDir('pgs-chromium-'), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
  }, 150_000);

  afterAll(async () => {
    await context?.close();
    await agent?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    for (const dir of temp) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('signs in, follows the fleet live, filters, opens a tenant, and returns to sign-in on a refused token', async () => {
    const page = await context!.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (m) => {
      if (/Content Security Policy|Uncaught/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    const first = await page.goto(`${base}/ui`);
    expect(first?.headers()['content-security-policy']).toContain("default-src 'none'");

    // A wrong token: the sign-in form says so.
    await page.getByLabel('Operator token').fill('pgs-wrong-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#login-error', { hasText: 'refused' }).waitFor({ timeout: 10_000 });
    expect(await page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(true);
    await shot(page, '1-wrong-token');

    // The admin token: tenants, hosts, and the live stream.
    await page.getByLabel('Operator token').fill(adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('tr[data-tenant="alpha"]').waitFor({ timeout: 10_000 });
    await page.locator('tr[data-host="ui-host-1"]', { hasText: 'READY' }).waitFor({ timeout: 10_000 });
    await page.locator('#live[data-state="live"]').waitFor({ timeout: 10_000 });
    expect(await page.evaluate("sessionStorage.getItem('pgs.token')")).toBe(adminToken);
    await shot(page, '2-fleet');

    // A tenant created by an operator with pgsctl appears without a reload and turns ACTIVE as the agent realizes it.
    // Page-side code is given as expressions: this file is type-checked without the DOM library.
    await page.evaluate('window.notReloaded = true');
    const created = await pgsctl('tenant', 'create', 'beta', '--description', 'made while watching', '--password-stdin');
    expect(created.code, created.output).toBe(0);
    await page.locator('tr[data-tenant="beta"]').waitFor({ timeout: 10_000 });
    await page.locator('#events li', { hasText: 'tenant beta' }).first().waitFor({ timeout: 10_000 });
    await page.locator('tr[data-tenant="beta"]', { hasText: 'ACTIVE' }).waitFor({ timeout: 20_000 });
    await page.locator('tr[data-tenant="beta"]', { hasText: 'ui-host-1' }).waitFor({ timeout: 10_000 });
    // Backups are on (a posix repository; the fake agent "takes" them): the first one shows up live.
    await page.locator('tr[data-tenant="beta"]', { hasText: 'last good' }).waitFor({ timeout: 20_000 });
    expect(await page.evaluate('window.notReloaded')).toBe(true);
    await shot(page, '3-live-tenant');

    // Search narrows the list; clearing it brings every row back.
    await page.getByLabel('Search tenants').fill('bet');
    await eventually(async () => (await page.locator('#tenants tbody tr').count()) === 1, 5000, 'one row after search');
    expect(await page.locator('tr[data-tenant="beta"]').count()).toBe(1);
    await page.getByLabel('Search tenants').fill('');
    await eventually(async () => (await page.locator('#tenants tbody tr').count()) === 2, 5000, 'two rows after clearing');

    // The keyboard opens a tenant's page: spec, placements, users, databases, events.
    await page.locator('tr[data-tenant="alpha"] a').focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Tenant alpha' }).waitFor({ timeout: 10_000 });
    await page.locator('#tenant-spec', { hasText: 'first tenant' }).waitFor({ timeout: 10_000 });
    await page.locator('#tenant-placements', { hasText: 'ui-host-1' }).waitFor({ timeout: 10_000 });
    await page.locator('#tenant-users tbody', { hasText: 'alpha' }).waitFor({ timeout: 10_000 });
    await page.locator('#tenant-databases tbody', { hasText: 'alpha' }).waitFor({ timeout: 10_000 });
    await page.locator('#tenant-events', { hasText: 'tenant.create' }).waitFor({ timeout: 10_000 });
    await page.locator('#tenant-backups tbody', { hasText: 'SUCCEEDED' }).waitFor({ timeout: 10_000 });
    expect(await page.evaluate('document.activeElement?.id')).toBe('tenant-title');
    await shot(page, '4-tenant-page');

    // A token refused mid-session (here: replaced by a wrong one) returns to sign-in with the reason.
    await page.evaluate("sessionStorage.setItem('pgs.token', 'pgs-revoked-token')");
    await page.getByRole('link', { name: /All tenants/ }).click();
    await page.evaluate("location.hash = '#/tenant/beta'");
    await page.locator('#login-error', { hasText: 'refused' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#login').isVisible()).toBe(true);
    expect(await page.evaluate("sessionStorage.getItem('pgs.token')")).toBeNull();
    await shot(page, '5-signed-out');

    expect(problems).toEqual([]);
  }, 120_000);

  it('keeps a tenant-scoped token to its tenants, and is operable by keyboard with labelled controls', async () => {
    const admin = createClient(CoordinatorService, grpcAddress, credentials.createInsecure(), withCallMetadata(bearerMetadata(adminToken)));
    let token: string;
    try {
      ({ token } = await admin.createOperatorToken({ name: 'ui-reader-alpha', role: 'tenant-reader', tenantIds: ['alpha'], ttlSeconds: 600 }));
    } finally {
      admin.close();
    }
    const page = await context!.newPage();
    await page.goto(`${base}/ui`);

    // The first Tab reaches the skip link; the sign-in field and every control has a label.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Skip to content');
    const unlabelled = await page.evaluate("[...document.querySelectorAll('input, select')].filter((e) => e.labels.length === 0).map((e) => e.id)");
    expect(unlabelled).toEqual([]);

    await page.getByLabel('Operator token').fill(token);
    await page.getByLabel('Operator token').press('Enter');
    await page.locator('tr[data-tenant="alpha"]').waitFor({ timeout: 10_000 });
    await page.locator('#live[data-state="live"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#tenants tbody tr').count()).toBe(1);
    // Hosts are fleet-wide (ListHosts is refused to a tenant-scoped token): the page says so.
    await page.locator('#hosts-note', { hasText: 'not shown' }).waitFor({ timeout: 10_000 });
    // A tenant it may not see never shows up live, while its own tenant's events do.
    expect((await rest('POST', '/v1/postgres/instances', { name: 'gamma', password: 'gamma-password-1' })).status).toBe(201);
    expect((await rest('PUT', '/v1/postgres/instances/alpha/access', { external_access: true })).status).toBe(200);
    await page.locator('#events li.fresh', { hasText: 'tenant.access.enable' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('tr[data-tenant="gamma"]').count()).toBe(0);
    expect(await page.locator('#events li', { hasText: 'tenant gamma' }).count()).toBe(0);
    await shot(page, '6-tenant-scoped');
  }, 60_000);
});
