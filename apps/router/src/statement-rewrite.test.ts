// The rewrite of named statements and the replies the router swallows, message by message.
import {
  decodeBackendMessage,
  decodeBindStatement,
  decodeParse,
  decodeTarget,
  encodeErrorResponse,
  encodeParse,
  encodeQuery,
  encodeTarget,
  CLOSE,
  DESCRIBE,
  PARSE,
} from '@pgs/wire-protocol';
import { answerParses, namedParsesThenSync } from './parse-without-server.js';
import { describe, expect, it } from 'vitest';
import { ResponseTracker } from './response-tracker.js';
import { ClientStatements, ServerStatements } from './statement-registry.js';
import { NO_STATEMENT, rewriteClientMessage, type RewriteContext } from './statement-rewrite.js';

const TYPES = Buffer.from([0, 0]);
const PARSE_COMPLETE = 0x31;
const CLOSE_COMPLETE = 0x33;
const ERROR = 0x45;
const READY = 0x5a;

function bind(statement: string): Buffer {
  const body = Buffer.concat([Buffer.from(`\0${statement}\0`), Buffer.from([0, 0, 0, 0, 0, 0])]);
  const head = Buffer.alloc(5);
  head[0] = 0x42;
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function ctx(capacity = 10): RewriteContext {
  return { statements: new ClientStatements(), server: new ServerStatements(capacity), tracker: new ResponseTracker() };
}

describe('rewriteClientMessage', () => {
  it('renames a named Parse and its Bind/Describe; a second server gets the Parse injected and its ParseComplete swallowed', () => {
    const c = ctx();
    const parsed = rewriteClientMessage(encodeParse('s1', 'select 1', TYPES), c).messages;
    expect(parsed).toHaveLength(1);
    const serverName = decodeParse(parsed[0]!).name;
    expect(serverName).toMatch(/^pgs_/);
    expect(decodeBindStatement(rewriteClientMessage(bind('s1'), c).messages[0]!)).toBe(serverName);
    expect(c.tracker.reply(PARSE_COMPLETE)).toBe('forward');

    // Next transaction on another server connection.
    const other: RewriteContext = { ...c, server: new ServerStatements(10), tracker: new ResponseTracker() };
    const d = rewriteClientMessage(encodeTarget(DESCRIBE, { kind: 'S', name: 's1' }), other).messages;
    expect(d.map((m) => m[0])).toEqual([PARSE, DESCRIBE]);
    expect(decodeTarget(d[1]!)).toEqual({ kind: 'S', name: serverName });
    const b = rewriteClientMessage(bind('s1'), other).messages;
    expect(b).toHaveLength(1);
    expect(other.tracker.reply(PARSE_COMPLETE)).toBe('swallow');
    expect(other.tracker.settled).toBe(true);
  });

  it('passes unnamed statements and unknown names through untouched', () => {
    const c = ctx();
    const unnamed = encodeParse('', 'select 1', TYPES);
    expect(rewriteClientMessage(unnamed, c).messages).toEqual([unnamed]);
    const b = bind('nosuch');
    expect(rewriteClientMessage(b, c).messages).toEqual([b]);
    expect(c.tracker.reply(PARSE_COMPLETE)).toBe('forward');
    // The unnamed statement and portal: passed as they are, each the very same bytes.
    const unnamedBind = bind('');
    expect(rewriteClientMessage(unnamedBind, c).messages[0]).toBe(unnamedBind);
    for (const kind of ['S', 'P'] as const) {
      const describe = encodeTarget(DESCRIBE, { kind, name: '' });
      expect(rewriteClientMessage(describe, c).messages[0]).toBe(describe);
    }
    expect(c.tracker.settled).toBe(true);
  });

  it('reads the session state an unnamed Parse sets, and tracks its ParseComplete', () => {
    const c = ctx();
    const r = rewriteClientMessage(encodeParse('', "SET search_path = 'x;y'", TYPES), c);
    expect(r.effects?.pins).toEqual(['set']);
    expect(c.tracker.settled).toBe(false);
    expect(c.tracker.reply(PARSE_COMPLETE)).toBe('forward');
    expect(c.tracker.settled).toBe(true);
  });

  it('refuses a Describe of an invalid kind even with an empty name', () => {
    const msg = encodeTarget(DESCRIBE, { kind: 'S', name: '' });
    msg[5] = 0x58;
    expect(() => rewriteClientMessage(msg, ctx())).toThrow(/target kind/);
  });

  it('a client Close forgets only its name and is answered by the server in order', () => {
    const c = ctx();
    rewriteClientMessage(encodeParse('s1', 'select 1', TYPES), c);
    const closed = rewriteClientMessage(encodeTarget(CLOSE, { kind: 'S', name: 's1' }), c).messages;
    expect(decodeTarget(closed[0]!)).toEqual({ kind: 'S', name: NO_STATEMENT });
    expect(c.statements.get('s1')).toBeUndefined();
    expect(c.server.size).toBe(1);
    expect(c.tracker.reply(PARSE_COMPLETE)).toBe('forward');
    expect(c.tracker.reply(CLOSE_COMPLETE)).toBe('forward');
  });

  it('closes the least recently used statement of a full server (swallowed) before parsing', () => {
    const c = ctx(1);
    rewriteClientMessage(encodeParse('a', 'select 1', TYPES), c);
    const out = rewriteClientMessage(encodeParse('b', 'select 2', TYPES), c).messages;
    expect(out.map((m) => m[0])).toEqual([CLOSE, PARSE]);
    // Bind of a: evicts b and parses a again.
    const again = rewriteClientMessage(bind('a'), c).messages;
    expect(again.map((m) => m[0])).toEqual([CLOSE, PARSE, 0x42]);
    expect([PARSE_COMPLETE, CLOSE_COMPLETE, PARSE_COMPLETE, CLOSE_COMPLETE, PARSE_COMPLETE].map((t) => c.tracker.reply(t))).toEqual([
      'forward',
      'swallow',
      'forward',
      'swallow',
      'swallow',
    ]);
  });

  it('a Parse of a statement the server already has closes and parses it again', () => {
    const c = ctx();
    rewriteClientMessage(encodeParse('a', 'select 1', TYPES), c);
    const out = rewriteClientMessage(encodeParse('a2', 'select 1', TYPES), c).messages;
    expect(out.map((m) => m[0])).toEqual([CLOSE, PARSE]);
    expect(c.server.size).toBe(1);
  });

  it('a second Parse of a client name becomes a Bind that fails on the server, whose error the client gets as 42P05', () => {
    const c = ctx();
    rewriteClientMessage(encodeParse('a', 'select 1', TYPES), c);
    const out = rewriteClientMessage(encodeParse('a', 'select 2', TYPES), c).messages;
    expect(out.map((m) => m[0])).toEqual([0x42]);
    const missing = decodeBindStatement(out[0]!);
    expect(missing).toMatch(/^pgs_missing_[0-9a-f]{12}_\d+$/);
    expect(c.statements.get('a')?.query).toBe('select 1');
    expect(c.tracker.reply(PARSE_COMPLETE)).toBe('forward');
    const serverError = encodeErrorResponse({ severity: 'ERROR', code: '26000', message: `prepared statement "${missing}" does not exist` });
    const replaced = c.tracker.reply(ERROR, serverError);
    expect(Buffer.isBuffer(replaced)).toBe(true);
    const m = decodeBackendMessage({ type: ERROR, length: (replaced as Buffer).length - 1, body: (replaced as Buffer).subarray(5) });
    expect(m).toEqual({ kind: 'error-response', fields: { severity: 'ERROR', code: '42P05', message: 'prepared statement "a" already exists' } });
  });

  it('an earlier error in the batch is forwarded as it is (the server skipped the failing Bind)', () => {
    const c = ctx();
    rewriteClientMessage(encodeParse('a', 'select 1', TYPES), c);
    rewriteClientMessage(encodeParse('b', 'selec 1', TYPES), c);
    rewriteClientMessage(encodeParse('a', 'select 2', TYPES), c);
    expect(c.tracker.reply(PARSE_COMPLETE)).toBe('forward');
    const syntax = encodeErrorResponse({ severity: 'ERROR', code: '42601', message: 'syntax error at or near "selec"' });
    expect(c.tracker.reply(ERROR, syntax)).toBe('forward');
  });

  it('DISCARD ALL in a Query makes the server forget its statements', () => {
    const c = ctx();
    rewriteClientMessage(encodeParse('a', 'select 1', TYPES), c);
    const r = rewriteClientMessage(encodeQuery('DISCARD ALL'), c);
    expect(r.effects?.dropsPrepared).toBe(true);
    expect(c.server.size).toBe(0);
    expect(rewriteClientMessage(bind('a'), c).messages.map((m) => m[0])).toEqual([PARSE, 0x42]);
  });
});

describe('ResponseTracker', () => {
  it('after an error drops the entries up to the sync point and tells their owners', () => {
    const t = new ResponseTracker();
    const dropped: string[] = [];
    t.sent({ kind: 'parse', injected: true, onDropped: () => dropped.push('a') });
    t.sent({ kind: 'parse', injected: false, onDropped: () => dropped.push('b') });
    t.sent({ kind: 'sync', injected: false });
    t.sent({ kind: 'close', injected: true });
    t.sent({ kind: 'sync', injected: false });
    expect(t.reply(ERROR)).toBe('forward');
    expect(dropped).toEqual(['a', 'b']);
    expect(t.reply(READY)).toBe('forward');
    expect(t.reply(CLOSE_COMPLETE)).toBe('swallow');
    expect(t.reply(READY)).toBe('forward');
    expect(t.settled).toBe(true);
  });

  it('an error of a simple Query drops nothing after its own sync point', () => {
    const t = new ResponseTracker();
    t.sent({ kind: 'sync', injected: false });
    t.sent({ kind: 'parse', injected: true });
    t.sent({ kind: 'sync', injected: false });
    t.reply(ERROR);
    t.reply(READY);
    expect(t.reply(PARSE_COMPLETE)).toBe('swallow');
  });
});

describe('named Parses answered without a server', () => {
  const sync = Buffer.from([0x53, 0, 0, 0, 4]);
  it('takes only whole named Parses ended by one Sync', () => {
    const p1 = encodeParse('s1', 'select 1', TYPES);
    const p2 = encodeParse('s2', 'select 2', TYPES);
    expect(namedParsesThenSync(Buffer.concat([p1, p2, sync]))?.map((p) => p.name)).toEqual(['s1', 's2']);
    expect(namedParsesThenSync(Buffer.concat([p1]))).toBeUndefined();
    expect(namedParsesThenSync(sync)).toBeUndefined();
    expect(namedParsesThenSync(Buffer.concat([encodeParse('', 'select 1', TYPES), sync]))).toBeUndefined();
    expect(namedParsesThenSync(Buffer.concat([p1, bind('s1'), sync]))).toBeUndefined();
    expect(namedParsesThenSync(Buffer.concat([p1, sync, sync]))).toBeUndefined();
    // Named, but its query has no NUL: the server path reports it.
    expect(namedParsesThenSync(Buffer.concat([Buffer.from([0x50, 0, 0, 0, 7, 0x73, 0x31, 0]), sync]))).toBeUndefined();
    const whole = Buffer.concat([p1, sync]);
    for (let cut = 1; cut < whole.length; cut++) expect(namedParsesThenSync(whole.subarray(0, cut))).toBeUndefined();
  });

  it('answers ParseComplete each, 42P05 for a name the client has (and stops there), then ReadyForQuery idle', () => {
    const statements = new ClientStatements();
    const parses = namedParsesThenSync(
      Buffer.concat([encodeParse('s1', 'SET x.y = 1', TYPES), encodeParse('s1', 'select 1', TYPES), encodeParse('s3', 'select 3', TYPES), sync]),
    )!;
    const { reply, effects } = answerParses(parses, statements);
    expect([...reply.subarray(0, 5)]).toEqual([0x31, 0, 0, 0, 4]);
    expect(reply[5]).toBe(ERROR);
    expect([...reply.subarray(reply.length - 6)]).toEqual([READY, 0, 0, 0, 5, 0x49]);
    expect(statements.get('s1')?.query).toBe('SET x.y = 1');
    expect(statements.get('s3')).toBeUndefined();
    expect(effects).toHaveLength(1);
  });
});
