/**
 * What this host offers to tenants: cpu (millicores), memory and disk (MiB). Detected from the
 * machine (cores, physical memory, size of the filesystem holding the data root) unless the
 * operator overrides a value, e.g. to keep room for the OS.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Resources } from '@pgs/tenancy';

/** Detected capacity, each field replaced by its override when one is given. */
export function hostCapacity(dataRoot: string, overrides: Partial<Resources>): Resources {
  const fsStats = fs.statfsSync(dataRoot);
  const detected: Resources = {
    cpuMillis: os.availableParallelism() * 1000,
    memoryMib: Math.floor(os.totalmem() / (1024 * 1024)),
    diskMib: Math.floor((fsStats.blocks * fsStats.bsize) / (1024 * 1024)),
  };
  return {
    cpuMillis: overrides.cpuMillis ?? detected.cpuMillis,
    memoryMib: overrides.memoryMib ?? detected.memoryMib,
    diskMib: overrides.diskMib ?? detected.diskMib,
  };
}
