import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bufferedDestination, createLogger } from './logger.js';

const INTERVAL_MS = 50;

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('bufferedDestination', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-logger-'));
  afterEach(() => vi.restoreAllMocks());

  it('writes nothing while nothing is logged, and a logged line within the interval', async () => {
    const file = path.join(dir, 'idle.log');
    const fd = fs.openSync(file, 'w');
    const writes = { sync: vi.spyOn(fs, 'writeSync'), async: vi.spyOn(fs, 'write') };
    const writesTo = (): number => [...writes.sync.mock.calls, ...writes.async.mock.calls].filter((c) => c[0] === fd).length;
    const dest = bufferedDestination(fd, INTERVAL_MS);
    // Six intervals without a line: no write at all (not even an empty one).
    await new Promise((r) => setTimeout(r, INTERVAL_MS * 6));
    expect(writesTo()).toBe(0);

    dest.write('{"msg":"one"}\n');
    await waitFor(() => fs.readFileSync(file, 'utf8') === '{"msg":"one"}\n');
    const afterLine = writesTo();
    expect(afterLine).toBeGreaterThan(0);
    // Idle again: no further writes.
    await new Promise((r) => setTimeout(r, INTERVAL_MS * 6));
    expect(writesTo()).toBe(afterLine);
    fs.closeSync(fd);
  });

  it('writes at once when a batch fills the buffer, without waiting for the interval', async () => {
    const file = path.join(dir, 'full.log');
    const fd = fs.openSync(file, 'w');
    const dest = bufferedDestination(fd, 60_000);
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 5; i++) dest.write(line);
    await waitFor(() => fs.statSync(file).size >= 4096);
    fs.closeSync(fd);
  });

  it('is what a buffered logger writes through', async () => {
    const file = path.join(dir, 'logger.log');
    const fd = fs.openSync(file, 'w');
    const log = createLogger({ app: 'test', destination: fd, buffered: true });
    log.info({ connId: 1 }, 'connection closed');
    // The logger's interval is LOG_FLUSH_INTERVAL_MS: the line appears without a flush call.
    await waitFor(() => fs.readFileSync(file, 'utf8').includes('"connection closed"'));
    fs.closeSync(fd);
  });
});
