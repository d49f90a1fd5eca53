import fs from 'node:fs';
import path from 'node:path';

/** Finds the newest installed PostgreSQL server binaries (Debian layout), or PGS_PG_BIN_DIR. */
export function findPostgresBinDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const override = env.PGS_PG_BIN_DIR;
  if (override) return override;
  const root = '/usr/lib/postgresql';
  const majors = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((d) => /^\d+$/.test(d))
        .map(Number)
        .sort((a, b) => b - a)
    : [];
  for (const major of majors) {
    const bin = path.join(root, String(major), 'bin');
    if (fs.existsSync(path.join(bin, 'postgres'))) return bin;
  }
  throw new Error('no PostgreSQL server binaries found under /usr/lib/postgresql/*/bin; install postgresql or set PGS_PG_BIN_DIR');
}

/** uid/gid of the unprivileged OS user postgres runs as when we are root. */
export function postgresOsUser(name = 'postgres'): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`OS user ${name} does not exist; create it (postgres refuses to run as root)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}
