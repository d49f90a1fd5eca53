import { describe, expect, it } from 'vitest';
import {
  finishInitSql,
  initSqlSendDue,
  newInitSql,
  releaseInitSql,
  releaseRefusal,
  startInitSql,
  validateInitScripts,
  MAX_INIT_SCRIPTS,
  type InitSqlPrimary,
} from './init-sql.js';
import { ValidationError } from './errors.js';

const scripts = [
  { name: '001.sql', sql: 'create table t (id int)', database: '' },
  { name: '', sql: 'insert into t values (1)', database: 'orders' },
];
const ready: InitSqlPrimary = { realized: true, running: true, connected: true, realizedRevision: 3 };

describe('validateInitScripts', () => {
  it('names unnamed scripts by position and keeps the order', () => {
    expect(validateInitScripts(scripts).map((s) => s.name)).toEqual(['001.sql', 'script-2']);
  });
  it('refuses empty SQL, a bad database, too many scripts, too much SQL', () => {
    expect(() => validateInitScripts([{ name: 'a', sql: '  ', database: '' }])).toThrow(/init_sql\[0\]\.sql/);
    expect(() => validateInitScripts([{ name: 'a', sql: 'select 1', database: 'bad name' }])).toThrow(ValidationError);
    expect(() => validateInitScripts(Array.from({ length: MAX_INIT_SCRIPTS + 1 }, () => scripts[0]!))).toThrow(/at most 32/);
    expect(() => validateInitScripts([{ name: 'big', sql: 'é'.repeat(600 * 1024), database: '' }])).toThrow(/bytes/);
  });
});

describe('the init SQL state machine', () => {
  it('sends a PENDING run once the primary realized the revision with its users and databases', () => {
    const r = newInitSql('acme', validateInitScripts(scripts), false, 3, 0);
    expect(initSqlSendDue(r, { ...ready, realizedRevision: 2 }, undefined, 10, 15_000)).toBe(false);
    expect(initSqlSendDue(r, { ...ready, connected: false }, undefined, 10, 15_000)).toBe(false);
    expect(initSqlSendDue(r, undefined, undefined, 10, 15_000)).toBe(false);
    expect(initSqlSendDue(r, ready, undefined, 10, 15_000)).toBe(true);
  });
  it('keeps HELD scripts until released, after the revision of that moment', () => {
    const held = newInitSql('acme', validateInitScripts(scripts), true, 1, 0);
    expect(initSqlSendDue(held, ready, undefined, 10, 15_000)).toBe(false);
    const released = releaseInitSql(held, 5, 20);
    expect(released.state).toBe('PENDING');
    expect(initSqlSendDue(released, ready, undefined, 30, 15_000)).toBe(false);
    expect(initSqlSendDue(released, { ...ready, realizedRevision: 5 }, undefined, 30, 15_000)).toBe(true);
  });
  it('sends a RUNNING run again only when its answer is overdue or no send is known', () => {
    const running = startInitSql(newInitSql('acme', scripts, false, 1, 0), 0);
    expect(running).toMatchObject({ state: 'RUNNING', attempt: 1 });
    expect(startInitSql(running, 5).attempt).toBe(1);
    expect(initSqlSendDue(running, ready, 0, 14_999, 15_000)).toBe(false);
    expect(initSqlSendDue(running, ready, 0, 15_000, 15_000)).toBe(true);
    expect(initSqlSendDue(running, ready, undefined, 1, 15_000)).toBe(true);
  });
  it('finishes SUCCEEDED or FAILED with the failing script; a retry runs again from it; success is final', () => {
    const running = startInitSql(newInitSql('acme', validateInitScripts(scripts), false, 1, 0), 0);
    expect(finishInitSql(running, { attempt: 2, applied: 2, failedScript: '', error: '' }, 1)).toBeUndefined();
    const failed = finishInitSql(running, { attempt: 1, applied: 1, failedScript: 'script-2', error: 'relation "t" does not exist (SQLSTATE 42P01)' }, 1)!;
    expect(failed).toMatchObject({ state: 'FAILED', applied: 1, failedScript: 'script-2' });
    expect(finishInitSql(failed, { attempt: 1, applied: 2, failedScript: '', error: '' }, 2)).toBeUndefined();
    const retried = startInitSql(releaseInitSql(failed, 1, 3), 3);
    expect(retried).toMatchObject({ state: 'RUNNING', attempt: 2, error: '', failedScript: '' });
    const done = finishInitSql(retried, { attempt: 2, applied: 2, failedScript: '', error: '' }, 4)!;
    expect(done.state).toBe('SUCCEEDED');
    expect(releaseRefusal(done)).toMatch(/never run twice/);
    expect(releaseInitSql(done, 9, 5)).toBe(done);
  });
  it('treats an answer without an error that left scripts out as a failure naming the next script', () => {
    const running = startInitSql(newInitSql('acme', validateInitScripts(scripts), false, 1, 0), 0);
    expect(finishInitSql(running, { attempt: 1, applied: 1, failedScript: '', error: '' }, 1)).toMatchObject({ state: 'FAILED', failedScript: 'script-2' });
  });
});
