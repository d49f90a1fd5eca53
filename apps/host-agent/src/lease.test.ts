import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Lease } from './lease.js';
import { tempDataRoot, testLogger, waitFor } from './testing/test-env.js';

describe('lease', () => {
  const root = tempDataRoot('pgs-lease-test-');
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('runs from the send time, fires once when it runs out, and fires again only after a renewal', async () => {
    const lease = new Lease({ file: undefined, log: testLogger() });
    let fired = 0;
    lease.onExpire(() => (fired += 1));
    const sentAt = Date.now() - 100;
    lease.renew(sentAt, 300);
    expect(lease.deadline).toBe(sentAt + 300);
    lease.start();
    expect(lease.valid()).toBe(true);
    await waitFor('expiry', () => fired === 1, 2000, 5);
    expect(lease.valid()).toBe(false);
    // An older renewal never moves the deadline back.
    lease.renew(sentAt - 1000, 300);
    expect(lease.deadline).toBe(sentAt + 300);
    lease.renew(Date.now(), 150);
    expect(lease.valid()).toBe(true);
    await waitFor('second expiry', () => fired === 2, 2000, 5);
    lease.close();
  });

  it('a restarted agent reads a deadline no later than the real one, and an expired one fires at start', async () => {
    const file = path.join(root, 'lease.json');
    const first = new Lease({ file, log: testLogger() });
    const now = Date.now();
    first.renew(now, 60_000);
    first.renew(now + 500, 60_000);
    first.close();
    const again = new Lease({ file, log: testLogger() });
    // Persisted at most once a second: the file may lag, never lead.
    expect(again.deadline).toBeGreaterThanOrEqual(now + 60_000);
    expect(again.deadline).toBeLessThanOrEqual(now + 500 + 60_000);
    expect(again.valid()).toBe(true);
    fs.writeFileSync(file, JSON.stringify({ expiresAt: Date.now() - 1 }));
    const expired = new Lease({ file, log: testLogger() });
    let fired = false;
    expired.onExpire(() => (fired = true));
    expired.start();
    expect(fired).toBe(true);
    expired.close();
  });
});
