// Session state a transaction-mode client creates from SQL (README "Pinning"): a client that
// creates state that outlives its transaction keeps its server connection until the state is gone.
// Read from the SQL text of Query and Parse messages, conservatively: comments and quoted text are
// blanked first, then each statement is matched by its leading keywords (and a few functions
// anywhere in it). Pure.

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
