// What a session-mode client has built on its server connection, followed from the messages both
// ways, so that the client can be carried to another server (the tenant's new primary after a
// switch) without noticing: whether it is between transactions, the SETs to run again there, and
// the prepared statements to make again there (protocol-level named Parses, and SQL PREPARE run
// alone in a Query between transactions; both share one namespace on the server, so Close and
// DEALLOCATE forget either). Anything else that outlives a transaction (temporary tables, LISTEN,
// advisory locks, WITH HOLD cursors, a PREPARE or DEALLOCATE inside a transaction or beside other
// statements, a SET the router cannot replay) makes the session one that cannot be carried;
// session-pins.ts and sql-prepare.ts read it from the SQL. A reply is matched to its request in order: ParseComplete and CloseComplete answer
// Parse and Close; after an ErrorResponse the server skips to the next sync point, each of which
// (Query, Sync, FunctionCall) gets one ReadyForQuery. PostgreSQL docs, "Message Flow" §Extended Query.
// Pure: no sockets, no clock.
import { decodeParse, decodeTarget } from '@pgs/wire-protocol';
import { blankLiterals, SessionPins, sqlEffects, sqlTextIfMaybe, type PinReason } from './session-pins.js';
import { sqlPrepareOf, type SqlPrepare } from './sql-prepare.js';

/** A request whose reply is still due, in the order the server answers. */
type Entry =
  | { kind: 'parse'; name: string; message: Buffer }
  | { kind: 'close'; statement: string | undefined }
  | {
      kind: 'sync';
      /** A Query of SET/RESET statements only, sent between transactions: replayed once it succeeded. */
      sets?: string;
      /** The Query forgets every SET first (RESET ALL, DISCARD ALL). */
      resetsSets?: boolean;
      /** DISCARD ALL / DEALLOCATE ALL: the server forgets its prepared statements. */
      dropsPrepared?: boolean;
      /** A Query of one SQL PREPARE or DEALLOCATE, sent between transactions. */
      prepare?: Exclude<SqlPrepare, { kind: 'unknown' }>;
      /** An ErrorResponse answered a message of this sync point's cycle. */
      failed?: boolean;
    };

/** Past this many replayed SET texts a session is no longer carried (a client that SETs per query). */
const MAX_SETS = 256;
/** Past this many named statements (replayed one Parse or one PREPARE each) a session is no longer carried. */
const MAX_STATEMENTS = 10_000;

/** Why a session cannot be carried: session state (session-pins.ts), or a message the router could not read. */
export type Blocker = PinReason | 'unreadable';

/** What a carried session needs on its new server before the client's next message. */
export interface SessionReplay {
  /** SET/RESET texts, in the order they ran (each a whole simple Query). */
  sets: string[];
  /** The client's SQL PREPARE texts (each a whole simple Query), run after the SETs. */
  prepares: string[];
  /** The client's named Parse messages, as it sent them. */
  parses: Buffer[];
}

const HAS_SET = /set/i;

/** True when every statement of `sql` is a SET or a RESET (and there is at least one). */
export function setsOnly(sql: string): boolean {
  // Both keywords contain "set": most queries are told apart here, without blanking their literals
  // (every Query of a session-mode client between transactions comes here).
  if (!HAS_SET.test(sql)) return false;
  let any = false;
  for (const raw of blankLiterals(sql).split(';')) {
    const s = raw.trim().toLowerCase();
    if (s === '') continue;
    if (!/^(set|reset)\s/.test(s)) return false;
    any = true;
  }
  return any;
}

/** One session-mode client's state, fed with its whole Query, Parse and Close messages and the server's replies. */
export class SessionState {
  readonly #due: Entry[] = [];
  #head = 0;
  /** Transaction status of the last ReadyForQuery. */
  #status = 'I';
  /** Sync points sent and not answered yet. */
  #syncs = 0;
  /** Extended-protocol messages sent since the last Sync (they wait for one). */
  #unsynced = 0;
  readonly #pins = new SessionPins();
  /** A SET that cannot be replayed (inside a transaction, beside other statements, set_config). */
  #lostSet = false;
  #sets: string[] = [];
  /** Prepared statements by name: the client's Parse message, or the text of its SQL PREPARE. */
  readonly #statements = new Map<string, Buffer | string>();
  /** A message the router could not decode went by (the server answers it; the state is unknown). */
  #unreadable = false;

  /** Between transactions with every request answered: a new server could take the next message. */
  get idle(): boolean {
    return this.#status === 'I' && this.#syncs === 0 && this.#unsynced === 0;
  }

  /** Why the session cannot be carried (empty: it can, once idle). */
  get blockers(): Blocker[] {
    const reasons: Blocker[] = this.#pins.reasons.filter((r) => r !== 'set');
    if (this.#unreadable) reasons.push('unreadable');
    if (this.#lostSet || this.#pins.reasons.includes('set') || this.#sets.length > MAX_SETS) reasons.push('set');
    if (this.#statements.size > MAX_STATEMENTS) reasons.push('prepare');
    return reasons;
  }

  /** What to run on a new server before the client goes on there. */
  replay(): SessionReplay {
    const prepares: string[] = [];
    const parses: Buffer[] = [];
    for (const v of this.#statements.values()) {
      if (typeof v === 'string') prepares.push(v);
      else parses.push(v);
    }
    return { sets: [...this.#sets], prepares, parses };
  }

  /** A whole Query message the client sent. */
  query(message: Buffer): void {
    let sql;
    try {
      sql = sqlTextIfMaybe(message, 5, 'Query');
    } catch {
      this.#unreadable = true;
    }
    // Unreadable, or no word any session-state rule needs (SET, PREPARE, DEALLOCATE are among them): nothing to follow.
    if (sql === undefined) {
      this.#push({ kind: 'sync' });
      this.#syncs++;
      return;
    }
    const effects = sqlEffects(sql);
    const entry: Entry = { kind: 'sync' };
    const replayable = this.idle && setsOnly(sql);
    for (const r of effects.unpins) if (r === 'set') entry.resetsSets = true;
    if (replayable) entry.sets = sql;
    // A SET the router keeps (replayable) is not a pin; any other is a SET it could not carry.
    let pins = replayable ? effects.pins.filter((r) => r !== 'set') : effects.pins;
    // Likewise a PREPARE or DEALLOCATE alone between transactions; any other pins 'prepare'.
    const prepare = sqlPrepareOf(sql);
    if (prepare !== undefined) {
      if (this.idle && prepare.kind !== 'unknown') {
        entry.prepare = prepare;
        pins = pins.filter((r) => r !== 'prepare');
      } else if (!pins.includes('prepare')) pins = [...pins, 'prepare'];
    }
    this.#pins.apply({ pins, unpins: effects.unpins, dropsPrepared: false });
    if (effects.dropsPrepared) entry.dropsPrepared = true;
    this.#push(entry);
    this.#syncs++;
  }

  /** A whole Parse message the client sent. */
  parse(message: Buffer): void {
    let parsed;
    try {
      parsed = decodeParse(message);
    } catch {
      this.#unreadable = true;
      this.#push({ kind: 'parse', name: '', message });
      this.#unsynced++;
      return;
    }
    const { name, query } = parsed;
    const effects = sqlEffects(query);
    // The SQL's session state counts as a Query's would, but a SET run this way is never replayed.
    this.#pins.apply(effects);
    if (effects.pins.includes('set')) this.#lostSet = true;
    this.#push({ kind: 'parse', name, message: Buffer.from(message) });
    this.#unsynced++;
  }

  /** A whole Close message the client sent. */
  close(message: Buffer): void {
    let statement: string | undefined;
    try {
      const target = decodeTarget(message);
      if (target.kind === 'S') statement = target.name;
    } catch {
      this.#unreadable = true;
    }
    this.#push({ kind: 'close', statement });
    this.#unsynced++;
  }

  /** Any other extended-protocol message that waits for a Sync (Bind, Describe, Execute, Flush). */
  unsynced(): void {
    this.#unsynced++;
  }

  /** A Sync or a FunctionCall: a sync point, answered by one ReadyForQuery. */
  syncPoint(): void {
    this.#push({ kind: 'sync' });
    this.#syncs++;
    this.#unsynced = 0;
  }

  /** The server's ParseComplete. */
  parseComplete(): void {
    const e = this.#shift();
    if (e?.kind !== 'parse' || e.name === '') return;
    // A Parse of a name that exists fails (42P05) and gets no ParseComplete: this one is new.
    this.#statements.set(e.name, e.message);
  }

  /** The server's CloseComplete. */
  closeComplete(): void {
    const e = this.#shift();
    if (e?.kind === 'close' && e.statement !== undefined) this.#statements.delete(e.statement);
  }

  /** The server's ErrorResponse: the requests up to the next sync point get no reply. */
  error(): void {
    while (this.#head < this.#due.length && this.#due[this.#head]!.kind !== 'sync') this.#shift();
    const sync = this.#due[this.#head];
    if (sync?.kind === 'sync') sync.failed = true;
  }

  /** The server's ReadyForQuery with its transaction status ('I', 'T', 'E'). */
  ready(status: string): void {
    let e = this.#shift();
    while (e !== undefined && e.kind !== 'sync') e = this.#shift();
    this.#status = status;
    this.#syncs = Math.max(0, this.#syncs - 1);
    if (e === undefined) return;
    if (e.dropsPrepared && !e.failed) this.#statements.clear();
    if (e.resetsSets && !e.failed) {
      this.#sets = [];
      this.#lostSet = false;
    }
    // A PREPARE or DEALLOCATE that failed changed nothing.
    if (e.prepare !== undefined && !e.failed) this.#prepared(e.prepare, status);
    if (e.sets === undefined) return;
    // A SET that failed changed nothing; one that left a transaction open may yet be rolled back.
    if (e.failed) return;
    if (status === 'I') this.#sets.push(e.sets);
    else this.#lostSet = true;
  }

  /** A PREPARE or DEALLOCATE that succeeded; one that left a transaction open is not followed. */
  #prepared(p: Exclude<SqlPrepare, { kind: 'unknown' }>, status: string): void {
    if (status !== 'I') {
      this.#pins.apply({ pins: ['prepare'], unpins: [], dropsPrepared: false });
      return;
    }
    if (p.kind === 'prepare') this.#statements.set(p.name, p.text);
    else this.#statements.delete(p.name);
  }

  /** The session went on a new server with its state replayed: nothing is due there. */
  carried(): void {
    this.#due.length = 0;
    this.#head = 0;
    this.#status = 'I';
    this.#syncs = 0;
    this.#unsynced = 0;
  }

  #push(e: Entry): void {
    this.#due.push(e);
  }

  #shift(): Entry | undefined {
    if (this.#head >= this.#due.length) return undefined;
    const e = this.#due[this.#head++]!;
    if (this.#head === this.#due.length) {
      this.#due.length = 0;
      this.#head = 0;
    }
    return e;
  }
}
