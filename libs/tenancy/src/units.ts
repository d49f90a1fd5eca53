/**
 * Human units for cpu and sizes, parsed exactly (no floating point drift: '1.1Gi' is 1127 MiB
 * because it rounds up, never 1126.4000000000001). Internally cpu is millicores and sizes are MiB,
 * the units of the proto contracts (cpu_millis, memory_mib, disk_mib).
 */
import { ValidationError } from './errors.js';

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;
const MIB = 1n << 20n;

/** Bytes per unit suffix. Binary (Ki..Pi) and decimal (k/K..P) like Kubernetes; a plain number is MiB. */
const SIZE_UNITS: ReadonlyMap<string, bigint> = new Map([
  ['', MIB],
  ['Ki', 1n << 10n],
  ['KiB', 1n << 10n],
  ['Mi', MIB],
  ['MiB', MIB],
  ['Gi', 1n << 30n],
  ['GiB', 1n << 30n],
  ['Ti', 1n << 40n],
  ['TiB', 1n << 40n],
  ['Pi', 1n << 50n],
  ['PiB', 1n << 50n],
  ['k', 10n ** 3n],
  ['K', 10n ** 3n],
  ['kB', 10n ** 3n],
  ['KB', 10n ** 3n],
  ['M', 10n ** 6n],
  ['MB', 10n ** 6n],
  ['G', 10n ** 9n],
  ['GB', 10n ** 9n],
  ['T', 10n ** 12n],
  ['TB', 10n ** 12n],
  ['P', 10n ** 15n],
  ['PB', 10n ** 15n],
]);

const SIZE_ALLOWED =
  "a number with an optional unit: Ki, Mi, Gi, Ti, Pi (binary), k, M, G, T, P (decimal), or none for MiB, e.g. '512Mi', '8Gi', '1.5Gi', '2048'";
const CPU_ALLOWED = "cores as a decimal with at most 3 decimals ('2', '1.5', '0.25') or millicores ('500m')";

/** Splits '1.5' into its digits as an integer and the power of ten to divide by: (15n, 10n). */
function exactDecimal(text: string): { scaled: bigint; divisor: bigint } | undefined {
  const match = DECIMAL.exec(text);
  if (match === null) return undefined;
  const fraction = match[2] ?? '';
  return { scaled: BigInt(`${match[1]}${fraction}`), divisor: 10n ** BigInt(fraction.length) };
}

/** Parses cpu: '2' -> 2000, '1.5' -> 1500, '500m' -> 500. Throws ValidationError (field 'cpu'). */
export function parseCpu(text: string, field = 'cpu'): number {
  if (typeof text !== 'string') throw new ValidationError(field, text, CPU_ALLOWED);
  const trimmed = text.trim();
  const millis = trimmed.endsWith('m');
  const number = exactDecimal(millis ? trimmed.slice(0, -1) : trimmed);
  if (number === undefined) throw new ValidationError(field, text, CPU_ALLOWED);
  const numerator = number.scaled * (millis ? 1n : 1000n);
  // A fraction of a millicore is not a thing any runtime can enforce.
  if (numerator % number.divisor !== 0n) throw new ValidationError(field, text, CPU_ALLOWED);
  const value = numerator / number.divisor;
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ValidationError(field, text, CPU_ALLOWED);
  return Number(value);
}

/** Prints millicores as cores: 1500 -> '1.5', 2000 -> '2', 250 -> '0.25'. */
export function formatCpu(millis: number): string {
  if (!Number.isSafeInteger(millis) || millis < 0) {
    throw new ValidationError('cpu_millis', millis, 'a whole number of millicores, 0 or more');
  }
  const whole = Math.floor(millis / 1000);
  const fraction = String(millis % 1000)
    .padStart(3, '0')
    .replace(/0+$/, '');
  return fraction === '' ? String(whole) : `${whole}.${fraction}`;
}

/**
 * Parses a size to MiB: '512Mi' -> 512, '8Gi' -> 8192, '1.5Gi' -> 1536, '1Ti' -> 1048576,
 * '2048' -> 2048 (a plain number is MiB, the API's unit), '8G' -> 7630 (decimal units round up
 * to whole MiB so a request never gets less than it asked for). Throws ValidationError.
 */
export function parseSize(text: string, field = 'size'): number {
  if (typeof text !== 'string') throw new ValidationError(field, text, SIZE_ALLOWED);
  const match = /^([\d.]+)\s*([A-Za-z]*)$/.exec(text.trim());
  const unit = match === null ? undefined : SIZE_UNITS.get(match[2] ?? '');
  const number = match === null ? undefined : exactDecimal(match[1] ?? '');
  if (unit === undefined || number === undefined) throw new ValidationError(field, text, SIZE_ALLOWED);
  const denominator = number.divisor * MIB;
  const mib = (number.scaled * unit + denominator - 1n) / denominator;
  if (mib > BigInt(Number.MAX_SAFE_INTEGER)) throw new ValidationError(field, text, SIZE_ALLOWED);
  return Number(mib);
}

const PRINT_UNITS: readonly { suffix: string; mib: number }[] = [
  { suffix: 'Pi', mib: 1024 ** 3 },
  { suffix: 'Ti', mib: 1024 ** 2 },
  { suffix: 'Gi', mib: 1024 },
];

/**
 * Prints MiB with the largest binary unit that shows it exactly in at most two decimals:
 * 8192 -> '8Gi', 1536 -> '1.5Gi', 512 -> '512Mi', 1100 -> '1100Mi'. parseSize reads it back exactly.
 */
export function formatSize(mib: number): string {
  if (!Number.isSafeInteger(mib) || mib < 0) throw new ValidationError('size_mib', mib, 'a whole number of MiB, 0 or more');
  // Past 2^53 / 100 the hundredths below would lose precision; plain MiB is always exact.
  const exact = mib <= Number.MAX_SAFE_INTEGER / 100;
  for (const unit of PRINT_UNITS) {
    if (exact && mib >= unit.mib && (mib * 100) % unit.mib === 0) {
      const hundredths = (mib * 100) / unit.mib;
      const fraction = String(hundredths % 100)
        .padStart(2, '0')
        .replace(/0+$/, '');
      const whole = Math.floor(hundredths / 100);
      return fraction === '' ? `${whole}${unit.suffix}` : `${whole}.${fraction}${unit.suffix}`;
    }
  }
  return `${mib}Mi`;
}
