import { describe, expect, it } from 'vitest';
import { PortAllocator } from './port-allocator.js';

describe('PortAllocator', () => {
  it('gives concurrent creates different ports (none of them listens yet)', async () => {
    const first = 23000 + Math.floor(Math.random() * 400) * 10;
    const ports = new PortAllocator({ first, last: first + 9 }, '127.0.0.1');
    const got = await Promise.all(Array.from({ length: 6 }, () => ports.allocate(new Set())));
    expect(new Set(got).size).toBe(6);
    for (const p of got) expect(p).toBeGreaterThanOrEqual(first);
  });

  it('skips taken ports and says when the range is used up', async () => {
    const first = 23000 + Math.floor(Math.random() * 400) * 10;
    const ports = new PortAllocator({ first, last: first + 1 }, '127.0.0.1');
    expect(await ports.allocate(() => new Set([first]))).toBe(first + 1);
    await expect(ports.allocate(new Set([first, first + 1]))).rejects.toMatchObject({ code: 'NO_FREE_PORT' });
  });
});
