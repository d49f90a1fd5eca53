/**
 * Backup policy spans in whole seconds: `--backup-retention 14d`, `--archive-timeout 60s`,
 * `--backup-schedule full=1w,diff=1d`. Units s, m, h, d and w (the request timeouts' parser in
 * @pgs/service-kit stops at hours and answers in milliseconds, which suits neither a retention of
 * weeks nor the proto's seconds).
 */
import { UsageError } from './errors.js';

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const SPAN = /^(\d+)\s*([smhdw])$/;

/** Parses `90s`, `15m`, `6h`, `14d`, `2w` into seconds; anything else is a usage error naming `flag`. */
export function parseSpan(text: string, flag: string): number {
  const m = SPAN.exec(text.trim().toLowerCase());
  if (m === null) {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(text)}: expected a whole number and a unit, e.g. 90s, 15m, 6h, 14d, 2w`);
  }
  const seconds = Number(m[1]) * (UNIT_SECONDS[m[2] ?? 's'] ?? 1);
  if (seconds === 0) throw new UsageError(`invalid ${flag} ${JSON.stringify(text)}: must be more than zero`);
  if (!Number.isSafeInteger(seconds)) throw new UsageError(`invalid ${flag} ${JSON.stringify(text)}: too long`);
  return seconds;
}

/** An idle-suspend policy: `off` (or 0) = never, else a span such as 5m or 30s (`--idle-suspend`, manifests). */
export function parseIdleSuspend(text: string, flag: string): number {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === '0') return 0;
  return parseSpan(t, flag);
}

/** Seconds in the largest unit that divides them exactly: 604800 -> 1w, 86400 -> 1d, 90 -> 90s, 0 -> 0s. */
export function formatSpan(seconds: number): string {
  if (seconds <= 0) return '0s';
  for (const unit of ['w', 'd', 'h', 'm'] as const) {
    const size = UNIT_SECONDS[unit] ?? 1;
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
