/** Argument parsers for commander options, turning bad values into usage errors. */
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '@pgs/service-kit';

/** Parses a duration flag ('30s', '5m', '500ms'). */
export function durationArg(text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Parses a positive whole number flag. */
export function positiveIntArg(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) === 0) throw new InvalidArgumentError(`"${text}" is not a positive whole number`);
  return Number(text);
}
