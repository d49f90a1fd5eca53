import { describe, expect, it } from 'vitest';
import { RouterClients } from './router-clients.js';

describe('RouterClients', () => {
  it("sums the connected routers' counts", () => {
    const c = new RouterClients(10_000);
    c.report('r1', new Map([['a', 2]]), true, 1_000);
    c.report(
      'r2',
      new Map([
        ['a', 1],
        ['b', 4],
      ]),
      true,
      1_500,
    );
    expect(c.totals(['r1', 'r2'], 2_000)).toEqual(
      new Map([
        ['a', 3],
        ['b', 4],
      ]),
    );
  });

  it('is unknown while a connected router has not reported, reported incompletely, or too long ago', () => {
    const c = new RouterClients(10_000);
    c.report('r1', new Map(), true, 1_000);
    expect(c.totals(['r1', 'r2'], 2_000)).toBeUndefined();
    c.report('r2', new Map(), false, 2_000);
    expect(c.totals(['r1', 'r2'], 2_000)).toBeUndefined();
    c.report('r2', new Map(), true, 2_000);
    expect(c.totals(['r1', 'r2'], 2_000)).toEqual(new Map());
    expect(c.totals(['r1', 'r2'], 11_500)).toBeUndefined();
  });

  it('counts a disconnected router while its report is fresh, then forgets it', () => {
    const c = new RouterClients(10_000);
    c.report('gone', new Map([['a', 1]]), true, 1_000);
    expect(c.totals([], 5_000)).toEqual(new Map([['a', 1]]));
    expect(c.totals([], 12_000)).toEqual(new Map());
  });
});
