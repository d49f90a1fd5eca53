// Which of a server's replies belong to messages the router injected (README "Prepared
// statements"). ParseComplete and CloseComplete answer only Parse and Close, in order, so a FIFO of
// those messages and of the sync points (Query, Sync, FunctionCall: each answered by one
// ReadyForQuery) says whether each such reply goes to the client or is swallowed. After an
// ErrorResponse the server skips to the next Sync: the Parse/Close entries before that sync point
// get no reply and are dropped (a Parse that did not run leaves no statement, `onDropped`).
// A `fail` entry stands for a message the router sent to make the server fail on purpose (a Bind
// of a statement that exists nowhere, see statement-rewrite.ts): when the server's ErrorResponse
// names that statement, the client gets the entry's error in its place.
// PostgreSQL docs, "Extended Query".
import { decodeBackendMessage } from '@pgs/wire-protocol';

const PARSE_COMPLETE = 0x31;
const CLOSE_COMPLETE = 0x33;
const ERROR = 0x45;
const READY = 0x5a;

export interface TrackedEntry {
  kind: 'parse' | 'close' | 'sync' | 'fail';
  /** Swallow the reply (the router sent the message, not the client). */
  injected: boolean;
  /** Called when the message got no reply because an earlier one failed. */
  onDropped?: () => void;
  /** `fail`: the statement name the server's error names, and the ErrorResponse the client gets instead. */
  failure?: { statement: string; reply: Buffer };
}

/** Forward the server's message, swallow it, or send these bytes in its place. */
export type ReplyAction = 'forward' | 'swallow' | Buffer;

export class ResponseTracker {
  readonly #queue: TrackedEntry[] = [];
  #head = 0;

  /** Records a message sent to the server, in order. */
  sent(entry: TrackedEntry): void {
    this.#queue.push(entry);
  }

  /** True when every tracked message has had its reply. */
  get settled(): boolean {
    return this.#head === this.#queue.length;
  }

  /**
   * What to do with a server message of `type` (a whole message for ParseComplete, CloseComplete
   * and ErrorResponse: `message`, read only when a `fail` entry waits).
   */
  reply(type: number, message?: Buffer): ReplyAction {
    if (type === PARSE_COMPLETE || type === CLOSE_COMPLETE) {
      let e = this.#shift();
      // A `fail` entry gets no completion (its message fails); one still at the head was skipped.
      while (e?.kind === 'fail') e = this.#shift();
      return e?.injected ? 'swallow' : 'forward';
    }
    if (type === ERROR) {
      // Entries up to the sync point get no reply; the sync point itself gets its ReadyForQuery.
      let action: ReplyAction = 'forward';
      while (this.#head < this.#queue.length && this.#queue[this.#head]!.kind !== 'sync') {
        const e = this.#shift()!;
        if (e.failure && message && action === 'forward' && namesStatement(message, e.failure.statement)) action = e.failure.reply;
        e.onDropped?.();
      }
      return action;
    } else if (type === READY) {
      while (this.#head < this.#queue.length) {
        const e = this.#shift()!;
        if (e.kind === 'sync') break;
        e.onDropped?.();
      }
    }
    return 'forward';
  }

  #shift(): TrackedEntry | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const e = this.#queue[this.#head++]!;
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    }
    return e;
  }
}

/** True when `message` (a whole ErrorResponse) is the server's "does not exist" error of `statement`. */
function namesStatement(message: Buffer, statement: string): boolean {
  const m = decodeBackendMessage({ type: message[0]!, length: message.length - 1, body: message.subarray(5) });
  // The message text may be translated (lc_messages); the quoted name is in every translation.
  return m.kind === 'error-response' && m.fields.code === '26000' && m.fields.message.includes(`"${statement}"`);
}
