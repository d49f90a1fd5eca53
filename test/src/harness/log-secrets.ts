/**
 * Secrets in logs, found from outside: every log file a fleet wrote (its processes' logs
 * and the tenant instances' server logs) is searched for the shapes of pgs secrets — operator and
 * join tokens, PEM private keys, connection strings with a password — and for the exact secrets the
 * test handed out. Black-box on purpose: the shapes are spelled out here, not imported from the apps.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Shapes of secrets that must never reach a log. */
export const SECRET_PATTERNS: Readonly<Record<string, RegExp>> = Object.freeze({
  'operator token': /pgso_[A-Za-z0-9_-]{43}/,
  'join token': /pgsj_[A-Za-z0-9_-]{43}/,
  'private key': /PRIVATE KEY-----/,
  // userinfo with a password; user and password cannot hold whitespace, '/', '@' unescaped.
  'connection string with a password': /postgres(?:ql)?:\/\/[^\s:/@]+:[^\s/@]+@/,
});

/** One hit; names the secret by kind or index, never by value (this goes into the test output). */
export interface SecretFinding {
  file: string;
  line: number;
  what: string;
}

/** Every log file under `root`: *.log files and everything in a `logs` dir, at any depth. */
export function logFilesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, inLogs: boolean): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      // A running fleet creates and drops dirs (spare clones, temp files) while we walk.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full, inLogs || e.name === 'logs' || e.name === 'log');
      else if (e.isFile() && (inLogs || e.name.endsWith('.log'))) out.push(full);
    }
  };
  walk(root, false);
  return out.sort();
}

/** Searches the files line by line for SECRET_PATTERNS and for each of `knownSecrets` (empty ones ignored). */
export function findSecretsInFiles(files: readonly string[], knownSecrets: readonly string[]): SecretFinding[] {
  const secrets = knownSecrets.filter((s) => s.length > 0);
  const findings: SecretFinding[] = [];
  for (const file of files) {
    let content: string;
    try {
      content = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const lines = content.split('\n');
    lines.forEach((text, i) => {
      for (const [what, re] of Object.entries(SECRET_PATTERNS)) if (re.test(text)) findings.push({ file, line: i + 1, what });
      secrets.forEach((s, k) => {
        if (text.includes(s)) findings.push({ file, line: i + 1, what: `known secret #${k}` });
      });
    });
  }
  return findings;
}
