/**
 * The full desired set after a Hello, on each store: sent when the agent does not hold it, only
 * confirmed when it does (no new generation, nothing written), built in slices, and the deltas
 * committed while it is built going out after it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ConnectResponseSchema } from '@pgs/proto';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentHub, type AgentSession } from './agent-hub.js';
import { desiredSetForHost } from '../services/desired-set.js';
import { desiredSetInSlices } from '../services/desired-set-slices.js';
import { VersionCatalog } from '../services/versions.js';
import { aHost, aPlacement, aTenant, aUser } from '../testing/records.js';
import { eventually } from '../testing/harness.js';
import type { Store } from '../store/contract.js';
import { StoreUnavailableError } from '../domain/errors.js';
import { openStore } from '../store/open-store.js';
import { openPostgresStore } from '../store/postgres/pg-store.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-hub';
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });
const TENANTS = 5;
/** The fleet's one configured major: specs that name none resolve to it. */
const catalog = (): VersionCatalog => new VersionCatalog([{ id: '15', image: 'pg:15', deprecated: false }]);

let server: TestPostgres;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-hub-'));
beforeAll(async () => {
  server = await startTestPostgres({ host: `127.${NET}.37.34`, users: [{ name: 'coord', password: PW }] });
});
afterAll(async () => {
  await server?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

const stores: Array<[string, () => Promise<Store>]> = [
  ['SQLite', async () => openStore({ dataDir: path.join(root, 'sqlite'), allowInit: true, routeHistory: 1000, now: Date.now() }).store],
  ['PostgreSQL', async () => openPostgresStore({ url: server.url('coord', PW), routeHistory: 1000, log })],
];

type Sent = { generation: number; full: boolean; instances: string[] };

/** A session that keeps the desired sets sent to it. */
function session(hostId: string, sessionId: number, sent: Sent[]): AgentSession {
  return {
    hostId,
    sessionId,
    connectedAt: 0,
    send: (m: MessageInitShape<typeof ConnectResponseSchema>) => {
      const d = m.message;
      if (d?.case === 'desired') {
        const v = d.value;
        sent.push({ generation: Number(v.generation ?? 0n), full: v.full ?? false, instances: (v.instances ?? []).map((i) => i.tenantId ?? '') });
      }
      return Promise.resolve();
    },
    close: () => undefined,
  };
}

async function fill(store: Store, hostId: string): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.hosts.put(aHost(hostId));
    for (let i = 0; i < TENANTS; i++) {
      const id = `${hostId}-t${i}`;
      await tx.tenants.insert(aTenant(id, { status: 'ACTIVE' }));
      await tx.placements.insert(aPlacement(id, hostId, { port: 20000 + i }));
      await tx.users.insert(aUser(id, 'owner', { owner: true }));
    }
  });
}

/** The store, with its next `n` transactions failing as a store under load does (a lost connection, a timeout). */
function failing(store: Store): { store: Store; failNext: (n: number) => void } {
  let left = 0;
  const wrapped = new Proxy(store, {
    get(target, key, receiver) {
      if (key === 'transaction') {
        return (...args: Parameters<Store['transaction']>) => {
          if (left > 0) {
            left--;
            return Promise.reject(new StoreUnavailableError('store query failed: timeout expired'));
          }
          return target.transaction(...args);
        };
      }
      const v: unknown = Reflect.get(target, key, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: wrapped, failNext: (n) => (left = n) };
}

describe.each(stores)('desired sets after a Hello on the %s store', (_name, open) => {
  it('tries a full set and a delta again after the store failed them, while the agent stays connected', async () => {
    const raw = await open();
    const { store, failNext } = failing(raw);
    const hub = new AgentHub(store, catalog(), log);
    try {
      await fill(raw, 'hub-h3');
      const sent: Sent[] = [];
      hub.attach(session('hub-h3', 1, sent));
      failNext(1);
      await hub.sendFull('hub-h3', 0);
      expect(sent).toEqual([]);
      await eventually(async () => (sent.length === 1 ? true : undefined), 10_000, 'the full set, built again');
      expect(sent[0]).toMatchObject({ full: true });

      failNext(1);
      await raw.transaction(async (tx) => {
        const t = (await tx.tenants.get('hub-h3-t2'))!;
        await tx.tenants.update({ ...t, instanceRevision: t.instanceRevision + 1 });
        tx.record({ kind: 'desired', tenantId: t.id, hostId: 'hub-h3' });
      });
      await eventually(async () => (sent.length === 2 ? true : undefined), 10_000, 'the delta, sent again');
      expect(sent[1]).toMatchObject({ full: false, instances: ['hub-h3-t2'] });
    } finally {
      hub.stop();
      await raw.close();
    }
  });

  it('sends the full set the agent lacks, only confirms one it holds, and sends it again after a delta or a change it missed', async () => {
    const store = await open();
    const hub = new AgentHub(store, catalog(), log);
    try {
      await fill(store, 'hub-h1');
      const sent: Sent[] = [];
      hub.attach(session('hub-h1', 1, sent));

      // A fresh agent (applied nothing): the full set at a new generation, recorded with its digest.
      await hub.sendFull('hub-h1', 0);
      await eventually(async () => (sent.length === 1 ? true : undefined), 10_000, 'the first full set');
      expect(sent[0]).toMatchObject({ full: true, instances: Array.from({ length: TENANTS }, (_, i) => `hub-h1-t${i}`) });
      const first = sent[0]!.generation;
      expect((await store.read.hosts.desiredSent('hub-h1'))?.generation).toBe(first);

      // It says Hello again with that generation: a confirmation at the same generation, nothing written.
      await hub.sendFull('hub-h1', first);
      await eventually(async () => (sent.length === 2 ? true : undefined), 10_000, 'the confirmation');
      expect(sent[1]).toEqual({ generation: first, full: false, instances: [] });
      expect((await store.read.hosts.get('hub-h1'))?.generation).toBe(first);

      // A delta went out after the full set: the digest no longer says what the agent holds.
      await store.transaction(async (tx) => {
        const t = (await tx.tenants.get('hub-h1-t0'))!;
        await tx.tenants.update({ ...t, instanceRevision: t.instanceRevision + 1 });
        tx.record({ kind: 'desired', tenantId: t.id, hostId: 'hub-h1' });
      });
      await eventually(async () => (sent.length === 3 ? true : undefined), 10_000, 'the delta');
      expect(sent[2]).toMatchObject({ generation: first + 1, full: false, instances: ['hub-h1-t0'] });
      await hub.sendFull('hub-h1', first + 1);
      await eventually(async () => (sent.length === 4 ? true : undefined), 10_000, 'the full set after a delta');
      expect(sent[3]).toMatchObject({ generation: first + 2, full: true });

      // The agent was away while a user changed (no delta reached it): the set hashes differently.
      hub.detach(session('hub-h1', 1, sent));
      await store.transaction((tx) => tx.users.insert(aUser('hub-h1-t1', 'app')));
      hub.attach(session('hub-h1', 2, sent));
      await hub.sendFull('hub-h1', first + 2);
      await eventually(async () => (sent.length === 5 ? true : undefined), 10_000, 'the full set after a missed change');
      expect(sent[4]).toMatchObject({ generation: first + 3, full: true });
    } finally {
      hub.stop();
      await store.close();
    }
  });

  it('builds the full set in slices equal to the whole, and sends the deltas committed meanwhile after it', async () => {
    const store = await open();
    const hub = new AgentHub(store, catalog(), log);
    try {
      await fill(store, 'hub-h2');
      const versions = catalog();
      const whole = await store.transaction((tx) => desiredSetForHost(tx, 'hub-h2', versions));
      const sliced = await desiredSetInSlices(store, 'hub-h2', versions, undefined, 2);
      expect(sliced).toEqual(whole);
      await expect(desiredSetInSlices(store, 'hub-h2', versions, undefined, 0)).rejects.toThrow(/positive whole number/);

      const sent: Sent[] = [];
      hub.attach(session('hub-h2', 3, sent));
      const full = hub.sendFull('hub-h2', 0);
      // Marked while the full set is built: its flush must wait for the full set.
      hub.touch('hub-h2', 'hub-h2-t3');
      await full;
      await eventually(async () => (sent.length === 2 ? true : undefined), 10_000, 'the full set, then the delta');
      expect(sent.map((s) => s.full)).toEqual([true, false]);
      expect(sent[1]!.generation).toBe(sent[0]!.generation + 1);
      expect(sent[1]!.instances).toEqual(['hub-h2-t3']);
    } finally {
      hub.stop();
      await store.close();
    }
  });
});
