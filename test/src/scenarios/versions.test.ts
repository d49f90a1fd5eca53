// Several PostgreSQL majors side by side: tenants on 15 (the distribution's, with its client tools
// and pgBackRest) and on 16, 17 and 18 (server binaries only, from
// apps/host-agent/scripts/setup-postgres-versions.sh) on one fleet, each reachable through both
// routers with cancel working (protocol 3.2 and its 32-byte keys against 18), the catalog telling
// what each major can do, and what it cannot refused at create.
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { connect, type Endpoint, type Login } from '../harness/pg-clients.js';
import { waitUntil } from '../harness/poll.js';
import { connectProtocol, sendCancel } from '../harness/protocol-client.js';
import { ownerLogin } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';

/** Where the setup script installs the extra majors (the agents' default --postgres-bin-dirs include it). */
const VERSIONS_DIR = '/var/lib/pgs/postgres';
const EXTRA = ['16', '17', '18'] as const;
const missing = EXTRA.filter((m) => !fs.existsSync(path.join(VERSIONS_DIR, m, 'bin', 'postgres')));
if (missing.length > 0) {
  console.warn(
    `versions scenario skipped: PostgreSQL ${missing.join(', ')} not in ${VERSIONS_DIR}; run apps/host-agent/scripts/setup-postgres-versions.sh (as root) to install them`,
  );
}

interface VersionJson {
  id: string;
  default: boolean;
  hosts: string[];
  serverVersions: string[];
  replicas: boolean;
  backups: boolean;
  limitations: string;
}

/** The query `sql` on `client` ends with this SQLSTATE ('finished' when it ran to the end). */
function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'finished',
    (err: { code?: string }) => err.code ?? 'no code',
  );
}

/** Waits until the tenant's server runs `select pg_sleep(30)` (seen through `admin`). */
async function sleeping(at: Endpoint, login: Login): Promise<void> {
  const watcher = await connect(at, login);
  try {
    await waitUntil(
      'pg_sleep running',
      async () =>
        (await watcher.query("select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'")).rows[0].n as number,
      (n) => n === 1,
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  } finally {
    await watcher.end();
  }
}

/** psql (the distribution's) on libpq 18 from the versions directory, asking for protocol 3.2. */
function psql18(at: Endpoint, login: Login, sql: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, LD_LIBRARY_PATH: path.join(VERSIONS_DIR, '18', 'lib'), PGPASSWORD: login.password, PGCONNECT_TIMEOUT: '10' };
  const conninfo = `host=${at.host} port=${at.port} user=${login.user} dbname=${login.database} sslmode=disable max_protocol_version=3.2`;
  return new Promise((resolve) => {
    execFile('psql', ['-X', '-w', '-At', '-v', 'ON_ERROR_STOP=1', '-d', conninfo, '-c', sql], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : err ? -1 : 0, stdout, stderr });
    });
  });
}

describe.skipIf(missing.length > 0)('PostgreSQL 15, 16, 17 and 18 side by side', () => {
  const fleet = useFleet({ name: 'versions', block: 34, agents: 2, routers: 2, backups: true, readyTimeoutMs: 120_000 }, 240_000);
  const password = 'versions-secret-1';
  const tenants = new Map<string, string>();

  it('the catalog lists every major the hosts run, with what each supports, and 15 as the default', async () => {
    const f = fleet();
    const { versions } = await f.pgsctlJson<{ versions: VersionJson[] }>(['version', 'list']);
    expect(versions.map((v) => v.id)).toEqual(['18', '17', '16', '15']);
    for (const v of versions) expect(v.hosts).toEqual(['h1', 'h2']);
    const v15 = versions.find((v) => v.id === '15');
    expect(v15).toMatchObject({ default: true, replicas: true, backups: true, limitations: '' });
    for (const id of EXTRA) {
      const v = versions.find((x) => x.id === id);
      expect(v).toMatchObject({ default: false, replicas: false, backups: false });
      expect(v?.serverVersions[0]).toMatch(new RegExp(`^${id}\\.\\d+$`));
      // pgBackRest 2.45 (Debian 12) refuses 16's control file; 2.52 would take 17.
      expect(v?.limitations).toMatch(new RegExp(`no replicas: no host that runs it has pg_basebackup ${id}; no backups: .*pgBackRest`));
    }
    const rest = await fetch(`http://${f.coordinatorHttp}/v1/types/postgres/versions/18`, { headers: { authorization: f.security.bearer() } });
    expect(await rest.json()).toMatchObject({ uuid: '18', hosts: ['h1', 'h2'], replicas_supported: false, backups_supported: false });
  });

  it('tenants on 15, 16, 17 and 18 answer select version() through both routers, with cancel from either router', async () => {
    const f = fleet();
    for (const major of ['15', ...EXTRA]) tenants.set(major, tenantName(`v${major}`));
    // Created together; a major's first tenant on a host also makes that major's template (initdb).
    const started = Date.now();
    await Promise.all(
      [...tenants].map(async ([major, id]) => {
        await f.createTenant(id, { password, extraArgs: ['--version', major, ...(major === '15' ? [] : ['--no-backups'])] });
        console.log(`versions: tenant on PostgreSQL ${major} serving through both routers ${Date.now() - started} ms after the creates started`);
      }),
    );
    for (const [major, id] of tenants) expect((await f.tenant(id)).tenant.spec.version).toBe(major);
    for (const [major, id] of tenants) {
      const login = ownerLogin(id, password);
      for (const [i, router] of f.routers.entries()) {
        const other = f.routers[1 - i] as (typeof f.routers)[number];
        const client = await connect(router.endpoint, login);
        try {
          const { rows } = await client.query("select version() as v, current_setting('server_version_num')::int / 10000 as major");
          expect(rows[0].v).toMatch(new RegExp(`^PostgreSQL ${major}\\.`));
          expect(String(rows[0].major)).toBe(major);
          // Cancel with the key this router issued, sent to the other router (protocol 3.0, 4-byte key).
          const key = client as unknown as { processID: number; secretKey: number };
          const running = outcome(client.query('select pg_sleep(30)'));
          await sleeping(router.endpoint, login);
          const secret = Buffer.alloc(4);
          secret.writeInt32BE(key.secretKey);
          await sendCancel(other.endpoint, key.processID, secret);
          expect(await running, `cancel of a ${major} query issued by ${router.id}, sent to ${other.id}`).toBe('57014');
        } finally {
          await client.end().catch(() => undefined);
        }
      }
    }
  }, 300_000);

  it('protocol 3.2 against PostgreSQL 18: negotiated through the router, 32-byte cancel keys that work through the other router; 15 negotiates down to 3.0', async () => {
    const f = fleet();
    const id18 = tenants.get('18') as string;
    const id15 = tenants.get('15') as string;
    const [r1, r2] = f.routers;
    if (!r1 || !r2) throw new Error('two routers expected');
    // Every pool mode: the router's own hello (session, transaction) and the piped one (none).
    for (const mode of ['session', 'transaction', 'none']) {
      const set = await f.pgsctl(['tenant', 'update', id18, '--pool-mode', mode]);
      expect(set.code, set.stderr).toBe(0);
      await f.waitRoutersAt((await f.routeTable()).revision);
      const s = await connectProtocol(r1.endpoint, ownerLogin(id18, password), 2);
      try {
        expect(s.protocol, mode).toEqual({ major: 3, minor: 2 });
        expect(s.secretKey.length, mode).toBe(32);
        expect(await s.query('select version()')).toEqual([expect.stringMatching(/^PostgreSQL 18\./)]);
        const running = outcome(s.query('select pg_sleep(30)'));
        await sleeping(r1.endpoint, ownerLogin(id18, password));
        await sendCancel(r2.endpoint, s.processId, s.secretKey);
        expect(await running, `cancel in pool mode ${mode}`).toBe('57014');
      } finally {
        s.close();
      }
    }
    const old = await connectProtocol(r2.endpoint, ownerLogin(id15, password), 2);
    try {
      expect(old.protocol).toEqual({ major: 3, minor: 0 });
      expect(old.secretKey.length).toBe(4);
      expect(await old.query('select version()')).toEqual([expect.stringMatching(/^PostgreSQL 15\./)]);
    } finally {
      old.close();
    }
    // libpq 18 (psql with max_protocol_version=3.2) through both routers.
    for (const router of f.routers) {
      const out = await psql18(router.endpoint, ownerLogin(id18, password), 'select version()');
      expect(out, out.stderr).toMatchObject({ code: 0, stdout: expect.stringMatching(/^PostgreSQL 18\./) });
    }
  }, 240_000);

  it('refuses what a major cannot do here, at create, saying why', async () => {
    const f = fleet();
    const replicas = await f.pgsctl(['tenant', 'create', tenantName('r18'), '--version', '18', '--replicas', '1', '--no-backups']);
    expect(replicas.code, replicas.stdout).toBe(4);
    expect(replicas.stderr).toMatch(/PostgreSQL 18 cannot have replicas here: no replicas: no host that runs it has pg_basebackup 18/);
    const backups = await f.pgsctl(['tenant', 'create', tenantName('b17'), '--version', '17']);
    expect(backups.code, backups.stdout).toBe(4);
    expect(backups.stderr).toMatch(/PostgreSQL 17 cannot be backed up here: .*pgBackRest 2\.45 backs up PostgreSQL up to 15.*Disable the tenant's backups/);
    const unknown = await f.pgsctl(['tenant', 'create', tenantName('u14'), '--version', '14']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/one of 18, 17, 16, 15/);
    // A 15 tenant with a replica is fine: 15 has its pg_basebackup.
    const ok = await f.pgsctl(['tenant', 'create', tenantName('r15'), '--version', '15', '--replicas', '1']);
    expect(ok.code, ok.stderr).toBe(0);
  }, 180_000);
});
