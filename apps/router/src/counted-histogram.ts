// A Prometheus histogram without labels for values observed once per transaction. prom-client's
// Histogram.observe validates labels, hashes them and allocates on every call (measured at about a
// third of the pool's own CPU per transaction); here an observation is a scan of a few bounds and
// three additions, and the exposition is built only when /metrics is scraped. The exported series
// are the ones prom-client's Histogram exports (`_bucket` with `le`, `_sum`, `_count`), so the
// registry prints them and a --workers primary sums its workers' as it sums any histogram.
import type { Metric, Registry } from 'prom-client';

/** One exported sample, as prom-client's metric JSON has it. */
interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

export class CountedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: Float64Array;
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly #counts: Float64Array;
  #sum = 0;

  constructor(options: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    const bounds = [...options.buckets].sort((a, b) => a - b);
    if (bounds.length === 0 || bounds.some((b) => !Number.isFinite(b))) throw new Error(`histogram ${options.name}: buckets must be finite numbers`);
    this.#bounds = Float64Array.from(bounds);
    this.#counts = new Float64Array(bounds.length + 1);
    // The registry takes any object with prom-client's metric shape (name, help, type, get).
    for (const r of options.registers) r.registerMetric(this as unknown as Metric);
  }

  /** Counts one value (seconds); a value that is not a finite number is not counted. */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.#counts[i]!++;
    this.#sum += value;
  }

  /** Observations so far (all buckets). */
  get count(): number {
    let n = 0;
    for (const c of this.#counts) n += c;
    return n;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
  }

  /** The metric as prom-client's registry reads it (scrape time only). */
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const bucket = `${this.name}_bucket`;
    const values: Sample[] = [];
    let cumulative = 0;
    this.#bounds.forEach((le, i) => {
      cumulative += this.#counts[i]!;
      values.push({ labels: { le }, value: cumulative, metricName: bucket });
    });
    const count = cumulative + this.#counts[this.#bounds.length]!;
    values.push(
      { labels: { le: '+Inf' }, value: count, metricName: bucket },
      { labels: {}, value: this.#sum, metricName: `${this.name}_sum` },
      { labels: {}, value: count, metricName: `${this.name}_count` },
    );
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}
