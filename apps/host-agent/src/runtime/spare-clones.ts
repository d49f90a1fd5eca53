/**
 * Ready-made copies of the template. Copying ~40 MB of a fresh data directory takes a second or
 * more on a slow disk, so the agent keeps a few copies ready under <data-root>/spares and a new
 * instance takes one by rename (atomic, same filesystem), which makes create -> accepting
 * connections a matter of starting postgres. Spares are refilled in the background after each take.
 * A copy is renamed into spares/ only when complete, so a crash never leaves half a spare in use.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '@pgs/service-kit';
import { isAlive } from './postmaster-pid.js';
import { cloneTemplate } from './template.js';

/** Keeps `target` spare copies per major and hands them out. */
export class SpareClones {
  private readonly dir: string;
  private readonly refilling = new Map<string, Promise<void>>();

  constructor(
    dataRoot: string,
    private readonly target: number,
    private readonly log: Logger,
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

  private spares(major: string): string[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs.readdirSync(this.dir).filter((e) => e.startsWith(`${major}-`));
  }

  /** Moves a spare of `major` to `dest`; false when none is ready. Starts a refill either way. */
  take(major: string, dest: string): boolean {
    let taken = false;
    for (const entry of this.spares(major)) {
      try {
        fs.renameSync(path.join(this.dir, entry), dest);
        taken = true;
        break;
      } catch (err) {
        // Another take won the race for this spare: try the next.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return taken;
  }

  /** Fills the spares of `major` up to the target in the background (one copy at a time). */
  refill(major: string, templateDir: string): Promise<void> {
    const running = this.refilling.get(major);
    if (running) return running;
    const work = (async () => {
      while (this.spares(major).length < this.target) {
        const id = crypto.randomBytes(6).toString('hex');
        const tmp = path.join(this.dir, `.tmp-${process.pid}-${id}`);
        await cloneTemplate(templateDir, tmp);
        fs.renameSync(tmp, path.join(this.dir, `${major}-${id}`));
      }
    })()
      .catch((err: unknown) => this.log.warn({ major, err }, 'could not prepare a spare copy of the template; instances are copied on create instead'))
      .finally(() => this.refilling.delete(major));
    this.refilling.set(major, work);
    return work;
  }

  /** Waits for running refills (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.refilling.values()]);
  }
}
