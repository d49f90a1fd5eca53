// Session state a transaction-mode client creates from SQL (README "Pinning"): a client that
// creates state that outlives its transaction keeps its server connection until the state is gone.
// Read from the SQL text of Query and Parse messages, conservatively: comments and quoted text are
// blanked first, then each statement is matched by its leading keywords (and a few functions
// anywhere in it). Pure.
import { ProtocolError } from '@pgs/wire-protocol';

/** Kinds of session state, each pinned and unpinned on its own. */
export type PinReason = 'set' | 'listen' | 'advisory_lock' | 'temp_table' | 'hold_cursor' | 'prepare';

export interface SqlEffects {
  pins: PinReason[];
  unpins: PinReason[];
  /** DISCARD ALL / DEALLOCATE ALL: the server forgets its prepared statements (the router's too). */
  dropsPrepared: boolean;
}

const ALL: readonly PinReason[] = ['set', 'listen', 'advisory_lock', 'temp_table', 'hold_cursor', 'prepare'];

/** Blanks comments, string literals, quoted identifiers and dollar-quoted bodies (keeps `;`s that split statements). */
export function blankLiterals(sql: string): string {
  return sql.replace(/--[^\n]*|\/\*[\s\S]*?(\*\/|$)|'(?:[^']|'')*('|$)|"(?:[^"]|"")*("|$)|\$([A-Za-z_][A-Za-z_0-9]*)?\$[\s\S]*?(\$\4\$|$)/g, (m) =>
    m.startsWith("'") ? "''" : ' ',
  );
}

/** No effect at all (shared: callers only read it). */
const NONE: SqlEffects = Object.freeze({ pins: [], unpins: [], dropsPrepared: false }) as SqlEffects;

// Every rule below needs one of these words somewhere in the text (a superset: comments and
// literals are not blanked here), so most queries are passed over with one scan.
const MAYBE = /set|listen|advisory|temp|hold|prepare|deallocate|discard|close/i;

/** MAYBE's words as bytes, by their first letter (lower case). */
const WORDS_BY_FIRST: Array<Uint8Array[] | undefined> = [];
for (const w of ['set', 'listen', 'advisory', 'temp', 'hold', 'prepare', 'deallocate', 'discard', 'close']) {
  (WORDS_BY_FIRST[w.charCodeAt(0)] ??= []).push(Buffer.from(w, 'latin1'));
}

/** True when `word` (lower case letters) is at `at` in `msg`, in any case. `| 0x20` lowers an ASCII letter and makes no other byte one. */
function wordAt(msg: Buffer, at: number, end: number, word: Uint8Array): boolean {
  if (end - at < word.length) return false;
  for (let k = 1; k < word.length; k++) if ((msg[at + k]! | 0x20) !== word[k]) return false;
  return true;
}

/**
 * The SQL text in `msg` from `start` to its NUL, or undefined when it holds none of MAYBE's words
 * (most queries: then it is not decoded at all, and sqlEffects would find nothing in it). The test
 * is made on the bytes; the words are ASCII, which UTF-8 never uses inside a longer character, and
 * MAYBE (no `u` flag) matches no non-ASCII letter, so the two tests agree. This runs for every
 * Query and Parse in the pooled modes. Throws ProtocolError when the text has no NUL (`what` names it).
 */
export function sqlTextIfMaybe(msg: Buffer, start: number, what: string): string | undefined {
  let maybe = false;
  let end = start;
  for (; end < msg.length; end++) {
    const b = msg[end]!;
    if (b === 0) break;
    if (maybe) continue;
    const words = WORDS_BY_FIRST[b | 0x20];
    if (words) for (const w of words) if (wordAt(msg, end, msg.length, w)) maybe = true;
  }
  if (end === msg.length) throw new ProtocolError(`${what}: missing NUL terminator`);
  return maybe ? msg.toString('utf8', start, end) : undefined;
}

/** sqlEffects of the SQL text in `msg` from `start` to its NUL (sqlTextIfMaybe: most texts are not decoded). */
export function sqlEffectsAt(msg: Buffer, start: number, what: string): SqlEffects {
  const sql = sqlTextIfMaybe(msg, start, what);
  return sql === undefined ? NONE : sqlEffects(sql);
}

/** What the statements in `sql` do to session state. */
export function sqlEffects(sql: string): SqlEffects {
  if (!MAYBE.test(sql)) return NONE;
  const pins = new Set<PinReason>();
  const unpins = new Set<PinReason>();
  let dropsPrepared = false;
  for (const raw of blankLiterals(sql).split(';')) {
    const s = raw.trim().replace(/\s+/g, ' ').toLowerCase();
    if (s === '') continue;
    if (/^set (?!local\b|transaction\b|constraints\b)/.test(s)) pins.add('set');
    if (/\bset_config\s*\([^)]*,\s*false\s*\)/.test(s)) pins.add('set');
    if (/^reset all\b/.test(s)) unpins.add('set');
    if (/^listen\b/.test(s)) pins.add('listen');
    if (/^unlisten \*/.test(s)) unpins.add('listen');
    if (/\bpg_(try_)?advisory_lock(_shared)?\s*\(/.test(s)) pins.add('advisory_lock');
    if (/\bpg_advisory_unlock_all\s*\(/.test(s)) unpins.add('advisory_lock');
    // ON COMMIT DROP: gone with the transaction, no session state.
    if (/^create (or replace )?(global |local )?(temp|temporary) /.test(s) && !/\bon commit drop\b/.test(s)) pins.add('temp_table');
    if (/^select\b.*\binto (temp|temporary)\b/.test(s)) pins.add('temp_table');
    if (/^discard temp(orary)?\b/.test(s)) unpins.add('temp_table');
    if (/^declare\b.*\bwith hold\b/.test(s)) pins.add('hold_cursor');
    if (/^close all\b/.test(s)) unpins.add('hold_cursor');
    if (/^prepare\b/.test(s)) pins.add('prepare');
    if (/^deallocate( prepare)? all\b/.test(s)) {
      unpins.add('prepare');
      dropsPrepared = true;
    }
    if (/^discard all\b/.test(s)) {
      for (const r of ALL) unpins.add(r);
      dropsPrepared = true;
    }
  }
  // A statement that pins and one that unpins in the same text: the state may remain, stay pinned.
  for (const r of pins) unpins.delete(r);
  return { pins: [...pins], unpins: [...unpins], dropsPrepared };
}

/** A client's pins: the kinds of session state it holds now. */
export class SessionPins {
  /** Made at the first pin: most clients never hold session state, and many stay idle for long. */
  #held: Set<PinReason> | undefined;

  /** Applies `effects`; returns true when the client's pinned state changed (pinned ⇄ not). */
  apply(effects: SqlEffects): boolean {
    const before = this.pinned;
    if (this.#held) for (const r of effects.unpins) this.#held.delete(r);
    for (const r of effects.pins) (this.#held ??= new Set()).add(r);
    return before !== this.pinned;
  }

  get pinned(): boolean {
    return this.#held !== undefined && this.#held.size > 0;
  }

  get reasons(): PinReason[] {
    return this.#held ? [...this.#held] : [];
  }
}
