/**
 * Memory figures of the whole machine and of a bench fleet's own processes, from /proc: what the
 * density runs print beside the instances' PSS (instance-memory.ts).
 */
import fs from 'node:fs';

/** The machine's memory in use (MemTotal - MemAvailable), MiB: every process on it, other work included. */
export function machineUsedMib(): number {
  const text = fs.readFileSync('/proc/meminfo', 'utf8');
  const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return (kib('MemTotal') - kib('MemAvailable')) / 1024;
}

/**
 * PSS (MiB) and count of the fleet's Node.js processes (coordinator, agents, routers): every
 * process whose command line names the fleet's root and runs node. Postgres children rewrite
 * their command line, so instances are measured by their postmasters instead.
 */
export function controlPlanePss(root: string): { processes: number; pssMib: number } {
  let processes = 0;
  let kib = 0;
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (!cmd.includes(root) || !cmd.split('\0')[0]?.endsWith('node')) continue;
      const rollup = fs.readFileSync(`/proc/${e}/smaps_rollup`, 'utf8');
      kib += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
      processes++;
    } catch (err) {
      if (!['ENOENT', 'ESRCH', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  }
  return { processes, pssMib: kib / 1024 };
}

/** Free bytes on the filesystem holding `dir`. */
export function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}
