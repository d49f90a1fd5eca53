/** Argument parsers for commander options and arguments, turning bad values into usage errors. */
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '@pgs/service-kit';
import { UsageError } from './errors.js';

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

/** A backup id as given on the command line (ids are the coordinator's: only checked to be one word). */
export function backupIdArg(text: string | undefined, tenantId: string, what: string): string {
  const id = (text ?? '').trim();
  if (id === '' || /\s/.test(id)) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(text ?? '')}: expected a backup id such as b-20261206-101500-${tenantId}-3`, {
      hint: `list the backups with \`pgsctl backup list ${tenantId}\``,
    });
  }
  return id;
}
