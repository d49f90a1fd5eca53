/**
 * The template data directory: initdb runs once per major into <data-root>/template-<major>, and
 * every new instance is a copy of it, which turns "create" from seconds (initdb) into a file copy.
 * A marker file written last tells a finished template from one an agent crash cut short.
 *
 * The template also holds a spare database (SPARE_DATABASE, a copy of template1 nobody may
 * connect to, made once with the template): a new tenant's first database is that spare renamed
 * and given to its owner (instance-admin.ts), a catalog update of a few milliseconds, where
 * CREATE DATABASE copies template1 through the WAL (PostgreSQL 15's WAL_LOG strategy: ~4 MB of WAL
 * and an fsync; measured 0.3 s alone and 1.4 s each with 7 instances creating at once on the 2-core
 * dev machine, against 10 ms and 40 ms for the rename). The price: 7 MB more to copy per instance.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@pgs/service-kit';
import { AgentError, messageOf } from '../errors.js';
import { SPARE_DATABASE } from '../spare-database.js';
import type { OsUser } from './os-user.js';

const run = promisify(execFile);

const MARKER = '.pgs-template';

/** The marker's second line: templates without it predate the spare database and are made again. */
const LAYOUT = 'spare-database';

/** True when `dir` is a finished template of the current layout. */
function isCurrentTemplate(dir: string): boolean {
  try {
    return fs.readFileSync(path.join(dir, MARKER), 'utf8').split('\n').includes(LAYOUT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Adds the spare database to a freshly initialized data directory, in single-user mode: no
 * socket and no port, and the backend's exit is a clean shutdown checkpoint, so every copy starts
 * without recovery. Single-user mode reports a failed statement on stderr, not in its exit code.
 */
async function addSpareDatabase(binDir: string, dataDir: string, runAs: OsUser | undefined): Promise<void> {
  const sql = `CREATE DATABASE "${SPARE_DATABASE}" ALLOW_CONNECTIONS false\n`;
  const out = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(path.join(binDir, 'postgres'), ['--single', '-D', dataDir, 'postgres'], {
      uid: runAs?.uid,
      gid: runAs?.gid,
      stdio: ['pipe', 'ignore', 'pipe'],
      env: { PATH: '/usr/bin:/bin', LANG: 'C' },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
    child.stdin.end(sql);
  });
  if (out.code !== 0 || /\b(ERROR|FATAL|PANIC): /.test(out.stderr)) {
    throw new AgentError('INITDB_FAILED', `creating the spare database in the template failed (exit ${String(out.code)}): ${out.stderr.trim().slice(-1000)}`);
  }
}

/** The template dir for `major` under `dataRoot`, created by initdb when missing (`created` says so). */
export async function ensureTemplate(options: {
  dataRoot: string;
  major: string;
  binDir: string;
  runAs: OsUser | undefined;
  log: Logger;
}): Promise<{ dir: string; created: boolean }> {
  const dir = path.join(options.dataRoot, `template-${options.major}`);
  if (isCurrentTemplate(dir)) return { dir, created: false };
  if (fs.existsSync(path.join(dir, MARKER)))
    options.log.info({ major: options.major, templateDir: dir }, 'template predates the spare database; making it again');
  const started = performance.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(tmp, { mode: 0o700 });
  if (options.runAs) fs.chownSync(tmp, options.runAs.uid, options.runAs.gid);
  const args = ['-D', tmp, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C'];
  try {
    await run(path.join(options.binDir, 'initdb'), args, { uid: options.runAs?.uid, gid: options.runAs?.gid, env: { PATH: '/usr/bin:/bin', LANG: 'C' } });
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    const stderr = (err as { stderr?: string }).stderr ?? messageOf(err);
    throw new AgentError('INITDB_FAILED', `initdb of the PostgreSQL ${options.major} template failed: ${stderr.trim().slice(-1000)}`, { cause: err });
  }
  try {
    await addSpareDatabase(options.binDir, tmp, options.runAs);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  // The agent's own settings live in pgs.conf (rewritten on every spec change); ALTER SYSTEM keeps
  // postgresql.auto.conf, which PostgreSQL reads after includes.
  fs.appendFileSync(path.join(tmp, 'postgresql.conf'), "\n# pgs-host-agent settings\ninclude_if_exists = 'pgs.conf'\n");
  fs.writeFileSync(path.join(tmp, MARKER), `${options.major}\n${LAYOUT}\n`);
  fs.renameSync(tmp, dir);
  options.log.info({ major: options.major, templateDir: dir, durationMs: Math.round(performance.now() - started) }, 'template data directory initialized');
  return { dir, created: true };
}

/** A copy of the template in progress. */
export interface TemplateCopy {
  /** The copying process (for its scheduling priority); undefined when it could not be spawned. */
  pid: number | undefined;
  done: Promise<void>;
}

/** Copies the template to `dataDir`, keeping owner and modes (cp -a; reflinks where the filesystem has them). */
export function cloneTemplate(templateDir: string, dataDir: string): TemplateCopy {
  const child = execFile('cp', ['-a', '--reflink=auto', templateDir, dataDir]);
  const done = new Promise<void>((resolve, reject) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', (err) => reject(new AgentError('RUNTIME_ERROR', `copying the template to ${dataDir} failed: ${messageOf(err)}`, { cause: err })));
    child.once('close', (code, signal) => {
      if (code !== 0) {
        reject(new AgentError('RUNTIME_ERROR', `copying the template to ${dataDir} failed (${code ?? signal}): ${stderr.trim().slice(-500)}`));
        return;
      }
      fs.rmSync(path.join(dataDir, MARKER), { force: true });
      resolve();
    });
  });
  return { pid: child.pid, done };
}
