/**
 * Calls at a steady rate, the load of the scale simulator: call i is due at i / rate seconds;
 * at most `maxInFlight` run at once (a slow server makes the rate fall, never the queue grow),
 * each one's latency recorded under its kind.
 */

/** Latencies (ms) by kind of call, and the failures with their first messages. */
export class Latencies {
  readonly byKind = new Map<string, number[]>();
  readonly failures = new Map<string, { count: number; samples: string[] }>();

  async time<T>(kind: string, call: () => Promise<T>): Promise<T | undefined> {
    const t0 = performance.now();
    try {
      const r = await call();
      let list = this.byKind.get(kind);
      if (!list) this.byKind.set(kind, (list = []));
      list.push(performance.now() - t0);
      return r;
    } catch (err) {
      let f = this.failures.get(kind);
      if (!f) this.failures.set(kind, (f = { count: 0, samples: [] }));
      f.count += 1;
      if (f.samples.length < 3) f.samples.push((err as Error).message.slice(0, 160));
      return undefined;
    }
  }
}

/** Runs `call(i)` for i = 0.. at `perSecond` until `count` calls or `until()` says stop; resolves when all finished. */
export async function atRate(
  perSecond: number,
  maxInFlight: number,
  call: (i: number) => Promise<unknown>,
  stop: { count?: number; until?: () => boolean },
): Promise<{ started: number; seconds: number }> {
  const t0 = performance.now();
  let started = 0;
  let inFlight = 0;
  const running = new Set<Promise<unknown>>();
  for (;;) {
    if (stop.count !== undefined && started >= stop.count) break;
    if (stop.until?.()) break;
    const due = Math.floor(((performance.now() - t0) / 1000) * perSecond) + 1;
    while (started < due && inFlight < maxInFlight && (stop.count === undefined || started < stop.count)) {
      const i = started++;
      inFlight += 1;
      const p: Promise<unknown> = call(i)
        .catch(() => undefined)
        .finally(() => {
          inFlight -= 1;
          running.delete(p);
        });
      running.add(p);
    }
    await new Promise((r) => setTimeout(r, Math.max(1, Math.min(20, 1000 / perSecond))));
  }
  await Promise.all(running);
  return { started, seconds: (performance.now() - t0) / 1000 };
}
