/** The allocation ledger on a real SQLite store: what commits name is re-summed per host, the rest by the sweep. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store, StoreReads } from '../store/contract.js';
import { openStore } from '../store/open-store.js';
import { aHost, aPlacement, aTenant } from '../testing/records.js';
import type { TenantRecord } from '../domain/model.js';
import { AllocationLedger } from './allocation-ledger.js';

const SWEEP_MS = 60_000;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-allocation-ledger-'));
let store: Store;
beforeAll(() => {
  store = openStore({ dataDir: root, allowInit: true, routeHistory: 1000, now: Date.now() }).store;
});
afterAll(async () => {
  await store?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** The store's reads, counting whole-fleet sums and one-host sums. */
function counted(reads: StoreReads): { reads: StoreReads; wholeFleet: () => number; oneHost: () => number } {
  let wholeFleet = 0;
  let oneHost = 0;
  const placements: StoreReads['placements'] = {
    ...reads.placements,
    allocations: async () => {
      wholeFleet++;
      return reads.placements.allocations();
    },
    allocationOf: async (hostId) => {
      oneHost++;
      return reads.placements.allocationOf(hostId);
    },
  };
  return { reads: { ...reads, placements }, wholeFleet: () => wholeFleet, oneHost: () => oneHost };
}

const withMemory = (t: TenantRecord, memoryMib: number): TenantRecord => ({ ...t, spec: { ...t.spec, resources: { ...t.spec.resources, memoryMib } } });

describe('AllocationLedger', () => {
  it('sums the fleet once, then re-sums only the hosts commits name, and catches an unnamed change by the sweep', async () => {
    await store.transaction(async (tx) => {
      for (const id of ['h1', 'h2', 'h3']) await tx.hosts.put(aHost(id));
      for (const id of ['a', 'b', 'c', 'd']) await tx.tenants.insert(aTenant(id, { status: 'ACTIVE' }));
      await tx.placements.insertMany([aPlacement('a', 'h1'), aPlacement('b', 'h1'), aPlacement('c', 'h2'), aPlacement('d', 'h3')]);
    });
    const c = counted(store.read);
    const ledger = new AllocationLedger(c.reads, SWEEP_MS);
    const unsubscribe = store.subscribe((commit) => ledger.noteCommit(commit));
    const truth = (): Promise<unknown> => store.read.placements.allocations();

    expect(await ledger.current(0)).toEqual(await truth());
    expect(c.wholeFleet()).toBe(1);

    // A placement deleted: its host is named by the commit.
    await store.transaction((tx) => tx.placements.delete('b', 'h1'));
    expect(await ledger.current(0)).toEqual(await truth());
    expect(c.oneHost()).toBe(1);

    // A resize, sent to every host of the tenant (a desired set without a host).
    const tenantC = (await store.read.tenants.get('c'))!;
    await store.transaction(async (tx) => {
      await tx.tenants.update(withMemory(tenantC, 4096));
      tx.record({ kind: 'desired', tenantId: 'c' });
    });
    expect((await ledger.current(0)).get('h2')?.memoryMib).toBe(4096);
    expect(await ledger.current(0)).toEqual(await truth());

    // A suspension, sent to the named host: the tenant's CPU and memory leave the sum, its disk stays.
    const tenantA = (await store.read.tenants.get('a'))!;
    await store.transaction(async (tx) => {
      await tx.tenants.update({ ...tenantA, status: 'SUSPENDED' });
      tx.record({ kind: 'desired', tenantId: 'a', hostId: 'h1' });
    });
    expect((await ledger.current(0)).get('h1')).toEqual({ cpuMillis: 0, memoryMib: 0, diskMib: tenantA.spec.resources.diskMib, instances: 1 });

    // The last placement of a host deleted: the host leaves the sums, as in the store's.
    await store.transaction((tx) => tx.placements.delete('d', 'h3'));
    expect((await ledger.current(0)).has('h3')).toBe(false);
    expect(await ledger.current(0)).toEqual(await truth());

    // Nothing named: no host is re-summed, however often it is asked.
    const before = c.oneHost();
    for (let i = 0; i < 5; i++) await ledger.current(0);
    expect(c.oneHost()).toBe(before);

    // A change no commit names (written without a desired set) is caught by the sweep: a third of
    // the hosts per third of the sweep's time, and all of them within one sweep.
    const tenantD = (await store.read.tenants.get('c'))!;
    await store.transaction((tx) => tx.tenants.update(withMemory(tenantD, 8192)));
    expect((await ledger.current(0)).get('h2')?.memoryMib).toBe(4096);
    await ledger.current(SWEEP_MS / 3);
    expect(c.oneHost()).toBe(before + 1);
    expect((await ledger.current(SWEEP_MS)).get('h2')?.memoryMib).toBe(8192);
    expect(c.oneHost()).toBe(before + 3);
    expect(await ledger.current(SWEEP_MS)).toEqual(await truth());
    expect(c.wholeFleet()).toBe(1);
    unsubscribe();
  });

  it('re-sums the hosts a failed pass added to', async () => {
    const ledger = new AllocationLedger(store.read, SWEEP_MS);
    const sums = await ledger.current(0);
    const before = sums.get('h2');
    ledger.add('h2', aTenant('never-committed'));
    expect((await ledger.current(0)).get('h2')?.instances).toBe((before?.instances ?? 0) + 1);
    ledger.markStale(['h2']);
    expect((await ledger.current(0)).get('h2')).toEqual(before);
  });
});
