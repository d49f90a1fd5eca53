/** The spare pool on a real filesystem: a small directory stands in for the template (cp copies any tree). */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDataRoot, testLogger } from '../testing/test-env.js';
import { SpareClones } from './spare-clones.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function fakeTemplate(): { dataRoot: string; template: string } {
  const dataRoot = tempDataRoot('pgs-spares-test-');
  roots.push(dataRoot);
  const template = path.join(dataRoot, 'template-15');
  fs.mkdirSync(path.join(template, 'base'), { recursive: true });
  fs.writeFileSync(path.join(template, 'PG_VERSION'), '15\n');
  fs.writeFileSync(path.join(template, 'base', 'data'), Buffer.alloc(256 * 1024, 7));
  fs.writeFileSync(path.join(template, '.pgs-template'), '15\nspare-database\n');
  return { dataRoot, template };
}

describe('SpareClones', () => {
  it('hands out a ready spare, then copies to the creates waiting, oldest first, and refills to the target', async () => {
    const { dataRoot, template } = fakeTemplate();
    const spares = new SpareClones(dataRoot, 1, testLogger());
    spares.init();
    await spares.refill('15', template);
    expect(fs.readdirSync(path.join(dataRoot, 'spares'))).toHaveLength(1);

    const finished: number[] = [];
    const dests = Array.from({ length: 4 }, (_, i) => path.join(dataRoot, `dest-${i}`));
    const how = await Promise.all(dests.map((d, i) => spares.take('15', template, d).then((h) => (finished.push(i), h))));
    expect(how).toEqual(['spare', 'copied', 'copied', 'copied']);
    expect(finished).toEqual([0, 1, 2, 3]);
    for (const d of dests) {
      expect(fs.readFileSync(path.join(d, 'base', 'data')).equals(Buffer.alloc(256 * 1024, 7))).toBe(true);
      // The marker stays with the template: a copy is never taken for one.
      expect(fs.existsSync(path.join(d, '.pgs-template'))).toBe(false);
    }
    await spares.settle();
    const left = fs.readdirSync(path.join(dataRoot, 'spares'));
    expect(left.filter((e) => e.startsWith('15-'))).toHaveLength(1);
    expect(left.filter((e) => e.startsWith('.tmp-'))).toEqual([]);
  });

  it('fails the creates waiting when the template cannot be copied, and tries again for the next one', async () => {
    const { dataRoot, template } = fakeTemplate();
    const spares = new SpareClones(dataRoot, 0, testLogger());
    spares.init();
    const missing = path.join(dataRoot, 'template-99');
    const both = [spares.take('99', missing, path.join(dataRoot, 'a')), spares.take('99', missing, path.join(dataRoot, 'b'))];
    for (const p of both) await expect(p).rejects.toMatchObject({ code: 'RUNTIME_ERROR' });
    expect(fs.readdirSync(path.join(dataRoot, 'spares'))).toEqual([]);
    // With no spare kept (--spare-clones 0) every create is copied, and a good template works again.
    await expect(spares.take('15', template, path.join(dataRoot, 'c'))).resolves.toBe('copied');
    expect(fs.existsSync(path.join(dataRoot, 'c', 'PG_VERSION'))).toBe(true);
  });
});
