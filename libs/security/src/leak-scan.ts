/**
 * Finds secrets where none may be: log files, the store file, a sealed-secrets table. Tests use it
 * to prove "logs never contain passwords, tokens or connection strings with passwords" and "the
 * store file contains no plain secret". Pure: give it text (or a file's bytes as latin1),
 * it returns what it found, never the secret itself.
 */

/** One suspicious match. */
export interface LeakFinding {
  readonly kind: 'operator-token' | 'join-token' | 'private-key' | 'connection-string-password' | 'scram-verifier' | 'known-secret';
  /** Character offset of the match. */
  readonly offset: number;
  /** The match with its secret part masked, for the test's failure message. */
  readonly preview: string;
}

const PATTERNS: ReadonlyArray<{ kind: LeakFinding['kind']; re: RegExp }> = [
  { kind: 'operator-token', re: /pgso_[A-Za-z0-9_-]{43}/g },
  { kind: 'join-token', re: /pgsj_[A-Za-z0-9_-]{43}/g },
  { kind: 'private-key', re: /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/g },
  // postgres://user:password@host, postgresql://..., and key=value `password=...` in a libpq string.
  { kind: 'connection-string-password', re: /postgres(?:ql)?:\/\/[^:/@\s"']+:[^@\s"']+@/g },
  { kind: 'connection-string-password', re: /\bhost=\S+[^"'\n]*\bpassword=[^\s"']+/g },
  { kind: 'scram-verifier', re: /SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+/g },
];

function mask(text: string): string {
  return text.length <= 12 ? `${text.slice(0, 4)}…` : `${text.slice(0, 10)}…(${text.length} chars)`;
}

/**
 * Scans `text` for token shapes, private keys, connection strings with passwords and SCRAM verifiers
 * (password-equivalent for impersonating the server), and for each of `knownSecrets` verbatim (e.g.
 * the passwords and tokens a test created). `allow` skips kinds that belong where you scan (a store
 * may hold verifiers).
 */
export function scanForLeaks(text: string, options: { knownSecrets?: readonly string[]; allow?: readonly LeakFinding['kind'][] } = {}): LeakFinding[] {
  const allow = new Set(options.allow ?? []);
  const findings: LeakFinding[] = [];
  for (const { kind, re } of PATTERNS) {
    if (allow.has(kind)) continue;
    for (const m of text.matchAll(re)) findings.push({ kind, offset: m.index, preview: mask(m[0]) });
  }
  if (!allow.has('known-secret')) {
    for (const secret of options.knownSecrets ?? []) {
      // Short strings would match by chance; secrets the platform makes are long.
      if (secret.length < 6) continue;
      let at = text.indexOf(secret);
      while (at >= 0) {
        findings.push({ kind: 'known-secret', offset: at, preview: mask(secret) });
        at = text.indexOf(secret, at + 1);
      }
    }
  }
  return findings.sort((a, b) => a.offset - b.offset);
}
