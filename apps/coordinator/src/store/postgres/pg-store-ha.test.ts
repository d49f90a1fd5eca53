import { startTestPostgresPair, type TestPostgresPair } from '@pgs/pg-testkit';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../domain/errors.js';
import { aTenant } from '../../testing/records.js';
import { openPostgresStore, type PostgresStore } from './pg-store.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-1';
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });

describe('PostgreSQL store on a primary with a synchronous standby', () => {
  let pair: TestPostgresPair | undefined;
  let store: PostgresStore | undefined;
  afterAll(async () => {
    await store?.close();
    await pair?.stop();
  });

  it('loses no acknowledged write when the primary dies under load and the standby is promoted, and finds the new primary itself', async () => {
    pair = await startTestPostgresPair({ host: `127.${NET}.37.24`, standbyHost: `127.${NET}.37.25`, users: [{ name: 'coord', password: PW }] });
    store = await openPostgresStore({ url: pair.url('coord', PW), routeHistory: 100, log });
    const s = store;
    const acked: string[] = [];
    const refusals = new Set<string>();
    let next = 0;
    let stop = false;
    const writer = async (): Promise<void> => {
      while (!stop) {
        const id = `t${next++}`;
        try {
          await s.transaction((tx) => tx.tenants.insert(aTenant(id)), { grouped: true });
          acked.push(id);
        } catch (err) {
          refusals.add(err instanceof StoreUnavailableError ? 'unavailable' : String(err));
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const writers = Array.from({ length: 8 }, writer);
    const until = async (n: number): Promise<void> => {
      const deadline = Date.now() + 60_000;
      while (acked.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(acked.length).toBeGreaterThanOrEqual(n);
    };
    await until(300);
    await pair.primary.kill();
    await pair.promoteStandby();
    const atPromotion = acked.length;
    await until(atPromotion + 300);
    stop = true;
    await Promise.all(writers);

    expect([...refusals]).toEqual(['unavailable']); // the outage showed as unavailability, nothing else
    const stored = new Set((await s.read.tenants.list()).map((t) => t.id));
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
  }, 120_000);
});
