import { describe, expect, it } from 'vitest';
import { waitsForPrimary, type StartOrderFacts } from './start-order.js';

const facts = (over: Partial<StartOrderFacts> = {}): StartOrderFacts => ({
  role: 'REPLICA',
  instanceState: 'STOPPED',
  primary: { instanceState: 'STOPPED', hostState: 'READY' },
  ...over,
});

describe('waitsForPrimary', () => {
  it('holds a stopped replica while its primary is stopped or starting', () => {
    expect(waitsForPrimary(facts())).toBe(true);
    expect(waitsForPrimary(facts({ primary: { instanceState: 'STARTING', hostState: 'READY' } }))).toBe(true);
  });

  it('lets the replica start once the primary runs', () => {
    expect(waitsForPrimary(facts({ primary: { instanceState: 'RUNNING', hostState: 'READY' } }))).toBe(false);
  });

  it('never holds a primary, a running replica or one not created yet', () => {
    expect(waitsForPrimary(facts({ role: 'PRIMARY' }))).toBe(false);
    expect(waitsForPrimary(facts({ instanceState: 'RUNNING' }))).toBe(false);
    expect(waitsForPrimary(facts({ instanceState: '' }))).toBe(false);
    expect(waitsForPrimary(facts({ instanceState: 'CREATING' }))).toBe(false);
  });

  it('holds nobody back for a primary that failed, is lost with its host, or does not exist', () => {
    expect(waitsForPrimary(facts({ primary: { instanceState: 'FAILED', hostState: 'READY' } }))).toBe(false);
    expect(waitsForPrimary(facts({ primary: { instanceState: 'STOPPED', hostState: 'DOWN' } }))).toBe(false);
    expect(waitsForPrimary(facts({ primary: { instanceState: 'STOPPED', hostState: 'UNREACHABLE' } }))).toBe(false);
    expect(waitsForPrimary(facts({ primary: undefined }))).toBe(false);
  });
});
