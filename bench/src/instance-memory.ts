/**
 * Memory of the tenant instances under a host's data root, from /proc: each live postmaster (found
 * by its postmaster.pid) with its children, as proportional set size (PSS, shared pages split
 * between the processes that share them) and resident set size (RSS).
 */
import fs from 'node:fs';

/** Live postmasters under a data root, by the data dir's tenant (the directory above data/). */
function postmasters(root: string): Map<number, string> {
  const out = new Map<number, string>();
  const walk = (dir: string, depth: number): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = `${dir}/${e.name}`;
      if (e.isFile() && e.name === 'postmaster.pid') {
        const pid = Number(fs.readFileSync(full, 'utf8').split('\n')[0]);
        if (fs.existsSync(`/proc/${pid}`)) out.set(pid, dir);
      } else if (e.isDirectory() && depth > 0) walk(full, depth - 1);
    }
  };
  walk(root, 5);
  return out;
}

/** pid -> parent pid of every process. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      out.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  return out;
}

/** Pss and Rss (KiB) of one process from smaps_rollup; zeros when it has gone. */
function memoryOf(pid: number): { pss: number; rss: number } {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return { pss: 0, rss: 0 };
    throw err;
  }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { pss: field('Pss'), rss: field('Rss') };
}

/** PSS and RSS (MiB) of each tenant: its postmaster plus every child process. */
export function measureInstances(root: string): Array<{ pid: number; processes: number; pssMib: number; rssMib: number }> {
  const pp = parents();
  return [...postmasters(root).keys()].map((pid) => {
    const tree = [pid, ...[...pp].filter(([, parent]) => parent === pid).map(([child]) => child)];
    const sum = tree.map(memoryOf).reduce((a, m) => ({ pss: a.pss + m.pss, rss: a.rss + m.rss }), { pss: 0, rss: 0 });
    return { pid, processes: tree.length, pssMib: sum.pss / 1024, rssMib: sum.rss / 1024 };
  });
}
