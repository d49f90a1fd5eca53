/**
 * A tenant's init scripts: SQL run once, in
 * order, when the tenant's primary first runs with its users and databases. Each script runs in one
 * transaction as the tenant's owner role, and the database records that it committed in the same
 * transaction, so a run cut short by a restart resumes after the last committed script and a script
 * that committed never runs twice. A failed script rolls back alone, leaves the tenant serving, and
 * waits for an operator to retry from it.
 *
 * The state machine: HELD (kept until released) -> PENDING -> RUNNING -> SUCCEEDED | FAILED;
 * FAILED -> PENDING on a retry. A RUNNING run whose answer never came is sent again.
 */
import { ValidationError } from './errors.js';
import { validateDatabaseName } from './names.js';

/** One script as asked for. */
export interface InitScript {
  name: string;
  sql: string;
  /** '' = the tenant's default database. */
  database: string;
}

export type InitSqlState = 'HELD' | 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** What the coordinator keeps of a tenant's scripts. */
export interface InitSqlRecord {
  tenantId: string;
  scripts: InitScript[];
  state: InitSqlState;
  /** Scripts committed so far. */
  applied: number;
  failedScript: string;
  error: string;
  /** Runs started; names the command of the current one. */
  attempt: number;
  /** The tenant's instance revision the primary must have realized first (its users and databases). */
  afterRevision: number;
  updatedAt: number;
}

export const MAX_INIT_SCRIPTS = 32;
/** All scripts together: they travel in one message to the agent and live in one store row. */
export const MAX_INIT_SQL_BYTES = 1024 * 1024;
const MAX_SCRIPT_NAME = 200;

/** UTF-8 length of a string (surrogate pairs are 4 bytes). */
function utf8Length(text: string): number {
  let n = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0) ?? 0;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** Checks the scripts of a create request; returns them with names filled in ("script-<n>"). */
export function validateInitScripts(scripts: readonly InitScript[], field = 'init_sql'): InitScript[] {
  if (scripts.length > MAX_INIT_SCRIPTS) throw new ValidationError(field, `${scripts.length} scripts`, `at most ${MAX_INIT_SCRIPTS} scripts (join small ones)`);
  let bytes = 0;
  return scripts.map((s, i) => {
    const at = `${field}[${i}]`;
    const name = s.name.trim() === '' ? `script-${i + 1}` : s.name;
    if (name.length > MAX_SCRIPT_NAME || [...name].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20))
      throw new ValidationError(`${at}.name`, name, `1 to ${MAX_SCRIPT_NAME} printable characters`);
    if (s.sql.trim() === '') throw new ValidationError(`${at}.sql`, s.sql, 'SQL text (the script is empty)');
    if (s.sql.includes('\u0000')) throw new ValidationError(`${at}.sql`, `${s.sql.length} characters with a NUL`, 'SQL text without NUL characters');
    bytes += utf8Length(s.sql);
    if (bytes > MAX_INIT_SQL_BYTES)
      throw new ValidationError(field, `${bytes} bytes`, `at most ${MAX_INIT_SQL_BYTES} bytes of SQL in all (load bulk data after creation)`);
    const database = s.database === '' ? '' : validateDatabaseName(s.database, `${at}.database`);
    return { name, sql: s.sql, database };
  });
}

/** The record of a new tenant's scripts: HELD when asked, else PENDING after its first revision. */
export function newInitSql(tenantId: string, scripts: InitScript[], hold: boolean, instanceRevision: number, now: number): InitSqlRecord {
  return {
    tenantId,
    scripts,
    state: hold ? 'HELD' : 'PENDING',
    applied: 0,
    failedScript: '',
    error: '',
    attempt: 0,
    afterRevision: instanceRevision,
    updatedAt: now,
  };
}

/** Why a release or retry is refused; undefined = allowed. */
export function releaseRefusal(r: InitSqlRecord): string | undefined {
  if (r.state === 'SUCCEEDED') return 'its init scripts already ran; they never run twice';
  return undefined;
}

/**
 * HELD or FAILED -> PENDING, after what the tenant holds now (`instanceRevision`: users and
 * databases made since creation exist before the scripts run). PENDING and RUNNING stay as they are.
 */
export function releaseInitSql(r: InitSqlRecord, instanceRevision: number, now: number): InitSqlRecord {
  if (r.state !== 'HELD' && r.state !== 'FAILED') return r;
  return { ...r, state: 'PENDING', failedScript: '', error: '', afterRevision: Math.max(r.afterRevision, instanceRevision), updatedAt: now };
}

/** What the primary looks like, for deciding whether to send the scripts. */
export interface InitSqlPrimary {
  realized: boolean;
  running: boolean;
  connected: boolean;
  /** The instance revision the primary last realized. */
  realizedRevision: number;
}

/** Whether to send the scripts now: a PENDING run is started, a RUNNING one sent again when its answer is overdue. */
export function initSqlSendDue(
  r: InitSqlRecord,
  primary: InitSqlPrimary | undefined,
  lastSentAt: number | undefined,
  now: number,
  resendAfterMs: number,
): boolean {
  if (r.state !== 'PENDING' && r.state !== 'RUNNING') return false;
  if (!primary || !primary.realized || !primary.running || !primary.connected || primary.realizedRevision < r.afterRevision) return false;
  if (r.state === 'PENDING') return true;
  // RUNNING: sent by an earlier coordinator process (no send time here), or unanswered for too long
  // (the agent restarted and lost the command). Sending again is safe: committed scripts are skipped.
  return lastSentAt === undefined || now - lastSentAt >= resendAfterMs;
}

/** PENDING -> RUNNING with the next attempt number (RUNNING stays, keeping its attempt). */
export function startInitSql(r: InitSqlRecord, now: number): InitSqlRecord {
  if (r.state === 'RUNNING') return r;
  return { ...r, state: 'RUNNING', attempt: r.attempt + 1, updatedAt: now };
}

/** An agent's answer to one run. */
export interface InitSqlOutcome {
  attempt: number;
  applied: number;
  failedScript: string;
  error: string;
}

/** Applies an answer: undefined when it is for another run or the run is over (a duplicate). */
export function finishInitSql(r: InitSqlRecord, o: InitSqlOutcome, now: number): InitSqlRecord | undefined {
  if (r.state !== 'RUNNING' || o.attempt !== r.attempt) return undefined;
  const applied = Math.min(Math.max(o.applied, r.applied), r.scripts.length);
  if (o.error === '' && applied === r.scripts.length) return { ...r, state: 'SUCCEEDED', applied, failedScript: '', error: '', updatedAt: now };
  const failedScript = o.failedScript || r.scripts[applied]?.name || '';
  return { ...r, state: 'FAILED', applied, failedScript, error: o.error || 'the agent reported no error but not every script committed', updatedAt: now };
}
