/**
 * The messages of one agent stream that wait for something (the full desired set after Hello, a
 * report's commit, a command result's follow-up), run one at a time in the order the agent sent
 * them, apart from reading the stream. The stream is read on while they wait, so a heartbeat is
 * taken the moment it arrives: a host whose report or full set waits behind the fleet's backlog
 * (every host saying Hello at once after a start) is never taken for silent. Reading pauses only
 * when `limit` messages wait (an agent that sends faster than they can be handled).
 */
export class StreamWork {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;
  private stopped = false;
  private failure: { err: unknown } | undefined;

  /** `onFailure`: the first message whose handling failed (the stream should end with its error). */
  constructor(
    private readonly limit: number,
    private readonly onFailure: (err: unknown) => void,
  ) {
    if (!(Number.isInteger(limit) && limit > 0)) throw new Error(`a stream's waiting messages must be a positive whole number, not ${limit}`);
  }

  /** Queues `handle` after what waits already; false when the queue is now full (read no more until `room`). */
  add(handle: () => Promise<void>): boolean {
    this.waiting++;
    this.tail = this.tail.then(async () => {
      try {
        // After a failure or the stream's end the rest is dropped: an agent says again what still holds.
        if (this.failure === undefined && !this.stopped) await handle();
      } catch (err) {
        if (this.failure === undefined) {
          this.failure = { err };
          this.onFailure(err);
        }
      } finally {
        this.waiting--;
      }
    });
    return this.waiting < this.limit;
  }

  /** Resolves once fewer than `limit` messages wait. */
  async room(): Promise<void> {
    while (this.waiting >= this.limit) await this.tail;
  }

  /** The error the stream should end with, if a message's handling failed. */
  get error(): { err: unknown } | undefined {
    return this.failure;
  }

  /** The stream ended: what has not started yet is dropped (the one running finishes on its own). */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves when everything queued so far has run (or been dropped). */
  async settled(): Promise<void> {
    await this.tail;
  }
}

/**
 * The iterator's next message, or undefined once `stop` is aborted. Not Promise.race with a promise
 * that lives as long as the stream: each race leaves a reaction on it that holds the race's result,
 * the message read, so every message of the stream stayed in memory until it ended (hours of full
 * reports of hundreds of instances each). The listener here goes with the wait.
 */
export function nextOrStop<T>(iterator: AsyncIterator<T>, stop: AbortSignal): Promise<IteratorResult<T> | undefined> {
  if (stop.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const stopped = (): void => resolve(undefined);
    stop.addEventListener('abort', stopped, { once: true });
    iterator.next().then(
      (r) => {
        stop.removeEventListener('abort', stopped);
        resolve(r);
      },
      (err: unknown) => {
        stop.removeEventListener('abort', stopped);
        // The iterator's own error (an RpcError, a cancellation), as it is.
        reject(err as Error);
      },
    );
  });
}
