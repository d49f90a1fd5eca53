/**
 * Where manifests and their passwords are read from: files, every *.yaml / *.yml / *.json in a
 * directory (not below it, in name order), or stdin for `-`; passwords from the environment
 * variable or the file (relative to the manifest) a manifest names.
 */
import fs from 'node:fs';
import path from 'node:path';
import { validatePassword } from '@pgs/tenancy';
import type { CliIo } from '../context.js';
import { UsageError } from '../errors.js';
import { importYaml } from '../yaml-lib.js';
import type { ManifestSource, PasswordRef, TenantManifest } from './model.js';
import { initScriptLabel } from './plan.js';
import { parseManifests } from './parse.js';
import { checkUnique, ManifestError } from './validate.js';

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

function filesOf(target: string, cwd: string): string[] {
  const full = path.resolve(cwd, target);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(full);
  } catch {
    throw new UsageError(`cannot read ${target}: no such file or directory`, { hint: 'give a manifest file, a directory of them, or - for stdin' });
  }
  if (!stat.isDirectory()) return [target];
  const files = fs
    .readdirSync(full)
    .filter((f) => EXTENSIONS.has(path.extname(f).toLowerCase()))
    .sort();
  if (files.length === 0) throw new UsageError(`${target} holds no *.yaml, *.yml or *.json file`);
  return files.map((f) => path.join(target, f));
}

async function readStdin(io: CliIo): Promise<string> {
  if (io.stdin.isTTY === true)
    throw new UsageError('-f - reads manifests from a pipe, but stdin is a terminal', { hint: 'e.g. cat tenants.yaml | pgsctl apply -f -' });
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads and validates every manifest `targets` name; two documents for one tenant are refused. */
export async function loadManifests(io: CliIo, targets: readonly string[]): Promise<TenantManifest[]> {
  if (targets.length === 0) throw new UsageError('no manifest given', { hint: 'pass -f <file|dir|->, e.g. pgsctl apply -f tenants.yaml' });
  const yaml = await importYaml();
  const out: TenantManifest[] = [];
  for (const target of targets) {
    const files = target === '-' ? ['-'] : filesOf(target, io.cwd);
    for (const file of files) {
      let text: string;
      if (file === '-') text = await readStdin(io);
      else {
        try {
          text = fs.readFileSync(path.resolve(io.cwd, file), 'utf8');
        } catch (err) {
          throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
        }
      }
      out.push(...parseManifests(yaml, file, text));
    }
  }
  if (out.length === 0) throw new UsageError(`no Tenant document in ${targets.join(', ')}`);
  checkUnique(out);
  return out;
}

/** The password a manifest points to, checked by the tenancy rules; `where` is its path in the manifest. */
export function readPassword(io: CliIo, ref: PasswordRef, source: ManifestSource, tenant: string, where: string): string {
  let text: string;
  if ('fromEnv' in ref) {
    const value = io.env[ref.fromEnv];
    if (value === undefined || value === '') throw new ManifestError(source, tenant, where, `environment variable ${ref.fromEnv} is not set`);
    text = value;
  } else {
    const base = source.file === '-' ? io.cwd : path.dirname(path.resolve(io.cwd, source.file));
    const file = path.resolve(base, ref.fromFile);
    try {
      text = fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ManifestError(source, tenant, where, `cannot read password file ${file}: ${(err as Error).message}`);
    }
  }
  try {
    return validatePassword(text, where);
  } catch (err) {
    throw new ManifestError(source, tenant, where, (err as Error).message);
  }
}

/** One init script as the coordinator takes it. */
export interface InitScriptInput {
  name: string;
  sql: string;
  database: string;
}

/** The manifest's init scripts with their files read (relative to the manifest), named by file or position. */
export function readInitScripts(io: CliIo, m: TenantManifest): InitScriptInput[] {
  return (m.initSql ?? []).map((script, i) => {
    if (script.sql !== undefined) return { name: `inline-${i + 1}`, sql: script.sql, database: script.database };
    const base = m.source.file === '-' ? io.cwd : path.dirname(path.resolve(io.cwd, m.source.file));
    const file = path.resolve(base, script.file ?? '');
    let sql: string;
    try {
      sql = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ManifestError(m.source, m.name, `spec.initSql[${i}].file`, `cannot read ${initScriptLabel(script, i)}: ${(err as Error).message}`);
    }
    if (sql.trim() === '') throw new ManifestError(m.source, m.name, `spec.initSql[${i}].file`, `${file} is empty`);
    return { name: script.file ?? `inline-${i + 1}`, sql, database: script.database };
  });
}
