import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addKeyToFile, createKeyFile, ensureKeyFile, loadKeyRing, readKeyFile } from './key-source.js';
import { generateSecretKey } from './secret-box.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-keysrc-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('loadKeyRing', () => {
  it('reads PGS_SECRET_KEY, PGS_SECRET_KEYS (wins) and a key file (wins over env)', () => {
    const single = generateSecretKey();
    expect(loadKeyRing({ env: { PGS_SECRET_KEY: single } }).keyIds).toHaveLength(1);
    const ring = loadKeyRing({ env: { PGS_SECRET_KEY: single, PGS_SECRET_KEYS: `b:${generateSecretKey()},a:${generateSecretKey()}` } });
    expect(ring.keyIds).toEqual(['b', 'a']);
    const file = path.join(dir, 'env-vs-file.key');
    createKeyFile(file, 'filekey');
    expect(loadKeyRing({ env: { PGS_SECRET_KEYS: `b:${generateSecretKey()}` }, keyFile: file }).activeKeyId).toBe('filekey');
  });

  it('says what to set when no key is configured', () => {
    expect(() => loadKeyRing({ env: {} })).toThrow(/set PGS_SECRET_KEY .*PGS_SECRET_KEYS/);
  });

  it('refuses a key file readable by others, with the chmod to run', () => {
    const file = path.join(dir, 'open.key');
    fs.writeFileSync(file, `${generateSecretKey()}\n`, { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    expect(() => readKeyFile(file)).toThrow(`key file ${file} has mode 0644; it must be readable by its owner only: chmod 600 ${file}`);
    fs.chmodSync(file, 0o600);
    expect(readKeyFile(file).keyIds).toHaveLength(1);
  });

  it('creates a 0600 key file once, never overwrites it, and adds a new active key for rotation', () => {
    const file = path.join(dir, 'sub', 'secret.key');
    const first = ensureKeyFile(file);
    expect(first.created).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const sealed = first.ring.seal('secret', 'ctx');
    const again = ensureKeyFile(file);
    expect(again.created).toBe(false);
    expect(again.ring.openText(sealed, 'ctx')).toBe('secret');
    expect(() => createKeyFile(file)).toThrow(/EEXIST/);
    const rotated = addKeyToFile(file, 'k2');
    expect(rotated.activeKeyId).toBe('k2');
    expect(rotated.needsRotation(sealed)).toBe(true);
    expect(rotated.openText(rotated.reseal(sealed, 'ctx'), 'ctx')).toBe('secret');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });
});
