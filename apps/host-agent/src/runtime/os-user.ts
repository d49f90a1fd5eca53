/**
 * The unprivileged OS user postgres runs as. PostgreSQL refuses to run as root, so an agent
 * running as root spawns it with that user's uid/gid; an unprivileged agent runs it as itself.
 */
import fs from 'node:fs';
import { AgentError } from '../errors.js';

/** A uid/gid pair. */
export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/** Looks `name` up in /etc/passwd. */
export function lookupOsUser(name: string, passwdFile = '/etc/passwd'): OsUser {
  const line = fs.readFileSync(passwdFile, 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new AgentError('RUNTIME_ERROR', `OS user ${name} does not exist; create it (postgres refuses to run as root) or pass --pg-os-user`);
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** The user postgres runs as: `name` when the agent is root, else the agent's own user. */
export function postgresRunAs(name: string): OsUser | undefined {
  return process.getuid?.() === 0 ? lookupOsUser(name) : undefined;
}
