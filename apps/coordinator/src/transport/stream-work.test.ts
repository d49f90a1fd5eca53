/** The waiting messages of one agent stream: in order, one at a time, bounded, and dropped after a failure or the stream's end. */
import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { nextOrStop, StreamWork } from './stream-work.js';

/** A handler that finishes when told to. */
function gate(): { handle: () => Promise<void>; open: () => void; started: () => boolean } {
  let open: () => void = () => undefined;
  let started = false;
  const done = new Promise<void>((resolve) => (open = resolve));
  return {
    handle: () => {
      started = true;
      return done;
    },
    open: () => open(),
    started: () => started,
  };
}

describe('StreamWork', () => {
  it('runs the messages one at a time in the order they were added', async () => {
    const work = new StreamWork(8, () => undefined);
    const order: string[] = [];
    const first = gate();
    work.add(async () => {
      order.push('a start');
      await first.handle();
      order.push('a end');
    });
    work.add(async () => {
      order.push('b');
    });
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['a start']);
    first.open();
    await work.settled();
    expect(order).toEqual(['a start', 'a end', 'b']);
  });

  it('says when it is full, and room() waits until fewer than the limit wait', async () => {
    const work = new StreamWork(2, () => undefined);
    const first = gate();
    expect(work.add(first.handle)).toBe(true);
    expect(work.add(async () => undefined)).toBe(false);
    let roomy = false;
    const room = work.room().then(() => (roomy = true));
    await new Promise((r) => setImmediate(r));
    expect(roomy).toBe(false);
    first.open();
    await room;
    expect(roomy).toBe(true);
  });

  it('reports the first failure once and drops what waits behind it', async () => {
    const failures: unknown[] = [];
    const work = new StreamWork(8, (err) => failures.push(err));
    let ranAfter = false;
    work.add(() => Promise.reject(new Error('commit failed')));
    work.add(async () => {
      ranAfter = true;
    });
    await work.settled();
    expect(failures).toHaveLength(1);
    expect((work.error?.err as Error).message).toBe('commit failed');
    expect(ranAfter).toBe(false);
  });

  it('after stop() lets the running message finish and drops the rest', async () => {
    const work = new StreamWork(8, () => undefined);
    const running = gate();
    let finished = false;
    let dropped = true;
    work.add(async () => {
      await running.handle();
      finished = true;
    });
    work.add(async () => {
      dropped = false;
    });
    await new Promise((r) => setImmediate(r));
    expect(running.started()).toBe(true);
    work.stop();
    running.open();
    await work.settled();
    expect(finished).toBe(true);
    expect(dropped).toBe(true);
  });

  it('refuses a limit that is not a positive whole number', () => {
    expect(() => new StreamWork(0, () => undefined)).toThrow(/positive whole number/);
  });
});

describe('nextOrStop', () => {
  it('lets each message go once it is read, while the stream lives on', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const stop = new AbortController();
    const read: Array<WeakRef<object>> = [];
    const messages = (async function* () {
      for (let i = 0; i < 50; i++) {
        const m = { i, payload: new Array(1000).fill(i) };
        read.push(new WeakRef(m));
        yield m;
      }
    })();
    for (let i = 0; i < 50; i++) expect((await nextOrStop(messages, stop.signal))?.value?.i).toBe(i);
    await new Promise((r) => setTimeout(r, 0));
    gc();
    // The last may still be on the stack; with Promise.race against the stream's stop all 50 stayed.
    expect(read.filter((r) => r.deref() !== undefined).length).toBeLessThanOrEqual(1);
  });

  it('answers undefined once stopped, and leaves no listener', async () => {
    const stop = new AbortController();
    const never: AsyncIterator<number> = { next: () => new Promise(() => undefined) };
    const waiting = nextOrStop(never, stop.signal);
    stop.abort();
    expect(await waiting).toBeUndefined();
    expect(await nextOrStop(never, stop.signal)).toBeUndefined();
    const open = new AbortController();
    const one: AsyncIterator<number> = { next: async () => ({ value: 1, done: false }) };
    for (let i = 0; i < 20; i++) await nextOrStop(one, open.signal);
    expect(getEventListeners(open.signal, 'abort')).toHaveLength(0);
  });
});
