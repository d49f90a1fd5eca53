// A Query of one SQL-level PREPARE or DEALLOCATE statement, read so that a carried session can
// make its prepared statements again on a new server (session-state.ts). The statement's name is
// read as PostgreSQL reads an identifier: unquoted it is folded to lower case (ASCII letters only),
// "quoted" it is kept as written with "" as a quote. Anything this does not read with certainty (a
// second statement, a Unicode-escaped name, a name past 63 bytes, PREPARE TRANSACTION) is
// 'unknown', and the session is then not carried. Pure.
import { blankLiterals } from './session-pins.js';

/** What one Query does to the session's prepared statements. */
export type SqlPrepare =
  /** PREPARE name [(types)] AS statement: `text` is the whole Query, to run again as it is. */
  | { kind: 'prepare'; name: string; text: string }
  /** DEALLOCATE [PREPARE] name (not ALL: session-pins.ts reads that one). */
  | { kind: 'deallocate'; name: string }
  /** A PREPARE or DEALLOCATE that cannot be followed. */
  | { kind: 'unknown' };

/** PostgreSQL truncates longer identifiers (NAMEDATALEN - 1). */
const MAX_NAME_BYTES = 63;
/** Leading white space and comments (a nested block comment is not skipped: the name then does not read). */
const LEADING = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*(?:[^*]|\*(?!\/))*\*\/)*/;
const IDENTIFIER = /^(?:"((?:[^"]|"")+)"|([A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*))/;

/** The identifier at the start of `text` and what follows it, or undefined. */
function identifier(text: string): { name: string; rest: string } | undefined {
  const m = IDENTIFIER.exec(text);
  if (!m) return undefined;
  const name = m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!.replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return undefined;
  return { name, rest: text.slice(m[0].length) };
}

/** The keyword `word` (case-insensitive) at the start of `text` and what follows it, or undefined. */
function keyword(text: string, word: string): string | undefined {
  const m = new RegExp(`^${word}(?![A-Za-z0-9_$\\u0080-\\uffff])`, 'i').exec(text);
  return m ? text.slice(m[0].length).replace(LEADING, '') : undefined;
}

const PREPARE_OR_DEALLOCATE = /prepare|deallocate/i;

/** The PREPARE or DEALLOCATE that `sql` (a whole simple Query) is; undefined when it is neither. */
export function sqlPrepareOf(sql: string): SqlPrepare | undefined {
  // Most queries name neither keyword: told apart here, without blanking their literals (every
  // Query of a session-mode client comes here).
  if (!PREPARE_OR_DEALLOCATE.test(sql)) return undefined;
  const statements = blankLiterals(sql)
    .split(';')
    .map((s) => s.trim().toLowerCase());
  const kinds = statements.filter((s) => /^(prepare|deallocate)\b/.test(s));
  if (kinds.length === 0) return undefined;
  // One statement only: its text is the whole Query, and nothing else in it changes the session.
  if (statements.filter((s) => s !== '').length !== 1) return { kind: 'unknown' };
  const head = sql.replace(LEADING, '');
  const afterPrepare = keyword(head, 'prepare');
  if (afterPrepare !== undefined) {
    // Two-phase commit, not a statement.
    if (keyword(afterPrepare, 'transaction') !== undefined) return { kind: 'unknown' };
    const id = identifier(afterPrepare);
    // The name ends where the parameter types or AS begin (U&"..." stops at its '&': unknown).
    const after = id?.rest.replace(LEADING, '');
    if (!id || after === undefined || (!after.startsWith('(') && keyword(after, 'as') === undefined)) return { kind: 'unknown' };
    return { kind: 'prepare', name: id.name, text: sql };
  }
  let rest = keyword(head, 'deallocate');
  if (rest === undefined) return { kind: 'unknown' };
  rest = keyword(rest, 'prepare') ?? rest;
  // DEALLOCATE ALL forgets every statement: read by session-pins.ts (dropsPrepared).
  if (
    keyword(rest, 'all') !== undefined &&
    rest
      .replace(/^all/i, '')
      .replace(LEADING, '')
      .replace(/;?\s*$/, '') === ''
  )
    return undefined;
  const id = identifier(rest);
  if (!id || id.rest.replace(LEADING, '').replace(/^;\s*$/, '') !== '') return { kind: 'unknown' };
  return { kind: 'deallocate', name: id.name };
}
