/**
 * Delivers rows with a growing revision in order, exactly once each, however often it is woken:
 * a wake while a read runs makes one more read after it (wake-ups are folded, never queued), and
 * each read asks for what follows the last revision delivered. The reader behind it is the truth;
 * the wake-ups only say when to look.
 */

/** Options of startRevisionTail. */
export interface RevisionTailOptions<T> {
  /** The last revision already delivered (0 = from the start). */
  after: number;
  /** Rows after `after` in revision order, at most `limit`. */
  read: (after: number, limit: number) => Promise<readonly T[]>;
  revisionOf: (row: T) => number;
  deliver: (rows: readonly T[]) => void;
  onError: (err: unknown) => void;
  /** Rows per read; a full page is followed by another read at once. Default 1000. */
  pageSize?: number;
}

/** A running tail. */
export interface RevisionTail {
  /** Something may have changed: read (now, or once more after the read in progress). */
  wake(): void;
  /** The last revision delivered. */
  position(): number;
  /** Resolves when no read is running or pending. */
  idle(): Promise<void>;
}

/** Starts a tail; nothing is read until the first wake(). */
export function startRevisionTail<T>(o: RevisionTailOptions<T>): RevisionTail {
  const pageSize = o.pageSize ?? 1000;
  let after = o.after;
  let pending = false;
  let running: Promise<void> | undefined;

  const drain = async (): Promise<void> => {
    while (pending) {
      pending = false;
      try {
        for (;;) {
          const rows = await o.read(after, pageSize);
          if (rows.length === 0) break;
          const last = rows[rows.length - 1];
          if (last !== undefined) after = o.revisionOf(last);
          o.deliver(rows);
          if (rows.length < pageSize) break;
        }
      } catch (err) {
        o.onError(err); // the next wake (a poll at the latest) reads again from the same revision
      }
    }
  };

  return {
    wake: () => {
      pending = true;
      running ??= drain().finally(() => (running = undefined));
    },
    position: () => after,
    idle: async () => {
      while (running) await running;
    },
  };
}
