// The message channel between a --workers primary and its worker processes (node:cluster IPC):
// requests with ids and answers, and one-way notes. Our messages carry `pgs: 1` so prom-client's
// own cluster messages on the same channel are left alone.

/** What either end of a cluster IPC channel offers (a cluster Worker, or `process` in a worker). */
export interface IpcEndpoint {
  send(message: unknown, callback?: (err: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** A message of ours on the channel. */
export type IpcMessage =
  | { pgs: 1; type: 'req'; id: number; op: string; body: unknown }
  | { pgs: 1; type: 'res'; id: number; ok: true; body: unknown }
  | { pgs: 1; type: 'res'; id: number; ok: false; error: string }
  | { pgs: 1; type: 'note'; op: string; body: unknown };

function isOurs(m: unknown): m is IpcMessage {
  return typeof m === 'object' && m !== null && (m as { pgs?: unknown }).pgs === 1;
}

/** Thrown when the other end does not answer in time or is gone. */
export class IpcError extends Error {
  override name = 'IpcError';
}

/** One end of the channel: ask, answer, note. */
export class IpcPeer {
  readonly #endpoint: IpcEndpoint;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  readonly #handlers = new Map<string, (body: unknown) => unknown>();
  readonly #notes = new Map<string, (body: unknown) => void>();
  readonly #listener: (m: unknown) => void;
  #nextId = 1;
  #closed = false;

  constructor(endpoint: IpcEndpoint) {
    this.#endpoint = endpoint;
    this.#listener = (m) => this.#receive(m);
    endpoint.on('message', this.#listener);
  }

  /** Answers requests `op` with `handler` (its value, or the value its promise settles with). */
  handle(op: string, handler: (body: unknown) => unknown): void {
    this.#handlers.set(op, handler);
  }

  /** Runs `handler` for one-way notes `op`. */
  onNote(op: string, handler: (body: unknown) => void): void {
    this.#notes.set(op, handler);
  }

  /** Asks the other end; rejects with IpcError after `timeoutMs` or when the channel closes. */
  request<T>(op: string, body: unknown, timeoutMs: number): Promise<T> {
    if (this.#closed) return Promise.reject(new IpcError(`ipc channel closed (request ${op})`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new IpcError(`no answer to ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#send({ pgs: 1, type: 'req', id, op, body });
    });
  }

  /** Tells the other end something; no answer. */
  note(op: string, body: unknown): void {
    if (!this.#closed) this.#send({ pgs: 1, type: 'note', op, body });
  }

  /** Stops listening; pending requests fail. */
  close(reason = 'ipc channel closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#endpoint.off('message', this.#listener);
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new IpcError(reason));
      this.#pending.delete(id);
    }
  }

  #send(m: IpcMessage): void {
    try {
      // A send on a channel that just went away is reported to the callback; the request times out or is closed.
      this.#endpoint.send(m, () => undefined);
    } catch (err) {
      if (m.type === 'req') {
        const p = this.#pending.get(m.id);
        if (p) {
          clearTimeout(p.timer);
          this.#pending.delete(m.id);
          p.reject(new IpcError((err as Error).message));
        }
      }
    }
  }

  #receive(m: unknown): void {
    if (!isOurs(m)) return;
    if (m.type === 'res') {
      const p = this.#pending.get(m.id);
      if (!p) return;
      clearTimeout(p.timer);
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.body);
      else p.reject(new IpcError(m.error));
      return;
    }
    if (m.type === 'note') {
      this.#notes.get(m.op)?.(m.body);
      return;
    }
    const handler = this.#handlers.get(m.op);
    if (!handler) {
      this.#send({ pgs: 1, type: 'res', id: m.id, ok: false, error: `no handler for ${m.op}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(m.body))
      .then(
        (body: unknown) => this.#send({ pgs: 1, type: 'res', id: m.id, ok: true, body }),
        (err: unknown) => this.#send({ pgs: 1, type: 'res', id: m.id, ok: false, error: (err as Error)?.message ?? String(err) }),
      );
  }
}
