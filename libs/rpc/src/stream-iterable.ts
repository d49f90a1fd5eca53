import type { Readable } from 'node:stream';

/**
 * Turns a grpc-js object stream into an AsyncIterable that ends on 'end' or when `stopped()`
 * says the consumer cancelled, and throws what `mapError` makes of an 'error'.
 * Messages are buffered while nobody is awaiting; the stream is paused above `highWater`
 * so a slow consumer pushes back on the peer instead of growing memory.
 */
export function streamToIterable<T>(stream: Readable, mapError: (err: unknown) => Error | undefined, highWater = 64): AsyncIterable<T> {
  const queue: T[] = [];
  let done = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  stream.on('data', (msg: T) => {
    queue.push(msg);
    if (queue.length >= highWater) stream.pause();
    notify();
  });
  stream.on('end', () => {
    done = true;
    notify();
  });
  stream.on('close', () => {
    done = true;
    notify();
  });
  stream.on('error', (err: unknown) => {
    failure = mapError(err);
    done = true;
    notify();
  });
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      return {
        async next(): Promise<IteratorResult<T>> {
          for (;;) {
            const item = queue.shift();
            if (item !== undefined) {
              if (queue.length < highWater / 2 && stream.isPaused()) stream.resume();
              return { value: item, done: false };
            }
            if (failure) throw failure;
            if (done) return { value: undefined, done: true };
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        },
        async return(): Promise<IteratorResult<T>> {
          done = true;
          queue.length = 0;
          return { value: undefined, done: true };
        },
      };
    },
  };
}

/**
 * Writes with backpressure: resolves when the stream accepted the message or drained. The three
 * listeners of a wait go when it ends: left on the stream, the 'close' and 'error' ones of every
 * wait that a drain ended stayed for the stream's life (a route feed to a router behind its
 * changes waits thousands of times: hundreds of MiB of listeners, each holding its promise).
 */
export function writeWithBackpressure(
  stream: {
    write(chunk: unknown): boolean;
    once(event: 'drain' | 'close' | 'error', fn: () => void): unknown;
    removeListener(event: 'drain' | 'close' | 'error', fn: () => void): unknown;
  },
  message: unknown,
): Promise<void> {
  if (stream.write(message)) return Promise.resolve();
  return new Promise((resolve) => {
    // Resolve on close/error too: the call is over, and its own error surfaces elsewhere.
    const settle = (): void => {
      stream.removeListener('drain', settle);
      stream.removeListener('close', settle);
      stream.removeListener('error', settle);
      resolve();
    };
    stream.once('drain', settle);
    stream.once('close', settle);
    stream.once('error', settle);
  });
}
