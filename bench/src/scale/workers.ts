/**
 * The scale simulator's worker processes (fake hosts, route watchers): forked with this process's
 * loader flags, asked over IPC, answers matched by sequence number, stopped on exit.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** A request without its sequence number (Omit over each member of the union). */
type Unsequenced<R> = R extends unknown ? Omit<R, 'seq'> : never;

/** A forked worker answering requests `{ type, seq }` with `{ seq, ... }`. */
export class Worker<Req extends { type: string; seq: number }, Rep extends { seq: number }> {
  private readonly child: ChildProcess;
  private seq = 1;
  private readonly pending = new Map<number, { resolve: (r: Rep) => void; reject: (e: Error) => void }>();
  private exited = false;

  constructor(
    readonly name: string,
    script: string,
    config: unknown,
  ) {
    // Workers are TypeScript run by the same loader (tsx) as the driver: fork passes process.execArgv.
    this.child = fork(path.join(import.meta.dirname, script), [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: Rep) => {
      const p = this.pending.get(m.seq);
      this.pending.delete(m.seq);
      p?.resolve(m);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`worker ${name} exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Sends a request and waits for its answer (at most timeoutMs). */
  ask(request: Unsequenced<Req>, timeoutMs = 60_000): Promise<Rep> {
    if (this.exited) return Promise.reject(new Error(`worker ${this.name} has exited`));
    const seq = this.seq++;
    return new Promise<Rep>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`worker ${this.name} did not answer ${request.type} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(seq, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...request, seq } as Req);
    });
  }

  /** Asks the worker to exit; kills it if it has not after 5 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.send({ type: 'exit', seq: 0 });
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(kill);
  }
}
