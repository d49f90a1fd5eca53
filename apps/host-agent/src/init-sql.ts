/**
 * A tenant's init scripts, run on its primary. Tenant SQL never runs as the superuser (a superuser
 * can reach the host's shell, e.g. COPY ... TO PROGRAM): the agent makes a short-lived login role
 * that is a member of the database's owner, logs in as it over the instance's unix socket with
 * SCRAM, and runs each script as that owner (SET LOCAL ROLE). Afterwards whatever the role came to
 * own goes to the database's owner and the role is dropped.
 *
 * Exactly once: each script runs in one transaction that also inserts its row into
 * pgs_init.applied (superuser-owned; the owner may only read and insert), under a transaction-level
 * advisory lock, so a run sent again after a restart, even while the first is still going, skips
 * every script that committed. A script that ends the transaction itself (COMMIT, ROLLBACK) is
 * reported as failed: its effects cannot be tied to its record any more.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { scramVerifierAsync } from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import type { AdminConnect, InstanceAdmin } from './instance-admin.js';
import { messageOf } from './errors.js';
import type { InitScriptSpec, InitSqlRunResult } from './model.js';
import { quoteIdent, quoteLiteral } from './sql-quote.js';

// One key for every init run of a database: two runs of the same scripts take turns.
const ADVISORY_KEY = 0x70677369; // "pgsi"

/** The marker table, created by the superuser in every database a script runs in. */
function markerSql(owner: string): string[] {
  return [
    'CREATE SCHEMA IF NOT EXISTS pgs_init AUTHORIZATION postgres',
    `CREATE TABLE IF NOT EXISTS pgs_init.applied (seq integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    "COMMENT ON TABLE pgs_init.applied IS 'init scripts that committed (pgs runs each once)'",
    'REVOKE ALL ON SCHEMA pgs_init FROM PUBLIC',
    `GRANT USAGE ON SCHEMA pgs_init TO ${quoteIdent(owner)}`,
    `GRANT SELECT, INSERT ON pgs_init.applied TO ${quoteIdent(owner)}`,
  ];
}

/** PostgreSQL's error as one line: message, detail, where in the script, SQLSTATE. */
function describe(err: unknown, sql: string): { error: string; sqlstate: string } {
  if (!(err instanceof pg.DatabaseError)) return { error: messageOf(err), sqlstate: '' };
  const parts = [err.message];
  if (err.detail) parts.push(`detail: ${err.detail}`);
  if (err.position) {
    const at = Number(err.position) - 1;
    const line = sql.slice(0, Math.max(0, at)).split('\n').length;
    parts.push(`at line ${line}`);
  }
  return { error: `${parts.join('; ')} (SQLSTATE ${err.code ?? 'unknown'})`, sqlstate: err.code ?? '' };
}

/** Runs init scripts inside one tenant's primary. */
export class InitSqlExecutor {
  constructor(
    private readonly admin: InstanceAdmin,
    private readonly connect: AdminConnect,
    private readonly log: Logger,
  ) {}

  /** Runs `scripts` in order, stopping at the first failure. */
  async run(tenantId: string, scripts: readonly InitScriptSpec[]): Promise<InitSqlRunResult> {
    const dbOf = (s: InitScriptSpec): string => (s.database === '' ? tenantId : s.database);
    const owners = await this.admin.withClient(tenantId, 'postgres', async (c) => {
      const r = await c.query<{ datname: string; owner: string }>('select datname, pg_get_userbyid(datdba) as owner from pg_database where datname = any($1)', [
        [...new Set(scripts.map(dbOf))],
      ]);
      return new Map(r.rows.map((row) => [row.datname, row.owner]));
    });
    const role = `pgs_init_${randomBytes(6).toString('hex')}`;
    const password = randomBytes(24).toString('base64url');
    const verifier = await scramVerifierAsync(password, { iterations: 4096 });
    const members = [...new Set(owners.values())];
    await this.admin.withClient(tenantId, 'postgres', async (c) => {
      // VALID UNTIL: a role left behind by a crash cannot log in for long.
      const until = new Date(Date.now() + 3_600_000).toISOString();
      await c.query(
        `CREATE ROLE ${quoteIdent(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${quoteLiteral(verifier)} VALID UNTIL ${quoteLiteral(until)}`,
      );
      for (const owner of members) await c.query(`GRANT ${quoteIdent(owner)} TO ${quoteIdent(role)}`);
    });
    const prepared = new Set<string>();
    let applied = 0;
    try {
      for (const [seq, script] of scripts.entries()) {
        const database = dbOf(script);
        const owner = owners.get(database);
        if (owner === undefined)
          return {
            applied,
            failedScript: script.name,
            error: `database "${database}" does not exist in tenant ${tenantId} (create it first, or name another database)`,
            sqlstate: '3D000',
          };
        if (!prepared.has(database)) {
          await this.admin.withClient(tenantId, database, async (c) => {
            for (const statement of markerSql(owner)) await c.query(statement);
          });
          prepared.add(database);
        }
        const outcome = await this.runOne(tenantId, { database, owner, role, password }, seq, script);
        if (outcome !== 'ok' && outcome !== 'skipped') return { applied, failedScript: script.name, ...outcome };
        applied++;
        this.log.info(
          { tenantId, script: script.name, database, outcome },
          outcome === 'ok' ? 'init script committed' : 'init script committed before; skipped',
        );
      }
      return { applied, failedScript: '', error: '', sqlstate: '' };
    } finally {
      await this.dropRole(tenantId, role, owners, prepared);
    }
  }

  /** One script in one transaction with its marker row. */
  private async runOne(
    tenantId: string,
    as: { database: string; owner: string; role: string; password: string },
    seq: number,
    script: InitScriptSpec,
  ): Promise<'ok' | 'skipped' | { error: string; sqlstate: string }> {
    const client = new pg.Client({
      ...this.connect(tenantId, as.database),
      user: as.role,
      password: as.password,
      application_name: 'pgs-init-sql',
      connectionTimeoutMillis: 5000,
    });
    client.on('error', (err) => this.log.debug({ tenantId, err }, 'init script connection error'));
    try {
      await client.connect();
    } catch (err) {
      return describe(err, '');
    }
    let open = false;
    try {
      await client.query('BEGIN');
      open = true;
      await client.query(`SET LOCAL ROLE ${quoteIdent(as.owner)}`);
      await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_KEY]);
      const done = await client.query('SELECT 1 FROM pgs_init.applied WHERE seq = $1', [seq]);
      if ((done.rowCount ?? 0) > 0) {
        await client.query('ROLLBACK');
        open = false;
        return 'skipped';
      }
      const before = await client.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x');
      try {
        await client.query(script.sql);
      } catch (err) {
        return describe(err, script.sql);
      }
      const after = await client.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x');
      if (after.rows[0]?.x !== before.rows[0]?.x) {
        return {
          error: 'the script ended its transaction (COMMIT or ROLLBACK): init scripts run in one transaction each; remove the transaction control',
          sqlstate: '',
        };
      }
      // RESET ROLE inside the script would leave the insert to the short-lived role: set it again.
      await client.query(`SET LOCAL ROLE ${quoteIdent(as.owner)}`);
      const sha256 = createHash('sha256').update(script.sql).digest('hex');
      await client.query('INSERT INTO pgs_init.applied (seq, name, sha256) VALUES ($1, $2, $3)', [seq, script.name, sha256]);
      await client.query('COMMIT');
      open = false;
      return 'ok';
    } catch (err) {
      return describe(err, script.sql);
    } finally {
      if (open) await client.query('ROLLBACK').catch((err: unknown) => this.log.debug({ tenantId, err }, 'rollback of an init script failed'));
      await client.end().catch((err: unknown) => this.log.debug({ tenantId, err }, 'closing an init script connection failed'));
    }
  }

  /** Gives what the short-lived role owns to each database's owner, then drops it. */
  private async dropRole(tenantId: string, role: string, owners: ReadonlyMap<string, string>, databases: ReadonlySet<string>): Promise<void> {
    try {
      for (const database of databases) {
        const owner = owners.get(database);
        if (owner === undefined) continue;
        await this.admin.withClient(tenantId, database, async (c) => {
          await c.query(`REASSIGN OWNED BY ${quoteIdent(role)} TO ${quoteIdent(owner)}`);
          await c.query(`DROP OWNED BY ${quoteIdent(role)}`);
        });
      }
      await this.admin.withClient(tenantId, 'postgres', (c) => c.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`));
    } catch (err) {
      // It expires within the hour (VALID UNTIL) and owns nothing a tenant relies on.
      this.log.warn({ tenantId, role, err }, 'dropping the init script role failed');
    }
  }
}
