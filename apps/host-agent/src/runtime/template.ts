/**
 * The template data directory: initdb runs once per major into <data-root>/template-<major>, and
 * every new instance is a copy of it, which turns "create" from seconds (initdb) into a file copy.
 * A marker file written last tells a finished template from one an agent crash cut short.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@pgs/service-kit';
import { AgentError, messageOf } from '../errors.js';
import type { OsUser } from './os-user.js';

const run = promisify(execFile);

const MARKER = '.pgs-template';

/** The template dir for `major` under `dataRoot`, created by initdb when missing (`created` says so). */
export async function ensureTemplate(options: { dataRoot: string; major: string; binDir: string; runAs: OsUser | undefined; log: Logger }): Promise<{ dir: string; created: boolean }> {
  const dir = path.join(options.dataRoot, `template-${options.major}`);
  if (fs.existsSync(path.join(dir, MARKER))) return { dir, created: false };
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
  // The agent's own settings live in pgs.conf (rewritten on every spec change); ALTER SYSTEM keeps
  // postgresql.auto.conf, which PostgreSQL reads after includes.
  fs.appendFileSync(path.join(tmp, 'postgresql.conf'), "\n# pgs-host-agent settings\ninclude_if_exists = 'pgs.conf'\n");
  fs.writeFileSync(path.join(tmp, MARKER), `${options.major}\n`);
  fs.renameSync(tmp, dir);
  options.log.info({ major: options.major, templateDir: dir, durationMs: Math.round(performance.now() - started) }, 'template data directory initialized');
  return { dir, created: true };
}

/** Copies the template to `dataDir`, keeping owner and modes (cp -a; reflinks where the filesystem has them). */
export async function cloneTemplate(templateDir: string, dataDir: string): Promise<void> {
  try {
    await run('cp', ['-a', '--reflink=auto', templateDir, dataDir]);
  } catch (err) {
    throw new AgentError('RUNTIME_ERROR', `copying the template to ${dataDir} failed: ${messageOf(err)}`, { cause: err });
  }
  fs.rmSync(path.join(dataDir, MARKER), { force: true });
}
