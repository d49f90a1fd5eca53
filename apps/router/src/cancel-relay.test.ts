// Cancel keys across the worker processes of one router: a key issued by worker 1 that reaches
// worker 0 is relayed to worker 1 (here in-process, as the primary would), which cancels the real
// query; forged keys stop at the worker that received them.
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelKeys, workerOfProcessId } from './cancel-keys.js';
import { CancelRouter, type CancelOutcome } from './cancel-routing.js';
import { pgConnect } from './testing/clients.js';
import { eventually } from './testing/routes.js';

const PASSWORD = 'alice-secret-pw';
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => silent } as never;
let pgServer: TestPostgres;

beforeAll(async () => {
  pgServer = await startTestPostgres({ users: [{ name: 'alice', password: PASSWORD, database: 'acme' }] });
});

afterAll(async () => {
  await pgServer?.stop();
});

function workerPair(): { routers: CancelRouter[]; keys: CancelKeys[]; relayed: number[] } {
  const secret = Buffer.alloc(32, 7);
  const keys = [0, 1].map((index) => new CancelKeys({ routerId: 'r1', secret, worker: { index, count: 2 } }));
  const relayed: number[] = [];
  const routers: CancelRouter[] = [];
  for (const index of [0, 1]) {
    routers.push(
      new CancelRouter({
        keys: keys[index]!,
        routerId: 'r1',
        sharedSecret: false,
        peers: () => [],
        log: silent,
        timeoutMs: 5000,
        relayToWorker: (worker: number, processId: number, secretKey: Buffer): Promise<CancelOutcome> => {
          relayed.push(worker);
          return routers[worker]!.handleRelayed(processId, secretKey);
        },
      }),
    );
  }
  return { routers, keys, relayed };
}

describe('cancel keys across workers', () => {
  it('names the issuing worker in the key and relays a cancel to it', async () => {
    const { routers, keys, relayed } = workerPair();
    const client: pg.Client = await pgConnect({ host: pgServer.host, port: pgServer.port, user: 'alice', database: 'acme', password: PASSWORD });
    try {
      const real = client as unknown as { processID: number; secretKey: number };
      const realSecret = Buffer.alloc(4);
      realSecret.writeInt32BE(real.secretKey);
      const issued = keys[1]!.issue({ processId: real.processID, secretKey: realSecret, host: pgServer.host, port: pgServer.port, tenantId: 'acme' });
      expect(workerOfProcessId(issued.processId, 2)).toBe(1);
      expect(keys[0]!.ownedBySibling(issued.processId)).toBe(true);
      expect(keys[1]!.ownedBySibling(issued.processId)).toBe(false);

      const running = client.query('select pg_sleep(30)').then(
        () => undefined,
        (err: { code?: string }) => err.code,
      );
      const admin = await pgServer.adminClient();
      try {
        await eventually(
          async () =>
            (await admin.query("select 1 from pg_stat_activity where pid = $1 and state = 'active' and query like 'select pg_sleep%'", [real.processID]))
              .rowCount === 1,
        );
      } finally {
        await admin.end();
      }
      expect(await routers[0]!.handle(issued.processId, issued.secretKey, false)).toBe('sent_to_backend');
      expect(relayed).toEqual([1]);
      expect(await running).toBe('57014');

      // A wrong secret for worker 1's slot: dropped by worker 0's HMAC check, never relayed.
      const forged = Buffer.from(issued.secretKey);
      forged[3] = forged[3]! ^ 0xff;
      expect(await routers[0]!.handle(issued.processId, forged, false)).toBe('forged_key');
      expect(relayed).toEqual([1]);
    } finally {
      await client.end();
    }
  });

  it('keeps each worker to its own slots', () => {
    const { keys } = workerPair();
    for (let i = 0; i < 50; i++) {
      for (const [index, k] of keys.entries()) {
        const issued = k.issue({ processId: i, secretKey: Buffer.alloc(4, i), host: '127.0.0.1', port: 1, tenantId: 't' });
        expect(workerOfProcessId(issued.processId, 2)).toBe(index);
        expect(k.resolve(issued.processId, issued.secretKey)?.processId).toBe(i);
      }
    }
  });
});
