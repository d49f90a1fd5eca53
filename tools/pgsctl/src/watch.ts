/**
 * `--watch` for commands that read state: redraw when what they print changes, until Ctrl-C.
 * On a terminal the screen is redrawn in place (like `watch`); into a pipe each change is
 * appended, so `pgsctl tenant list --watch -o json | jq` sees every new state.
 */
import type { CommandContext } from './context.js';

const INTERVAL_MS = 2000;

/** Calls `render` every interval and prints its text when it changed; returns on SIGINT/SIGTERM. */
export async function watchLoop(ctx: CommandContext, render: () => Promise<string>): Promise<void> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const tty = ctx.io.stdout.isTTY === true && !ctx.structured;
  let previous = '';
  try {
    while (!stop.signal.aborted) {
      const text = await render();
      if (text !== previous) {
        previous = text;
        ctx.print(tty ? `\x1b[H\x1b[2J${new Date(ctx.io.now()).toISOString()}  (Ctrl-C to stop)\n\n${text}` : text);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, INTERVAL_MS);
        stop.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
