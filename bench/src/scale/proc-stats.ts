/** What the scale simulator reads about a process and a directory from /proc and the filesystem. */
import fs from 'node:fs';
import path from 'node:path';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux for every architecture we run). */
const TICKS = 100;

/** User + system CPU seconds the process has used. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Resident memory now and at its peak (VmRSS, VmHWM), in bytes. */
export function memory(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** Bytes of every file under dir (the coordinator's store: database, WAL, keys). */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return total;
}

/** CPU share of a process over a window: start() then stop() gives the fraction of one core. */
export function cpuWindow(pid: number): () => { seconds: number; cpuSeconds: number; cores: number } {
  const t0 = performance.now();
  const c0 = cpuSeconds(pid);
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const used = cpuSeconds(pid) - c0;
    return { seconds, cpuSeconds: used, cores: used / seconds };
  };
}

/**
 * fsync and fdatasync calls of the process (every thread) over `ms`, counted by strace attached
 * for that window; undefined when strace is missing or cannot attach. A count, not a time: the
 * machine's load does not change it. (strace slows the process while attached: measure CPU apart.)
 */
export async function fsyncsOver(pid: number, ms: number): Promise<number | undefined> {
  const { spawn } = await import('node:child_process');
  return await new Promise((resolve) => {
    let out = '';
    const child = spawn('strace', ['-f', '-c', '-e', 'trace=fsync,fdatasync', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve(undefined));
    const timer = setTimeout(() => child.kill('SIGINT'), ms);
    child.on('exit', () => {
      clearTimeout(timer);
      // The summary's rows: % time, seconds, usecs/call, calls, [errors,] syscall.
      let calls = 0;
      let seen = false;
      for (const line of out.split('\n')) {
        const f = line.trim().split(/\s+/);
        if (f.length >= 5 && (f.at(-1) === 'fsync' || f.at(-1) === 'fdatasync')) {
          calls += Number(f[3]);
          seen = true;
        }
      }
      // No call at all prints no table, only the attach and detach lines.
      resolve(seen || /attached/.test(out) ? calls : undefined);
    });
  });
}
