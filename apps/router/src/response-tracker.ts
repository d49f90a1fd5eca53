// Which of a server's replies belong to messages the router injected (README "Prepared
// statements"). ParseComplete and CloseComplete answer only Parse and Close, in order, so a FIFO of
// those messages and of the sync points (Query, Sync, FunctionCall: each answered by one
// ReadyForQuery) says whether each such reply goes to the client or is swallowed. After an
// ErrorResponse the server skips to the next Sync: the Parse/Close entries before that sync point
// get no reply and are dropped (a Parse that did not run leaves no statement, `onDropped`).
// PostgreSQL docs, "Extended Query".

const PARSE_COMPLETE = 0x31;
const CLOSE_COMPLETE = 0x33;
const ERROR = 0x45;
const READY = 0x5a;

export interface TrackedEntry {
  kind: 'parse' | 'close' | 'sync';
  /** Swallow the reply (the router sent the message, not the client). */
  injected: boolean;
  /** Called when the message got no reply because an earlier one failed. */
  onDropped?: () => void;
}

export type ReplyAction = 'forward' | 'swallow';

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

  /** What to do with a server message of `type` (a whole message for ParseComplete/CloseComplete). */
  reply(type: number): ReplyAction {
    if (type === PARSE_COMPLETE || type === CLOSE_COMPLETE) {
      const e = this.#shift();
      return e?.injected ? 'swallow' : 'forward';
    }
    if (type === ERROR) {
      // Entries up to the sync point get no reply; the sync point itself gets its ReadyForQuery.
      while (this.#head < this.#queue.length && this.#queue[this.#head]!.kind !== 'sync') this.#shift()!.onDropped?.();
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
