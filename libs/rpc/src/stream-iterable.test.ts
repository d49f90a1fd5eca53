import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { writeWithBackpressure } from './stream-iterable.js';

/** A stream that is always full: every write waits for a drain. */
class FullStream extends EventEmitter {
  write(): boolean {
    return false;
  }
}

describe('writeWithBackpressure', () => {
  it('leaves no listener behind after each wait, however many writes waited for a drain', async () => {
    const stream = new FullStream();
    for (let i = 0; i < 100; i++) {
      const written = writeWithBackpressure(stream, i);
      stream.emit('drain');
      await written;
    }
    expect(['drain', 'close', 'error'].map((e) => stream.listenerCount(e))).toEqual([0, 0, 0]);
  });

  it('ends a wait on close or error too', async () => {
    const stream = new FullStream();
    const closed = writeWithBackpressure(stream, 1);
    stream.emit('close');
    await closed;
    const failed = writeWithBackpressure(stream, 2);
    stream.emit('error', new Error('gone'));
    await failed;
    expect(['drain', 'close', 'error'].map((e) => stream.listenerCount(e))).toEqual([0, 0, 0]);
  });
});
