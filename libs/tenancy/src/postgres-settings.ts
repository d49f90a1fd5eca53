/**
 * postgresql.conf settings sized from a tenant's resources, so every runtime (process, docker)
 * configures an instance the same way. Rules of thumb from the PostgreSQL docs ("Resource
 * Consumption") and PGTune: shared_buffers 25% of memory, effective_cache_size 75%, work_mem
 * so that a few sorts per connection fit beside shared_buffers.
 *
 * Idle footprint (measured with the density benchmark, see the README): an idle instance's
 * memory is mostly shared memory PostgreSQL zeroes at start. wal_buffers is the biggest piece
 * (its default is shared_buffers/32, zeroed in full), so small instances get less; the logical
 * replication launcher is a whole process tenants cannot use (CREATE SUBSCRIPTION needs a
 * superuser, which no tenant role is), so it is not started.
 */
import type { Resources } from './resources.js';

/** Clamps n into [low, high]. */
function clamp(n: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, n));
}

/** Connections scale with memory: 100 per GiB, from 25 to 500 (each backend costs a few MiB). */
export function maxConnectionsFor(memoryMib: number): number {
  return clamp(Math.round((memoryMib / 1024) * 100), 25, 500);
}

/** Settings for one instance, as postgresql.conf strings ('256MB', '100'). */
export function postgresSettingsFor(resources: Resources): Record<string, string> {
  const memory = Math.max(0, Math.floor(resources.memoryMib));
  // Fractional cores (1500m) get the workers of the whole cores below them, never fewer than one.
  const cores = Math.max(1, Math.floor(resources.cpuMillis / 1000));
  const maxConnections = maxConnectionsFor(memory);
  const sharedBuffers = Math.max(16, Math.floor(memory / 4));
  const effectiveCache = Math.max(sharedBuffers, Math.floor((memory * 3) / 4));
  // Leave shared_buffers alone and budget three sort/hash operations per connection.
  const workMem = clamp(Math.floor((memory - sharedBuffers) / (maxConnections * 3)), 4, 1024);
  const maintenanceWorkMem = clamp(Math.floor(memory / 16), 64, 2048);
  const gatherWorkers = Math.min(4, Math.floor(cores / 2));
  // 1/128 of shared_buffers (PostgreSQL's default is 1/32): 1MB at 512 MiB, the 16MB cap from 8 GiB.
  const walBuffers = clamp(Math.floor(sharedBuffers / 128), 1, 16);
  return {
    max_connections: String(maxConnections),
    shared_buffers: `${sharedBuffers}MB`,
    effective_cache_size: `${effectiveCache}MB`,
    work_mem: `${workMem}MB`,
    maintenance_work_mem: `${maintenanceWorkMem}MB`,
    max_worker_processes: String(Math.max(8, cores * 2)),
    max_parallel_workers: String(cores),
    max_parallel_workers_per_gather: String(gatherWorkers),
    max_parallel_maintenance_workers: String(gatherWorkers),
    wal_buffers: `${walBuffers}MB`,
    max_logical_replication_workers: '0',
  };
}
