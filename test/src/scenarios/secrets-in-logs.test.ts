// Scenario "no secret in any log": a secure fleet (mTLS, join tokens, bearer tokens) goes
// through every path that handles a secret — components joining and restarting, tenant and user
// passwords through pgsctl and through REST with a bearer token, a password change, wrong passwords,
// operator tokens good and forged, a coordinator restart — and then every log file the fleet wrote
// (coordinator, agents, routers, tenant servers) holds no token, private key, connection string with
// a password, nor any of the secrets the test used.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findSecretsInFiles, logFilesUnder } from '../harness/log-secrets.js';
import { attempt } from '../harness/pg-clients.js';
import { runPgsctl } from '../harness/pgsctl.js';
import { waitUntil } from '../harness/poll.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';

/** A fresh secret, remembered for the scan. */
function secretMaker(used: string[]): (label: string) => string {
  return (label) => {
    const s = `${label}-${crypto.randomBytes(12).toString('base64url')}`;
    used.push(s);
    return s;
  };
}

describe('secrets in logs', () => {
  const fleet = useFleet({ name: 'secrets', block: 28, agents: 2, routers: 2 });
  const used: string[] = [];
  const secret = secretMaker(used);

  it('drives every secret-bearing path of a secure fleet', async () => {
    const f = fleet();
    const router = f.routers[0];
    if (!router) throw new Error('router expected');
    // The fleet started secure: every component joined with a certificate, none runs plaintext.
    for (const p of [f.coordinator, ...f.hosts.map((h) => h.process), ...f.routers.map((r) => r.process)])
      expect(p.tail(500), p.spec.name).not.toContain('"insecure":true');

    const t = tenantName('sec');
    const owner = secret('owner');
    await f.createTenant(t, { password: owner });

    // REST: refused without the bearer token, accepted with it.
    const rest = (method: string, url: string, body: unknown, bearer?: string) =>
      fetch(`http://${f.coordinatorHttp}${url}`, {
        method,
        headers: { 'content-type': 'application/json', ...(bearer ? { authorization: bearer } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    const appPassword = secret('app');
    expect((await rest('POST', `/v1/postgres/instances/${t}/users`, { name: 'app', password: appPassword })).status).toBe(401);
    const forged = `pgso_${crypto.randomBytes(32).toString('base64url')}`;
    used.push(forged);
    expect((await rest('POST', `/v1/postgres/instances/${t}/users`, { name: 'app', password: appPassword }, `Bearer ${forged}`)).status).toBe(401);
    const created = await rest('POST', `/v1/postgres/instances/${t}/users`, { name: 'app', password: appPassword }, f.security.bearer());
    expect(created.status, await created.clone().text()).toBe(201);
    const appLogin = { user: `app.${t}`, password: appPassword, database: t };
    await waitUntil(
      'app logs in through the router',
      () => attempt(router.endpoint, appLogin),
      (a) => a.ok,
      { timeoutMs: 30_000, intervalMs: 200 },
    );

    // A new password through REST: the old one stops working, the new one works.
    const appPassword2 = secret('app2');
    expect((await rest('PUT', `/v1/postgres/instances/${t}/users/app`, { password: appPassword2 }, f.security.bearer())).status).toBe(200);
    await waitUntil(
      'the new password works',
      () => attempt(router.endpoint, { ...appLogin, password: appPassword2 }),
      (a) => a.ok,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const old = await attempt(router.endpoint, appLogin);
    expect(old.ok).toBe(false);
    const wrong = await attempt(router.endpoint, { ...appLogin, password: secret('wrong') });
    expect(wrong).toMatchObject({ ok: false, code: '28P01' });

    // pgsctl: a user with a password from stdin, an operator token that works, a forged one that does not.
    const bob = secret('bob');
    await f.pgsctlJson(['user', 'create', t, 'bob', '--password-stdin'], bob);
    await waitUntil(
      'bob logs in',
      () => attempt(router.endpoint, { user: `bob.${t}`, password: bob, database: t }),
      (a) => a.ok,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const { token: reader } = await f.pgsctlJson<{ token: string }>([
      'token',
      'create',
      '--kind',
      'operator',
      '--name',
      'secrets-reader',
      '--role',
      'reader',
      '--ttl',
      '1h',
    ]);
    used.push(reader);
    const asReader = await runPgsctl(f.coordinatorGrpc, ['tenant', 'list'], { env: { PGS_CA: f.security.caFile, PGS_TOKEN: reader } });
    expect(asReader.code, asReader.stderr).toBe(0);
    const asForged = await runPgsctl(f.coordinatorGrpc, ['tenant', 'list'], { env: { PGS_CA: f.security.caFile, PGS_TOKEN: forged } });
    expect(asForged.code).not.toBe(0);

    // Restarts load the saved certificates (no token), and everything still serves.
    await f.killAgent(0, 'SIGTERM');
    await f.restartAgent(0);
    await f.killRouter(1, 'SIGTERM');
    await f.restartRouter(1);
    await f.killCoordinator('SIGTERM');
    await f.restartCoordinator();
    await waitUntil(
      'hosts READY again',
      () => f.hostStates(),
      (s) => Object.values(s).every((v) => v === 'READY'),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await f.waitServing({ user: t, password: owner, database: t }, 30_000);
  }, 300_000);

  it('finds no token, private key, connection string with a password, nor any secret used, in any log the fleet wrote', () => {
    const f = fleet();
    const files = logFilesUnder(f.root);
    const names = files.map((file) => path.relative(f.root, file));
    // The scan covers the processes' logs and the tenant servers' logs.
    for (const expected of ['logs/coordinator.log', 'logs/agent-h1.log', 'logs/agent-h2.log', 'logs/router-r1.log', 'logs/router-r2.log'])
      expect(names).toContain(expected);
    expect(
      names.some((n) => n.startsWith('h1/') || n.startsWith('h2/')),
      `no tenant server log among ${names.join(', ')}`,
    ).toBe(true);
    const known = [...used, fs.readFileSync(f.security.adminTokenFile, 'utf8').trim(), ...f.security.joinTokens];
    expect(f.security.joinTokens).toHaveLength(4);
    expect(findSecretsInFiles(files, known)).toEqual([]);
  });

  it('the scan itself finds what it looks for (it can fail)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-e2e-scan-'));
    try {
      const planted = secret('planted');
      const lines = [
        '{"msg":"fine","token":"pgso_…1a2b3c4d"}',
        `{"msg":"oops","token":"pgsj_${crypto.randomBytes(32).toString('base64url')}"}`,
        '-----BEGIN PRIVATE KEY-----',
        '{"uri":"postgresql://app:hunter2@10.0.0.1:5432/app"}',
        '{"uri":"postgresql://app@10.0.0.1:5432/app?sslmode=require"}',
        `{"password":"${planted}"}`,
      ];
      fs.mkdirSync(path.join(dir, 'logs'));
      fs.writeFileSync(path.join(dir, 'logs', 'app.out'), `${lines.join('\n')}\n`);
      const files = logFilesUnder(dir);
      expect(files).toHaveLength(1);
      expect(findSecretsInFiles(files, [planted]).map((x) => `${x.line} ${x.what}`)).toEqual([
        '2 join token',
        '3 private key',
        '4 connection string with a password',
        `6 known secret #0`,
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
