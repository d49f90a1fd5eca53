/**
 * The unprivileged OS user postgres runs as. PostgreSQL refuses to run as root, so an agent
 * running as root spawns it with that user's uid/gid; an unprivileged agent runs it as itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../errors.js';

/** A uid/gid pair. */
export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/** Looks `name` up in /etc/passwd. */
export function lookupOsUser(name: string, passwdFile = '/etc/passwd'): OsUser {
  const line = fs
    .readFileSync(passwdFile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined)
    throw new AgentError('RUNTIME_ERROR', `OS user ${name} does not exist; create it (postgres refuses to run as root) or pass --pg-os-user`);
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** The user postgres runs as: `name` when the agent is root, else the agent's own user. */
export function postgresRunAs(name: string): OsUser | undefined {
  return process.getuid?.() === 0 ? lookupOsUser(name) : undefined;
}

/**
 * Throws unless `user` may enter every directory from / down to `dir` (postgres must reach its data
 * directory under the agent's data root), naming the first one in the way.
 */
export function assertTraversable(dir: string, user: OsUser): void {
  const parts = path.resolve(dir).split(path.sep).filter(Boolean);
  let current: string = path.sep;
  for (const part of ['', ...parts]) {
    current = path.join(current, part);
    const st = fs.statSync(current);
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) {
      throw new AgentError(
        'RUNTIME_ERROR',
        `the OS user ${user.name} cannot enter ${current} (mode ${(st.mode & 0o777).toString(8)}), so postgres cannot reach ${dir}; make it traversable (chmod o+x ${current}) or choose another --data-root`,
      );
    }
  }
}
