/** What the scale benchmarks read from a coordinator's Prometheus /metrics page. */

/** The coordinator's /metrics text, or '' when it does not answer (no figure rather than no run). */
export async function metricsText(http: string): Promise<string> {
  try {
    const r = await fetch(`http://${http}/metrics`);
    return r.ok ? await r.text() : '';
  } catch {
    return '';
  }
}

/** The values of one metric by the value of one of its labels (e.g. host transitions by `to`). */
export function byLabel(text: string, metric: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${metric}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const value = new RegExp(`${label}="([^"]*)"`).exec(m[1] as string)?.[1];
    if (value !== undefined) out[value] = (out[value] ?? 0) + Number(m[2]);
  }
  return out;
}

/** One unlabelled (or default-labelled only) sample of a metric; undefined when absent. */
export function sample(text: string, metric: string): number | undefined {
  const m = new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * The longest event-loop stall of a coordinator over a window. Node's event-loop delay histogram
 * (`nodejs_eventloop_lag_max_seconds`, prom-client's default metrics) is reset at every scrape, so
 * the page is read every `everyMs` and the largest maximum kept: a stall shows in the first scrape
 * after it, however late that scrape ran. The first page read only starts the window: it covers
 * everything since the scrape before (or since the process started: its start-up, not serving).
 */
export class LoopStallSampler {
  private maxSeconds = 0;
  private timer: NodeJS.Timeout | undefined;
  private reading = false;
  private started = false;

  constructor(
    private readonly http: string,
    private readonly everyMs = 1000,
  ) {}

  /** Starts (or restarts) the window; the maximum so far is forgotten. */
  start(): void {
    clearInterval(this.timer);
    this.maxSeconds = 0;
    this.started = false;
    this.timer = setInterval(() => void this.read(), this.everyMs);
    // A run that fails midway must not be kept alive by its sampler.
    this.timer.unref();
  }

  private async read(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const max = sample(await metricsText(this.http), 'nodejs_eventloop_lag_max_seconds');
      if (max === undefined || !Number.isFinite(max)) return;
      if (this.started) this.maxSeconds = Math.max(this.maxSeconds, max);
      this.started = true;
    } finally {
      this.reading = false;
    }
  }

  /** Stops the window after one last read; the longest stall seen, in ms. */
  async stop(): Promise<number> {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      await this.read();
    }
    return Math.round(this.maxSeconds * 1000);
  }
}
