// ErrorResponse / NoticeResponse fields: types and the encoder.
// PostgreSQL docs, "Message Formats" (ErrorResponse 'E', NoticeResponse 'N') and
// "Error and Notice Message Fields". Decoding lives in backend-messages.ts.
import { Buffer } from 'node:buffer';

/** Non-localized severities (field `V`, PostgreSQL 9.6+). */
export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

/** Every severity value, for validation. */
export const SEVERITIES: readonly Severity[] = ['ERROR', 'FATAL', 'PANIC', 'WARNING', 'NOTICE', 'DEBUG', 'INFO', 'LOG'];

/** Whether `s` is one of the non-localized severities. */
export function isSeverity(s: string): s is Severity {
  return (SEVERITIES as readonly string[]).includes(s);
}

/**
 * The fields of an ErrorResponse or NoticeResponse. Numeric fields (`position`, `line`, …) stay
 * strings as on the wire, so decode∘encode is exact.
 */
export interface ErrorFields {
  /** `V`: the non-localized severity (also sent as `S` unless `localizedSeverity` is set). */
  severity: Severity;
  /** `C`: the SQLSTATE. */
  code: string;
  /** `M`: the primary message. */
  message: string;
  /** `D`: detail. */
  detail?: string;
  /** `H`: hint. */
  hint?: string;
  /** `P`: cursor position in the query string (decimal, 1-based characters). */
  position?: string;
  /** `p`: position in an internally generated command. */
  internalPosition?: string;
  /** `q`: the internally generated command. */
  internalQuery?: string;
  /** `W`: context (call stack traceback). */
  where?: string;
  /** `s`: schema name. */
  schema?: string;
  /** `t`: table name. */
  table?: string;
  /** `c`: column name. */
  column?: string;
  /** `d`: data type name. */
  dataType?: string;
  /** `n`: constraint name. */
  constraint?: string;
  /** `F`: source file name. */
  file?: string;
  /** `L`: source line number. */
  line?: string;
  /** `R`: source routine name. */
  routine?: string;
  /** `S` when it differs from `severity` (a translated severity such as `FEHLER`). */
  localizedSeverity?: string;
}

/** Optional string fields and their wire codes, in the order PostgreSQL sends them. */
export const OPTIONAL_FIELD_CODES: ReadonlyArray<readonly [Exclude<keyof ErrorFields, 'severity' | 'code' | 'message' | 'localizedSeverity'>, number]> = [
  ['detail', 0x44], // D
  ['hint', 0x48], // H
  ['position', 0x50], // P
  ['internalPosition', 0x70], // p
  ['internalQuery', 0x71], // q
  ['where', 0x57], // W
  ['schema', 0x73], // s
  ['table', 0x74], // t
  ['column', 0x63], // c
  ['dataType', 0x64], // d
  ['constraint', 0x6e], // n
  ['file', 0x46], // F
  ['line', 0x4c], // L
  ['routine', 0x52], // R
];

// The error path must not throw: a NUL inside a field would end it early and desynchronise the
// client, so it is replaced rather than rejected.
function clean(s: string): string {
  return s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s;
}

/** Encodes an ErrorResponse (`type` 0x45) or NoticeResponse (0x4e) with every field present. */
export function encodeFieldsMessage(type: 0x45 | 0x4e, fields: ErrorFields): Buffer {
  const parts: Array<[number, string]> = [
    [0x53, clean(fields.localizedSeverity ?? fields.severity)], // S
    [0x56, clean(fields.severity)], // V
    [0x43, clean(fields.code)], // C
    [0x4d, clean(fields.message)], // M
  ];
  for (const [key, code] of OPTIONAL_FIELD_CODES) {
    const value = fields[key];
    if (value !== undefined) parts.push([code, clean(value)]);
  }
  let size = 1; // the final NUL
  for (const [, value] of parts) size += 2 + Buffer.byteLength(value, 'utf8');
  const buf = Buffer.allocUnsafe(5 + size);
  buf[0] = type;
  buf.writeUInt32BE(4 + size, 1);
  let off = 5;
  for (const [code, value] of parts) {
    buf[off++] = code;
    off += buf.write(value, off, 'utf8');
    buf[off++] = 0;
  }
  buf[off] = 0;
  return buf;
}
