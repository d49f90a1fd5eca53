import { describe, expect, it } from 'vitest';
import { ClientStatements, serverStatementName, ServerStatements } from './statement-registry.js';

const NO_TYPES = Buffer.from([0, 0]);
const INT4 = Buffer.from([0, 1, 0, 0, 0, 23]);

describe('serverStatementName', () => {
  it('is stable for the same text and types, differs otherwise', () => {
    const a = serverStatementName('select $1', INT4);
    expect(a).toMatch(/^pgs_[0-9a-f]{24}$/);
    expect(serverStatementName('select $1', INT4)).toBe(a);
    expect(serverStatementName('select $1', NO_TYPES)).not.toBe(a);
    expect(serverStatementName('select $2', INT4)).not.toBe(a);
  });
});

describe('ClientStatements', () => {
  it('maps client names to shared server names; replaces and forgets', () => {
    const c = new ClientStatements();
    const s1 = c.prepare('s1', 'select 1', NO_TYPES);
    const s2 = c.prepare('other', 'select 1', NO_TYPES);
    expect(s1.serverName).toBe(s2.serverName);
    c.prepare('s1', 'select 2', NO_TYPES);
    expect(c.get('s1')!.query).toBe('select 2');
    c.forget('s1');
    expect(c.get('s1')).toBeUndefined();
    expect(c.size).toBe(1);
  });
});

describe('ServerStatements', () => {
  it('evicts the least recently used beyond its capacity', () => {
    const s = new ServerStatements(2);
    expect(s.add('a')).toEqual([]);
    expect(s.add('b')).toEqual([]);
    s.touch('a');
    expect(s.add('c')).toEqual(['b']);
    expect(s.has('a') && s.has('c') && !s.has('b')).toBe(true);
    expect(s.add('c')).toEqual([]);
    expect(s.add('d')).toEqual(['a']);
    s.delete('c');
    expect(s.size).toBe(1);
    s.clear();
    expect(s.has('d')).toBe(false);
  });

  it('rejects a capacity below 1', () => {
    expect(() => new ServerStatements(0)).toThrow(RangeError);
  });
});
