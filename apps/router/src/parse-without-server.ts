// Pool mode transaction: libpq's PQprepare (pgbench -M prepared, many libpq programs) sends a Parse
// and a Sync and then blocks its thread until the reply. A program that drives several connections
// from one thread (pgbench -j below -c) stalls for good when its other connections hold every
// server connection in a transaction: they wait for the blocked thread, the Parse waits for them.
// So a client that holds no server and sends only named Parses and a Sync, when no server is free
// at once, is answered by the router: each statement is recorded for the client (as any Parse is,
// statement-registry.ts) and is prepared on a server the first time a Bind or Describe uses it
// (statement-rewrite.ts), where an error in its text is reported to that Bind or Describe.
// PostgreSQL docs, "Extended Query".
import { decodeParse, encodeReadyForQuery, PARSE, type ParseMessage } from '@pgs/wire-protocol';
import { sqlEffects, type SqlEffects } from './session-pins.js';
import type { ClientStatements } from './statement-registry.js';
import { duplicateStatementError } from './statement-rewrite.js';

const SYNC = 0x53;
const PARSE_COMPLETE: Buffer = Buffer.from([0x31, 0, 0, 0, 4]);

/**
 * The Parses of `chunk` when it is whole named Parse messages followed by one Sync that ends it,
 * else undefined. A malformed Parse is undefined too (the server path reports it). The shape is
 * checked on the bytes first: this runs at the start of every transaction of a client that holds
 * no server, and most of those start otherwise (an unnamed Parse, a Bind, a Query).
 */
export function namedParsesThenSync(chunk: Buffer): ParseMessage[] | undefined {
  if (!namedParsesThenSyncShape(chunk)) return undefined;
  const parses: ParseMessage[] = [];
  for (let at = 0; chunk[at] === PARSE;) {
    const end = at + 1 + chunk.readUInt32BE(at + 1);
    let p: ParseMessage;
    try {
      p = decodeParse(chunk.subarray(at, end));
    } catch {
      return undefined;
    }
    parses.push(p);
    at = end;
  }
  return parses;
}

/** True when `chunk` is one or more whole Parse messages with a non-empty name, then one Sync that ends it. */
function namedParsesThenSyncShape(chunk: Buffer): boolean {
  let at = 0;
  while (at + 5 <= chunk.length) {
    const type = chunk[at]!;
    const end = at + 1 + chunk.readUInt32BE(at + 1);
    if (end > chunk.length || end < at + 5) return false;
    if (type === SYNC) return end === chunk.length && end === at + 5 && at > 0;
    // A Parse whose name is empty (its first byte the name's NUL) is not answered here.
    if (type !== PARSE || end === at + 5 || chunk[at + 5] === 0) return false;
    at = end;
  }
  return false;
}

/** The router's reply to such a batch, and what the SQL does to session state. */
export interface ParseAnswer {
  reply: Buffer;
  effects: SqlEffects[];
}

/**
 * Records `parses` for the client and answers as PostgreSQL would: ParseComplete each, or 42P05
 * for a name the client already has (and nothing more until the Sync), then ReadyForQuery idle
 * (a client without a server is outside any transaction).
 */
export function answerParses(parses: readonly ParseMessage[], statements: ClientStatements): ParseAnswer {
  const out: Buffer[] = [];
  const effects: SqlEffects[] = [];
  for (const p of parses) {
    if (statements.get(p.name)) {
      out.push(duplicateStatementError(p.name));
      break;
    }
    statements.prepare(p.name, p.query, p.paramTypes);
    effects.push(sqlEffects(p.query));
    out.push(PARSE_COMPLETE);
  }
  out.push(encodeReadyForQuery('I'));
  return { reply: Buffer.concat(out), effects };
}
