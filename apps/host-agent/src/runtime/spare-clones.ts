/**
 * Ready-made copies of the template. Copying ~45 MB of a fresh data directory takes from 50 ms to
 * more than a second on a busy disk, so the agent keeps a few copies ready under <data-root>/spares
 * and a new instance takes one by rename (atomic, same filesystem), which makes create -> accepting
 * connections a matter of starting postgres. Spares are refilled in the background after each take.
 * A copy is renamed into spares/ only when complete, so a crash never leaves half a spare in use.
 *
 * When a burst of creates outruns the spares, the creates that found none wait in line and the
 * copier hands each copy it finishes to the oldest of them. Copies are made one at a time per
 * major: twenty `cp` at once share the disk and the cores and all finish together, late (measured:
 * 18 at once took 7-9 s on the 2-core dev machine, every one of them), while one at a time gives the
 * first waiter its copy after one copy's time and the n-th after n. A copy nobody waits for yet
 * runs at a lower CPU priority (copying is mostly kernel time, ~50 ms of a core per copy on a quiet
 * machine and several times that on a busy one), so refills yield to the instances being started
 * and queried; it is raised again as soon as a create starts waiting for it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '@pgs/service-kit';
import { isAlive } from './postmaster-pid.js';
import { cloneTemplate, type TemplateCopy } from './template.js';

/** How much nicer than the agent a copy nobody waits for runs (nice values: 0 normal, 19 lowest). */
const BACKGROUND_NICENESS = 10;

/** A create waiting for a copy of the template. */
interface Waiter {
  dest: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** The copier and the waiting line of one major. */
interface MajorQueue {
  templateDir: string;
  waiters: Waiter[];
  /** Set and cleared synchronously, so a waiter added as the copier finishes is never stranded. */
  copying: boolean;
  /** The copier's run (the last one, once it finished). */
  done: Promise<void>;
  /** The copy in progress, and whether it runs at the background priority. */
  current: { copy: TemplateCopy; background: boolean } | undefined;
}

/** Keeps `target` spare copies per major and hands them out. */
export class SpareClones {
  private readonly dir: string;
  private readonly queues = new Map<string, MajorQueue>();

  constructor(
    dataRoot: string,
    private readonly target: number,
    private readonly log: Logger,
    /** Called when the number of ready spares changes (one taken, one made). */
    private readonly onChange: () => void = () => {},
  ) {
    this.dir = path.join(dataRoot, 'spares');
  }

  /**
   * Creates the spares dir and removes copies an earlier agent left half-done. A copy in progress
   * is named after the process making it; one of a live process is left alone (it will finish and
   * be renamed), one of a dead process can never be renamed and goes.
   */
  init(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const entry of fs.readdirSync(this.dir)) {
      const m = /^\.tmp-(\d+)-/.exec(entry);
      if (!entry.startsWith('.tmp-')) continue;
      const owner = m ? Number(m[1]) : 0;
      if (owner === process.pid || (owner > 0 && isAlive(owner))) continue;
      try {
        fs.rmSync(path.join(this.dir, entry), { recursive: true, force: true, maxRetries: 3 });
      } catch (err) {
        // A `cp` orphaned by a killed agent may still be writing into it; the next start cleans up.
        this.log.warn({ entry, err }, 'could not remove an unfinished spare copy yet');
      }
    }
  }

  /** Removes every spare of `major` (its template was re-created). */
  discard(major: string): void {
    for (const entry of this.spares(major)) fs.rmSync(path.join(this.dir, entry), { recursive: true, force: true });
  }

  /** Spares of `major` ready to be taken (not promised to a waiting create). */
  ready(major: string): number {
    return this.spares(major).length;
  }

  private spares(major: string): string[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs.readdirSync(this.dir).filter((e) => e.startsWith(`${major}-`));
  }

  /** Moves a ready spare of `major` to `dest`; false when none is ready. */
  private takeReady(major: string, dest: string): boolean {
    for (const entry of this.spares(major)) {
      try {
        fs.renameSync(path.join(this.dir, entry), dest);
        return true;
      } catch (err) {
        // Another take won the race for this spare: try the next.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return false;
  }

  private queue(major: string, templateDir: string): MajorQueue {
    let q = this.queues.get(major);
    if (!q) {
      q = { templateDir, waiters: [], copying: false, done: Promise.resolve(), current: undefined };
      this.queues.set(major, q);
    }
    q.templateDir = templateDir;
    return q;
  }

  /**
   * Puts a copy of `templateDir` (the template of `major`) at `dest`: a ready spare when there is
   * one ('spare'), else the next copy the copier finishes, in the order asked ('copied'). Starts a
   * refill either way.
   */
  async take(major: string, templateDir: string, dest: string): Promise<'spare' | 'copied'> {
    const q = this.queue(major, templateDir);
    // Spares exist only while nobody waits (the copier serves waiters first), so taking one jumps no line.
    if (q.waiters.length === 0 && this.takeReady(major, dest)) {
      this.onChange();
      this.startCopier(major, q);
      return 'spare';
    }
    const copied = new Promise<void>((resolve, reject) => q.waiters.push({ dest, resolve, reject }));
    // The copy running now goes to the oldest waiter: it is no longer background work.
    if (q.current?.background) {
      q.current.background = false;
      this.setNiceness(q.current.copy, os.getPriority());
    }
    this.startCopier(major, q);
    await copied;
    return 'copied';
  }

  /** Fills the spares of `major` up to the target in the background (one copy at a time). */
  refill(major: string, templateDir: string): Promise<void> {
    return this.startCopier(major, this.queue(major, templateDir));
  }

  private startCopier(major: string, q: MajorQueue): Promise<void> {
    if (!q.copying) {
      q.copying = true;
      q.done = this.copy(major, q);
    }
    return q.done;
  }

  /**
   * Makes copies while creates wait or spares are short; each finished copy goes to the oldest
   * waiter, else to spares/. Never rejects: a failed copy fails the create waiting for it (its
   * converge retries), and a refill that fails gives up until the next take.
   */
  private async copy(major: string, q: MajorQueue): Promise<void> {
    try {
      while (q.waiters.length > 0 || this.spares(major).length < this.target) {
        const id = crypto.randomBytes(6).toString('hex');
        const tmp = path.join(this.dir, `.tmp-${process.pid}-${id}`);
        let copyError: unknown;
        const copy = cloneTemplate(q.templateDir, tmp);
        q.current = { copy, background: q.waiters.length === 0 };
        if (q.current.background) this.setNiceness(copy, Math.min(19, os.getPriority() + BACKGROUND_NICENESS));
        try {
          await copy.done;
        } catch (err) {
          fs.rmSync(tmp, { recursive: true, force: true });
          copyError = err;
        } finally {
          q.current = undefined;
        }
        const waiter = q.waiters.shift();
        if (copyError !== undefined) {
          if (!waiter) {
            this.log.warn({ major, err: copyError }, 'could not prepare a spare copy of the template; the next create tries again');
            return;
          }
          waiter.reject(copyError);
        } else if (!waiter) {
          fs.renameSync(tmp, path.join(this.dir, `${major}-${id}`));
          this.onChange();
        } else {
          try {
            fs.renameSync(tmp, waiter.dest);
            waiter.resolve();
          } catch (err) {
            fs.rmSync(tmp, { recursive: true, force: true });
            waiter.reject(err);
          }
        }
      }
    } catch (err) {
      this.log.warn({ major, err }, 'the template copier stopped; creates waiting for a copy fail and are retried');
      for (const waiter of q.waiters.splice(0)) waiter.reject(err);
    } finally {
      q.copying = false;
    }
  }

  /** Sets the copying process's nice value; it may be gone already, or the agent may not raise it back (no CAP_SYS_NICE). */
  private setNiceness(copy: TemplateCopy, niceness: number): void {
    if (copy.pid === undefined) return;
    try {
      os.setPriority(copy.pid, niceness);
    } catch (err) {
      this.log.debug({ pid: copy.pid, niceness, err }, 'could not change the priority of a template copy');
    }
  }

  /** Waits for running copies (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.done));
  }
}
