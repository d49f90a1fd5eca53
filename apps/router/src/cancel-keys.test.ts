import { describe, expect, it } from 'vitest';
import { CancelKeys, LONG_KEY_LENGTH, routerTag, tagOfProcessId } from './cancel-keys.js';

const target = (secretKey: Buffer) => ({ processId: 4242, secretKey, host: '127.0.0.1', port: 5432, tenantId: 'acme' });
const secret = Buffer.from('fleet-secret');

describe('router-issued cancel keys', () => {
  it('protocol 3.0: a 4-byte key naming this router, resolved only when exact', () => {
    const keys = new CancelKeys({ routerId: 'r1', secret });
    const k = keys.issue(target(Buffer.from([1, 2, 3, 4])));
    expect(k.secretKey).toHaveLength(4);
    expect(k.processId).toBeGreaterThan(0);
    expect(k.processId).toBeLessThan(2 ** 31);
    expect(tagOfProcessId(k.processId)).toBe(routerTag('r1'));
    expect(keys.resolve(k.processId, k.secretKey)?.processId).toBe(4242);
    const wrong = Buffer.from(k.secretKey);
    wrong[0]! ^= 1;
    expect(keys.resolve(k.processId, wrong)).toBeUndefined();
    expect(keys.resolve(k.processId + 1, k.secretKey)).toBeUndefined();
    keys.release(k);
    expect(keys.resolve(k.processId, k.secretKey)).toBeUndefined();
    expect(keys.size).toBe(0);
  });

  it('protocol 3.2: a longer backend key gets a 32-byte key', () => {
    const keys = new CancelKeys({ routerId: 'r1', secret });
    const k = keys.issue(target(Buffer.alloc(32, 7)));
    expect(k.secretKey).toHaveLength(LONG_KEY_LENGTH);
    expect(keys.resolve(k.processId, k.secretKey)?.secretKey).toEqual(Buffer.alloc(32, 7));
  });

  it('another router with the same secret can authenticate a key but not resolve it; another secret cannot', () => {
    const a = new CancelKeys({ routerId: 'r1', secret });
    const b = new CancelKeys({ routerId: 'r2', secret });
    const c = new CancelKeys({ routerId: 'r3', secret: Buffer.from('other') });
    for (const len of [4, 32]) {
      const k = a.issue(target(Buffer.alloc(len, 1)));
      expect(b.authentic(k.processId, k.secretKey)).toBe(true);
      expect(b.resolve(k.processId, k.secretKey)).toBeUndefined();
      expect(c.authentic(k.processId, k.secretKey)).toBe(false);
    }
    expect(b.authentic(1, Buffer.alloc(7))).toBe(false);
  });

  it('slots are unique among live keys', () => {
    const keys = new CancelKeys({ routerId: 'r1', secret });
    const ids = new Set(Array.from({ length: 5000 }, () => keys.issue(target(Buffer.alloc(4))).processId));
    expect(ids.size).toBe(5000);
  });
});
