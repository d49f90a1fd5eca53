/**
 * Runs pgBackRest as the postgres OS user (it reads the data directory and the 0600 config file),
 * as a child process, so a backup of minutes never blocks the agent's event loop. Everything it
 * needs is in the config file; nothing secret is on its command line or in its environment, and
 * its messages are scrubbed of the repository's secrets before they reach a log or a report.
 * Docs: https://pgbackrest.org/command.html
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AgentError, messageOf, type AgentErrorCode } from '../errors.js';
import type { OsUser } from '../runtime/os-user.js';
import type { BackupRepository } from './backup-types.js';
import { printable } from './pgbackrest-info.js';

const run = promisify(execFile);

/** A pgBackRest message that means the repository's files could not be decrypted (wrong or missing key). */
const KEY_ERROR = /unable to load info file|cipher|decrypt|Salted__|key\/value found outside of section/i;

/** The repository's secrets, to scrub from any text that leaves the agent. */
export function repositorySecrets(repo: BackupRepository | undefined): string[] {
  if (!repo) return [];
  const s = repo.store;
  return [repo.cipherPass, ...(s.kind === 's3' ? [s.accessKey, s.secretKey] : [])].filter((x) => x.length >= 4);
}

/** `text` with every secret replaced, and printable. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join('[redacted]');
  return printable(out);
}

/** Whether a pgBackRest message says the repository could not be decrypted. */
export function isKeyError(message: string): boolean {
  return KEY_ERROR.test(message);
}

/** What one run needs. */
export interface PgBackRestRun {
  configFile: string;
  stanza: string;
  command: string;
  options?: readonly string[];
  runAs: OsUser | undefined;
  repo: BackupRepository;
  /** The error code of a failure that is not a key problem. */
  failure: AgentErrorCode;
  timeoutMs: number;
}

/**
 * Runs `pgbackrest --config=<file> --stanza=<stanza> [options] <command>` and returns its stdout.
 * A failure throws AgentError: BACKUP_KEY (naming the key id) when the repository could not be
 * decrypted, else `failure`, with pgBackRest's own message.
 */
export async function runPgBackRest(o: PgBackRestRun): Promise<string> {
  const secrets = repositorySecrets(o.repo);
  try {
    const { stdout } = await run('pgbackrest', [`--config=${o.configFile}`, `--stanza=${o.stanza}`, ...(o.options ?? []), o.command], {
      uid: o.runAs?.uid,
      gid: o.runAs?.gid,
      env: { PATH: '/usr/bin:/bin', LANG: 'C', TZ: 'UTC' },
      cwd: '/',
      timeout: o.timeoutMs,
      killSignal: 'SIGTERM',
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; code?: number | string; killed?: boolean };
    const detail = scrub(`${e.stderr ?? ''}${e.stderr ? '' : (e.stdout ?? '')}`, secrets).slice(-1500) || scrub(messageOf(err), secrets);
    if (e.killed)
      throw new AgentError(
        o.failure,
        `pgbackrest ${o.command} of stanza ${o.stanza} did not finish within ${Math.round(o.timeoutMs / 1000)} s and was stopped: ${detail}`,
      );
    if (e.code === 'ENOENT') throw new AgentError(o.failure, 'pgbackrest is not installed on this host (Debian: apt-get install pgbackrest)');
    if (isKeyError(detail)) throw new AgentError('BACKUP_KEY', keyMessage(o.repo, o.stanza, detail));
    throw new AgentError(o.failure, `pgbackrest ${o.command} of stanza ${o.stanza} failed (exit ${String(e.code ?? '?')}): ${detail}`);
  }
}

/** The message of a repository that could not be decrypted: which key was used, never the key. */
export function keyMessage(repo: BackupRepository, stanza: string, detail: string): string {
  const used =
    repo.cipherPass === '' ? 'no key (the repository settings have no cipher pass)' : `key ${repo.keyId === '' ? '(unnamed)' : JSON.stringify(repo.keyId)}`;
  return `the backup repository could not be decrypted with ${used} for stanza ${stanza}: a wrong or missing repository key; the backups need the key they were written with (${detail.split('\n')[0]?.slice(0, 200) ?? ''})`;
}
