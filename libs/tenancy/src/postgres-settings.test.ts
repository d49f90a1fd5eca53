import { describe, expect, it } from 'vitest';
import { maxConnectionsFor, postgresSettingsFor } from './postgres-settings.js';
import { res } from './testing/builders.js';

/** Reads '256MB' as 256. */
function mb(value: string | undefined): number {
  const match = /^(\d+)MB$/.exec(value ?? '');
  if (match === null) throw new Error(`not an MB value: ${value}`);
  return Number(match[1]);
}

describe('postgresSettingsFor', () => {
  it('sizes a 1 GiB, 1 core instance', () => {
    expect(postgresSettingsFor(res({ cpuMillis: 1000, memoryMib: 1024 }))).toEqual({
      max_connections: '100',
      shared_buffers: '256MB',
      effective_cache_size: '768MB',
      work_mem: '4MB',
      maintenance_work_mem: '64MB',
      max_worker_processes: '8',
      max_parallel_workers: '1',
      max_parallel_workers_per_gather: '0',
      max_parallel_maintenance_workers: '0',
      wal_buffers: '2MB',
      max_logical_replication_workers: '0',
    });
  });

  it('gives small instances small WAL buffers (idle memory) and big ones the 16MB cap', () => {
    expect([512, 1024, 2048, 8192, 65_536].map((memoryMib) => postgresSettingsFor(res({ memoryMib })).wal_buffers)).toEqual([
      '1MB',
      '2MB',
      '4MB',
      '16MB',
      '16MB',
    ]);
    for (const memoryMib of [512, 3000, 100_000]) {
      const s = postgresSettingsFor(res({ memoryMib }));
      // Never above PostgreSQL's own default (shared_buffers / 32).
      expect(mb(s.wal_buffers)).toBeLessThanOrEqual(Math.max(1, mb(s.shared_buffers) / 32));
    }
  });

  it('does not start the logical replication launcher (no tenant role may create subscriptions)', () => {
    expect(postgresSettingsFor(res({ cpuMillis: 8000, memoryMib: 16_384 })).max_logical_replication_workers).toBe('0');
  });

  it('scales with memory and cpu, within limits', () => {
    const big = postgresSettingsFor(res({ cpuMillis: 16_000, memoryMib: 65_536 }));
    expect(mb(big.shared_buffers)).toBe(16_384);
    expect(mb(big.effective_cache_size)).toBe(49_152);
    expect(big.max_connections).toBe('500');
    expect(mb(big.work_mem)).toBe(32);
    expect(mb(big.maintenance_work_mem)).toBe(2048);
    expect(big.max_worker_processes).toBe('32');
    expect(big.max_parallel_workers).toBe('16');
    expect(big.max_parallel_workers_per_gather).toBe('4');
  });

  it('keeps shared_buffers at a quarter and the sum of per-connection memory bounded', () => {
    for (const memoryMib of [512, 1024, 3000, 8192, 100_000, 1_048_576]) {
      const s = postgresSettingsFor(res({ memoryMib }));
      expect(mb(s.shared_buffers)).toBe(Math.floor(memoryMib / 4));
      expect(mb(s.effective_cache_size)).toBeLessThanOrEqual(memoryMib);
      expect(mb(s.work_mem)).toBeGreaterThanOrEqual(4);
      expect(Number(s.max_parallel_workers)).toBeLessThanOrEqual(Number(s.max_worker_processes));
    }
  });

  it('gives fractional cores the workers of the whole cores below', () => {
    expect(postgresSettingsFor(res({ cpuMillis: 2500 })).max_parallel_workers).toBe('2');
    expect(postgresSettingsFor(res({ cpuMillis: 500 })).max_parallel_workers).toBe('1');
  });

  it('maxConnectionsFor: 100 per GiB within 25..500', () => {
    expect([maxConnectionsFor(128), maxConnectionsFor(512), maxConnectionsFor(2048), maxConnectionsFor(1_000_000)]).toEqual([25, 50, 200, 500]);
  });
});
