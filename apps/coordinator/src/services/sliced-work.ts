/**
 * Runs a backlog in bounded slices so one pass never blocks the event loop: hellos, heartbeats and
 * API calls are read between slices (the caller schedules the next slice with setImmediate).
 */

/** How much one slice may do. */
export interface SliceBudget {
  /** Items (e.g. tenants considered) per slice. */
  maxItems: number;
  /** Wall time per slice, in ms. */
  maxMs: number;
}

/** What one slice did. */
export interface SliceOutcome {
  items: number;
  /** True when the backlog was not finished within the budget. */
  more: boolean;
}

/**
 * Calls `step(room)` until it reports 0 items (backlog done) or the budget is spent. `step` gets
 * how many items it may still take and returns how many it took.
 */
export async function runSlice(step: (room: number) => number | Promise<number>, budget: SliceBudget, now: () => number): Promise<SliceOutcome> {
  const start = now();
  let items = 0;
  while (items < budget.maxItems) {
    const took = await step(budget.maxItems - items);
    if (took === 0) return { items, more: false };
    items += took;
    if (now() - start >= budget.maxMs) break;
  }
  return { items, more: true };
}
