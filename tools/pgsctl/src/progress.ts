/**
 * A one-line progress indicator on stderr: a spinner with the elapsed time while a terminal
 * watches, plain lines on change when stderr is a pipe (so CI logs stay readable).
 */
import { formatElapsed } from './output.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** A progress line that can be updated and finished. */
export interface Progress {
  update(text: string): void;
  done(text: string): void;
}

/** Starts a progress line on `stream`. */
export function startProgress(stream: NodeJS.WritableStream & { isTTY?: boolean }, now: () => number): Progress {
  const started = now();
  const tty = stream.isTTY === true;
  let text = '';
  let frame = 0;
  let lastPlain = '';
  const render = (): void => {
    if (!tty) return;
    frame = (frame + 1) % FRAMES.length;
    stream.write(`\r\x1b[2K${FRAMES[frame]} ${text} (${formatElapsed(now() - started)})`);
  };
  const timer = tty ? setInterval(render, 100) : undefined;
  return {
    update(next) {
      text = next;
      if (tty) render();
      else if (next !== lastPlain) {
        lastPlain = next;
        stream.write(`${next} (${formatElapsed(now() - started)})\n`);
      }
    },
    done(final) {
      if (timer) clearInterval(timer);
      stream.write(`${tty ? '\r\x1b[2K' : ''}${final} (${formatElapsed(now() - started)})\n`);
    },
  };
}
