/** Prints a result: the view as JSON/YAML for scripts, or the human rendering for people. */
import type { CommandContext } from './context.js';
import { renderDocument } from './output.js';

/** The text of `value` as -o json|yaml, otherwise the text `human` returns. */
export function formatResult(ctx: CommandContext, value: unknown, human: () => string): string {
  return ctx.output === 'json' || ctx.output === 'yaml' ? renderDocument(ctx.output, value) : human();
}

/** Prints `value` as -o json|yaml, otherwise the text `human` returns. */
export function emit(ctx: CommandContext, value: unknown, human: () => string): void {
  ctx.print(formatResult(ctx, value, human));
}
