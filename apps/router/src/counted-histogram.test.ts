import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CountedHistogram } from './counted-histogram.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const VALUES = [0, 0.0005, 0.001, 0.002, 0.05, 0.1, 0.5, 1, 3, 120];

describe('CountedHistogram', () => {
  it('exports what prom-client exports for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const a = new CountedHistogram({ name: 'wait_seconds', help: 'A wait', buckets: BUCKETS, registers: [ours] });
    const b = new Histogram({ name: 'wait_seconds', help: 'A wait', buckets: BUCKETS, registers: [theirs] });
    for (const v of VALUES) {
      a.observe(v);
      b.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(a.count).toBe(VALUES.length);
  });

  it('is summed across registries as a histogram (a --workers primary aggregates its workers)', async () => {
    const parts = [];
    for (const values of [VALUES, [0.5, 2]]) {
      const r = new Registry();
      const h = new CountedHistogram({ name: 'wait_seconds', help: 'A wait', buckets: BUCKETS, registers: [r] });
      for (const v of values) h.observe(v);
      parts.push(await r.getMetricsAsJSON());
    }
    const text = await AggregatorRegistry.aggregate(parts).metrics();
    expect(text).toContain('wait_seconds_bucket{le="1"} 9');
    expect(text).toContain('wait_seconds_bucket{le="+Inf"} 12');
    expect(text).toContain('wait_seconds_count 12');
  });

  it('does not count a value that is not a number, and resets', async () => {
    const r = new Registry();
    const h = new CountedHistogram({ name: 'wait_seconds', help: 'A wait', buckets: BUCKETS, registers: [r] });
    h.observe(Number.NaN);
    h.observe(Infinity);
    expect(h.count).toBe(0);
    h.observe(0.5);
    expect(h.count).toBe(1);
    r.resetMetrics();
    expect(h.count).toBe(0);
    expect(() => new CountedHistogram({ name: 'x', help: 'x', buckets: [], registers: [] })).toThrow(/buckets/);
  });
});
