/**
 * At most `max` holders at a time; the others wait in the order they asked. Creating an instance
 * is CPU-bound (copying, starting a server, its first connections): twenty at once on a few cores
 * all finish late together, while a few at a time finish one after another, most of them sooner.
 */
export class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  /** Waits for a slot; call the returned function to give it back. */
  async acquire(): Promise<() => void> {
    if (this.max <= 0) return () => undefined;
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so a newcomer cannot take it in between.
      if (next) next();
      else this.active -= 1;
    };
  }
}
