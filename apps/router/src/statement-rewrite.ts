// A transaction-mode client's Parse, Bind, Describe, Close and Query on the server it holds now
// (README "Prepared statements"). Named statements get their server-wide name; a Bind or Describe
// of a statement this server has not got is preceded by a Parse the router sends (its
// ParseComplete swallowed); a server over its statement bound closes the least recently used
// (CloseComplete swallowed); a client's Close only forgets the client's name. A client's Parse of a
// name it already has fails as in PostgreSQL (42P05), by a Bind that fails on the server in its
// place (duplicateParse). The SQL of Query and Parse is read for session state (session-pins.ts).
import { randomBytes } from 'node:crypto';
import {
  BIND,
  CLOSE,
  decodeBindStatement,
  decodeParse,
  decodeTarget,
  DESCRIBE,
  encodeErrorResponse,
  encodeParse,
  encodeTarget,
  PARSE,
  QUERY,
  rewriteBindStatement,
  SqlState,
} from '@pgs/wire-protocol';
import type { ResponseTracker } from './response-tracker.js';
import { sqlEffects, sqlEffectsAt, type SqlEffects } from './session-pins.js';
import type { ClientStatements, ServerStatements, StatementDef } from './statement-registry.js';

/** The client message types rewritten here (collected whole by the link). */
export const REWRITTEN_TYPES: ReadonlySet<number> = new Set([PARSE, BIND, DESCRIBE, CLOSE, QUERY]);

/** A name no server statement has: a client's Close of its statement becomes a Close of it (answered CloseComplete, closes nothing). */
export const NO_STATEMENT = 'pgs_none';

/** The tracker's entry for a client's unnamed Parse (read only: one shared object). */
const UNNAMED_PARSE = Object.freeze({ kind: 'parse', injected: false } as const);

export interface RewriteContext {
  statements: ClientStatements;
  server: ServerStatements;
  tracker: ResponseTracker;
}

export interface Rewritten {
  /** The messages to send the server, in order, in place of the client's. */
  messages: Buffer[];
  /** What the SQL does to session state (Query and Parse). */
  effects?: SqlEffects;
}

/** The messages that make `def` exist on the server, none when it is there (then it is marked used). */
function ensurePrepared(def: StatementDef, ctx: RewriteContext): Buffer[] {
  if (ctx.server.has(def.serverName)) {
    ctx.server.touch(def.serverName);
    return [];
  }
  const out = closeEvicted(ctx.server.add(def.serverName), ctx);
  out.push(encodeParse(def.serverName, def.query, def.paramTypes));
  ctx.tracker.sent({ kind: 'parse', injected: true, onDropped: () => ctx.server.delete(def.serverName) });
  return out;
}

function closeEvicted(names: string[], ctx: RewriteContext): Buffer[] {
  return names.map((name) => {
    ctx.tracker.sent({ kind: 'close', injected: true });
    return encodeTarget(CLOSE, { kind: 'S', name });
  });
}

/** Statement names no client can have: this process's random tag and a counter. */
const MISSING_TAG = `pgs_missing_${randomBytes(6).toString('hex')}_`;
let missingSeq = 0;

/** A Bind of the unnamed portal to `statement`, no parameters, no result formats. */
function bindOf(statement: string): Buffer {
  const name = Buffer.from(`${statement}\0`, 'utf8');
  const msg = Buffer.alloc(1 + 4 + 1 + name.length + 6);
  msg[0] = BIND;
  msg.writeUInt32BE(msg.length - 1, 1);
  name.copy(msg, 6);
  return msg;
}

/** PostgreSQL's reply to a Parse of a statement name the session already has. */
export function duplicateStatementError(name: string): Buffer {
  return encodeErrorResponse({ severity: 'ERROR', code: SqlState.DuplicatePreparedStatement, message: `prepared statement "${name}" already exists` });
}

/**
 * A Parse of a name the client already has: PostgreSQL fails it with 42P05, skips to the next Sync
 * and, inside a transaction block, aborts the transaction. The server cannot see the duplicate (it
 * knows the router's names), so it gets a Bind of a statement that exists nowhere, which fails
 * with all those effects; the tracker gives the client the 42P05 error in place of that failure.
 * When an earlier message of the batch fails first the server skips the Bind, as PostgreSQL would
 * skip the Parse.
 */
function duplicateParse(name: string, ctx: RewriteContext): Buffer[] {
  const statement = `${MISSING_TAG}${missingSeq++}`;
  ctx.tracker.sent({ kind: 'fail', injected: true, failure: { statement, reply: duplicateStatementError(name) } });
  return [bindOf(statement)];
}

/** Rewrites one whole client message of a type in REWRITTEN_TYPES. Throws ProtocolError on a malformed one. */
export function rewriteClientMessage(msg: Buffer, ctx: RewriteContext): Rewritten {
  switch (msg[0]) {
    case QUERY: {
      const effects = sqlEffectsAt(msg, 5, 'Query');
      if (effects.dropsPrepared) ctx.server.clear();
      return { messages: [msg], effects };
    }
    case PARSE: {
      // An unnamed statement (most Parses): only its text is read, for session state.
      if (msg[5] === 0) {
        ctx.tracker.sent(UNNAMED_PARSE);
        return { messages: [msg], effects: sqlEffectsAt(msg, 6, 'Parse query') };
      }
      const p = decodeParse(msg);
      const effects = sqlEffects(p.query);
      if (p.name === '') {
        ctx.tracker.sent({ kind: 'parse', injected: false });
        return { messages: [msg], effects };
      }
      if (ctx.statements.get(p.name)) return { messages: duplicateParse(p.name, ctx) };
      const def = ctx.statements.prepare(p.name, p.query, p.paramTypes);
      const out: Buffer[] = [];
      // The server has it (another client, or this one before): close and parse again so the
      // client's ParseComplete comes from the server, in order.
      if (ctx.server.has(def.serverName)) {
        ctx.server.delete(def.serverName);
        out.push(...closeEvicted([def.serverName], ctx));
      }
      out.push(...closeEvicted(ctx.server.add(def.serverName), ctx));
      out.push(encodeParse(def.serverName, def.query, def.paramTypes));
      ctx.tracker.sent({
        kind: 'parse',
        injected: false,
        onDropped: () => {
          ctx.server.delete(def.serverName);
          if (ctx.statements.get(p.name) === def) ctx.statements.forget(p.name);
        },
      });
      return { messages: out, effects };
    }
    case BIND: {
      // Unnamed portal and statement: nothing to rewrite, no name decoded.
      if (msg[5] === 0 && msg[6] === 0) return { messages: [msg] };
      const def = ctx.statements.get(decodeBindStatement(msg));
      if (!def) return { messages: [msg] };
      return { messages: [...ensurePrepared(def, ctx), rewriteBindStatement(msg, def.serverName)] };
    }
    case DESCRIBE: {
      // The unnamed statement or portal, whole and well formed: nothing to rewrite.
      if (msg.length === 7 && (msg[5] === 0x53 || msg[5] === 0x50) && msg[6] === 0) return { messages: [msg] };
      const t = decodeTarget(msg);
      const def = t.kind === 'S' ? ctx.statements.get(t.name) : undefined;
      if (!def) return { messages: [msg] };
      return { messages: [...ensurePrepared(def, ctx), encodeTarget(DESCRIBE, { kind: 'S', name: def.serverName })] };
    }
    case CLOSE: {
      const t = decodeTarget(msg);
      ctx.tracker.sent({ kind: 'close', injected: false });
      if (t.kind !== 'S' || !ctx.statements.get(t.name)) return { messages: [msg] };
      ctx.statements.forget(t.name);
      return { messages: [encodeTarget(CLOSE, { kind: 'S', name: NO_STATEMENT })] };
    }
    default:
      return { messages: [msg] };
  }
}
