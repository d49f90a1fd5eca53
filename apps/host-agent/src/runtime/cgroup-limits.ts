/**
 * CPU and memory limits for process-runtime instances through cgroup v2: one cgroup per tenant
 * under <root>/pgs/<tenant> with cpu.max and memory.max, and the postmaster (and its children) moved
 * in. Hosts that do not delegate the cpu and memory controllers to the agent (cgroup v1, a
 * container without a writable cgroup, a v2 tree without those controllers) run instances without
 * limits, and the agent says so once, clearly.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Resources } from '@pgs/tenancy';
import type { Logger } from '@pgs/service-kit';
import { messageOf } from '../errors.js';

// cpu.max period in microseconds (the kernel default); quota = cores * period.
const CPU_PERIOD_US = 100_000;

/** Where the cgroup v2 hierarchy is: the unified mount, or the hybrid layout's /sys/fs/cgroup/unified. */
export function detectCgroupRoot(base = '/sys/fs/cgroup'): string {
  if (fs.existsSync(path.join(base, 'cgroup.controllers'))) return base;
  return path.join(base, 'unified');
}

/** Applies and removes per-tenant cgroup limits; a no-op (logged once) when the host does not allow it. */
export class CgroupLimits {
  private problem: string | undefined;
  private checked = false;

  constructor(
    private readonly root: string,
    private readonly log: Logger,
  ) {}

  /** Why limits cannot be applied on this host, or undefined when they can. */
  unavailableReason(): string | undefined {
    if (this.checked) return this.problem;
    this.checked = true;
    this.problem = this.probe();
    if (this.problem) {
      this.log.warn(
        { cgroupRoot: this.root, reason: this.problem },
        'cgroup v2 cpu/memory limits are NOT applied on this host; instances run without cpu and memory limits',
      );
    } else {
      this.log.info({ cgroupRoot: this.root }, 'cgroup v2 cpu/memory limits are applied per instance');
    }
    return this.problem;
  }

  private probe(): string | undefined {
    const controllersFile = path.join(this.root, 'cgroup.controllers');
    if (!fs.existsSync(controllersFile)) return `${controllersFile} does not exist (no cgroup v2 hierarchy)`;
    const controllers = fs.readFileSync(controllersFile, 'utf8').trim().split(/\s+/);
    const missing = ['cpu', 'memory'].filter((c) => !controllers.includes(c));
    if (missing.length > 0) return `the cgroup v2 hierarchy at ${this.root} does not offer the ${missing.join(' and ')} controller(s)`;
    try {
      const parent = path.join(this.root, 'pgs');
      fs.mkdirSync(parent, { recursive: true });
      // Controllers must be enabled in every ancestor's subtree_control for the leaf to get them.
      fs.writeFileSync(path.join(this.root, 'cgroup.subtree_control'), '+cpu +memory');
      fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), '+cpu +memory');
    } catch (err) {
      return `cannot write ${this.root} (${messageOf(err)})`;
    }
    return undefined;
  }

  /**
   * Sets the tenant's limits and moves `pids` into its cgroup. Returns false when limits are
   * unavailable or failed. `pids` may be a function, called only when limits apply: finding a
   * postmaster's children scans /proc, which is wasted (and blocks the agent) on hosts without limits.
   */
  apply(tenantId: string, resources: Resources, pids: readonly number[] | (() => readonly number[])): boolean {
    if (this.unavailableReason()) return false;
    const dir = path.join(this.root, 'pgs', tenantId);
    try {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'cpu.max'), `${Math.round((resources.cpuMillis / 1000) * CPU_PERIOD_US)} ${CPU_PERIOD_US}`);
      fs.writeFileSync(path.join(dir, 'memory.max'), String(resources.memoryMib * 1024 * 1024));
      for (const pid of typeof pids === 'function' ? pids() : pids) fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
      return true;
    } catch (err) {
      this.log.warn({ tenantId, cgroup: dir, err }, 'could not apply cgroup limits to the instance; it runs without them');
      return false;
    }
  }

  /** Removes the tenant's cgroup (after its processes are gone). */
  remove(tenantId: string): void {
    if (this.unavailableReason()) return;
    const dir = path.join(this.root, 'pgs', tenantId);
    try {
      if (fs.existsSync(dir)) fs.rmdirSync(dir);
    } catch (err) {
      this.log.warn({ tenantId, cgroup: dir, err }, 'could not remove the instance cgroup');
    }
  }
}

/** The pids of `pid`'s direct children (postmaster -> checkpointer, walwriter, backends...). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch (err) {
      // Processes come and go while we scan; a vanished one is simply not a child any more.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  return out;
}
