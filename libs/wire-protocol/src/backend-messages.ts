// Backend messages the router reads while it watches a server's startup reply, and the encoders
// for what the router itself sends. PostgreSQL docs, "Message Flow" §Start-up and "Message
// Formats": Authentication*, ParameterStatus, BackendKeyData (3.0 and 3.2), ErrorResponse,
// NoticeResponse, NegotiateProtocolVersion, ReadyForQuery; "Error and Notice Message Fields".
import { Buffer } from 'node:buffer';
import { encodeFieldsMessage, isSeverity, OPTIONAL_FIELD_CODES, type ErrorFields } from './error-fields.js';
import type { Frame } from './framer.js';
import { ByteReader } from './reader.js';
import { MAX_SECRET_KEY_LENGTH, MIN_SECRET_KEY_LENGTH } from './secret-key.js';
import { allocMessage, checkInt, cstringSize, writeCString } from './writer.js';

/** Backend message type bytes. */
export const BackendMessageType = {
  Authentication: 0x52, // R
  ParameterStatus: 0x53, // S
  BackendKeyData: 0x4b, // K
  ErrorResponse: 0x45, // E
  NoticeResponse: 0x4e, // N
  NegotiateProtocolVersion: 0x76, // v
  ReadyForQuery: 0x5a, // Z
  DataRow: 0x44, // D
  RowDescription: 0x54, // T
  CommandComplete: 0x43, // C
} as const;

/** Authentication request codes (the Int32 after 'R'). */
export const AuthenticationCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  Md5Password: 5,
  Gss: 7,
  GssContinue: 8,
  Sspi: 9,
  Sasl: 10,
  SaslContinue: 11,
  SaslFinal: 12,
} as const;

/** A decoded backend message; types the router does not inspect come back as `other`. */
export type BackendMessage =
  | { kind: 'authentication'; code: number; data: Buffer }
  | { kind: 'parameter-status'; name: string; value: string }
  | { kind: 'backend-key-data'; processId: number; secretKey: Buffer }
  | { kind: 'error-response'; fields: ErrorFields }
  | { kind: 'notice-response'; fields: ErrorFields }
  | { kind: 'negotiate-protocol-version'; newestMinor: number; unrecognized: string[] }
  | { kind: 'ready-for-query'; status: 'I' | 'T' | 'E' }
  | { kind: 'other'; type: number; body: Buffer };

// Backend text is only inspected (the router forwards the original bytes), and before
// client_encoding applies a server may send messages in its own encoding: decode leniently.
function reader(frame: Frame, what: string): ByteReader {
  return new ByteReader(frame.body, 0, frame.body.length, what, 'replace');
}

/** Decodes one backend message; throws ProtocolError on a malformed body. */
export function decodeBackendMessage(frame: Frame): BackendMessage {
  switch (frame.type) {
    case BackendMessageType.Authentication:
      return decodeAuthentication(frame);
    case BackendMessageType.ParameterStatus: {
      const r = reader(frame, 'ParameterStatus message');
      const name = r.cstring();
      const value = r.cstring();
      r.expectEnd();
      return { kind: 'parameter-status', name, value };
    }
    case BackendMessageType.BackendKeyData: {
      const r = reader(frame, 'BackendKeyData message');
      const processId = r.uint32();
      const keyLength = r.remaining;
      if (keyLength < MIN_SECRET_KEY_LENGTH || keyLength > MAX_SECRET_KEY_LENGTH) {
        throw r.fail(`secret key of ${keyLength} bytes, allowed ${MIN_SECRET_KEY_LENGTH} to ${MAX_SECRET_KEY_LENGTH}`);
      }
      // Copied: the router keeps the key for the connection's lifetime, the chunk it came in need not live that long.
      const secretKey = Buffer.allocUnsafe(keyLength);
      frame.body.copy(secretKey, 0, 4);
      return { kind: 'backend-key-data', processId, secretKey };
    }
    case BackendMessageType.ErrorResponse:
      return { kind: 'error-response', fields: decodeFields(frame, 'ErrorResponse message', 'ERROR') };
    case BackendMessageType.NoticeResponse:
      return { kind: 'notice-response', fields: decodeFields(frame, 'NoticeResponse message', 'NOTICE') };
    case BackendMessageType.NegotiateProtocolVersion: {
      const r = reader(frame, 'NegotiateProtocolVersion message');
      const newestMinor = r.uint32();
      const count = r.uint32();
      // Each name takes at least its NUL: check the count before building the array.
      if (count > r.remaining) throw r.fail(`${count} option names cannot fit in ${r.remaining} bytes`);
      const unrecognized: string[] = [];
      for (let i = 0; i < count; i++) unrecognized.push(r.cstring());
      r.expectEnd();
      return { kind: 'negotiate-protocol-version', newestMinor, unrecognized };
    }
    case BackendMessageType.ReadyForQuery: {
      const r = reader(frame, 'ReadyForQuery message');
      const status = r.uint8();
      r.expectEnd();
      if (status !== 0x49 && status !== 0x54 && status !== 0x45) throw r.fail(`unknown transaction status 0x${status.toString(16)}`);
      return { kind: 'ready-for-query', status: String.fromCharCode(status) as 'I' | 'T' | 'E' };
    }
    default:
      return { kind: 'other', type: frame.type, body: frame.body };
  }
}

function decodeAuthentication(frame: Frame): BackendMessage {
  const r = reader(frame, 'authentication request');
  const code = r.uint32();
  const data = r.rest();
  switch (code) {
    case AuthenticationCode.Ok:
    case AuthenticationCode.KerberosV5:
    case AuthenticationCode.CleartextPassword:
    case AuthenticationCode.Gss:
    case AuthenticationCode.Sspi:
      if (data.length !== 0) throw r.fail(`authentication code ${code} carries ${data.length} unexpected bytes`);
      break;
    case AuthenticationCode.Md5Password:
      if (data.length !== 4) throw r.fail(`MD5 salt of ${data.length} bytes, expected 4`);
      break;
    case AuthenticationCode.Sasl:
      decodeSaslMechanisms(data);
      break;
    case AuthenticationCode.GssContinue:
    case AuthenticationCode.SaslContinue:
    case AuthenticationCode.SaslFinal:
      break;
    default:
      throw r.fail(`unknown authentication code ${code}`);
  }
  return { kind: 'authentication', code, data };
}

/** The mechanism names of an AuthenticationSASL body (after the code): Strings ended by an empty one. */
export function decodeSaslMechanisms(data: Buffer): string[] {
  const r = new ByteReader(data, 0, data.length, 'AuthenticationSASL message', 'replace');
  const names: string[] = [];
  for (;;) {
    const name = r.cstring();
    if (name === '') break;
    names.push(name);
  }
  r.expectEnd();
  return names;
}

const FIELD_KEY_BY_CODE = new Map<number, (typeof OPTIONAL_FIELD_CODES)[number][0]>(OPTIONAL_FIELD_CODES.map(([k, c]) => [c, k]));

function decodeFields(frame: Frame, what: string, fallback: 'ERROR' | 'NOTICE'): ErrorFields {
  const r = reader(frame, what);
  let localized: string | undefined;
  let severity: string | undefined;
  let code: string | undefined;
  let message: string | undefined;
  const optional: Partial<ErrorFields> = {};
  for (;;) {
    const type = r.uint8();
    if (type === 0) break;
    const value = r.cstring();
    switch (type) {
      case 0x53:
        localized = value;
        break; // S
      case 0x56:
        severity = value;
        break; // V
      case 0x43:
        code = value;
        break; // C
      case 0x4d:
        message = value;
        break; // M
      default: {
        // Unknown field types are to be ignored ("Error and Notice Message Fields").
        const key = FIELD_KEY_BY_CODE.get(type);
        if (key !== undefined) optional[key] = value;
      }
    }
  }
  r.expectEnd();
  if (localized === undefined || code === undefined || message === undefined) {
    throw r.fail('a severity, code or message field is missing');
  }
  if (severity !== undefined && !isSeverity(severity)) throw r.fail('unknown severity');
  // Servers before 9.6 send no V; S is then the only (possibly translated) severity.
  const resolved = severity ?? (isSeverity(localized) ? localized : fallback);
  const fields: ErrorFields = { severity: resolved, code, message };
  for (const [key] of OPTIONAL_FIELD_CODES) {
    const v = optional[key];
    if (v !== undefined) fields[key] = v;
  }
  if (localized !== resolved) fields.localizedSeverity = localized;
  return fields;
}

/** Encodes an ErrorResponse with every given field (a NUL inside a field becomes U+FFFD). */
export function encodeErrorResponse(fields: ErrorFields): Buffer {
  return encodeFieldsMessage(0x45, fields);
}

/** Encodes a NoticeResponse with every given field (a NUL inside a field becomes U+FFFD). */
export function encodeNoticeResponse(fields: ErrorFields): Buffer {
  return encodeFieldsMessage(0x4e, fields);
}

/** Encodes BackendKeyData: a 4-byte key is protocol 3.0, 4 to 256 bytes protocol 3.2. */
export function encodeBackendKeyData(processId: number, secretKey: Buffer): Buffer {
  checkInt(processId, -0x80000000, 0xffffffff, 'processId');
  checkInt(secretKey.length, MIN_SECRET_KEY_LENGTH, MAX_SECRET_KEY_LENGTH, 'secretKey length');
  const buf = allocMessage(BackendMessageType.BackendKeyData, 4 + secretKey.length);
  buf.writeUInt32BE(processId >>> 0, 5);
  secretKey.copy(buf, 9);
  return buf;
}

/** Encodes NegotiateProtocolVersion: the newest minor version supported and the options not recognized. */
export function encodeNegotiateProtocolVersion(newestMinor: number, unrecognized: readonly string[]): Buffer {
  checkInt(newestMinor, 0, 0xffffffff, 'newestMinor');
  let size = 8;
  for (const name of unrecognized) size += cstringSize(name, 'a protocol option name');
  const buf = allocMessage(BackendMessageType.NegotiateProtocolVersion, size);
  buf.writeUInt32BE(newestMinor, 5);
  buf.writeUInt32BE(unrecognized.length, 9);
  let off = 13;
  for (const name of unrecognized) off = writeCString(buf, off, name);
  return buf;
}

/** Encodes ReadyForQuery with a transaction status: idle, in a transaction, or in a failed one. */
export function encodeReadyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  if (status !== 'I' && status !== 'T' && status !== 'E') throw new RangeError(`unknown transaction status ${String(status)}`);
  const buf = allocMessage(BackendMessageType.ReadyForQuery, 1);
  buf[5] = status.charCodeAt(0);
  return buf;
}

/** Encodes an authentication request: `code` and its data (salt, SASL mechanisms or SASL data). */
export function encodeAuthentication(code: number, data: Buffer = Buffer.alloc(0)): Buffer {
  checkInt(code, 0, 0xffffffff, 'code');
  const buf = allocMessage(BackendMessageType.Authentication, 4 + data.length);
  buf.writeUInt32BE(code, 5);
  data.copy(buf, 9);
  return buf;
}

/** Encodes the data of an AuthenticationSASL request: the mechanism names and the closing NUL. */
export function encodeSaslMechanisms(names: readonly string[]): Buffer {
  let size = 1;
  for (const n of names) {
    if (n === '') throw new RangeError('SASL mechanism names must not be empty');
    size += cstringSize(n, 'a SASL mechanism name');
  }
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  for (const n of names) off = writeCString(buf, off, n);
  buf[off] = 0;
  return buf;
}

/** Encodes ParameterStatus. */
export function encodeParameterStatus(name: string, value: string): Buffer {
  const buf = allocMessage(BackendMessageType.ParameterStatus, cstringSize(name, 'a parameter name') + cstringSize(value, 'a parameter value'));
  writeCString(buf, writeCString(buf, 5, name), value);
  return buf;
}

/** The one-byte answer to SSLRequest that accepts: 'S'. Shared: never write into it. */
export const SSL_ACCEPT: Buffer = Buffer.from('S', 'latin1');
/** The one-byte answer that refuses SSLRequest or GSSENCRequest: 'N'. Shared: never write into it. */
export const SSL_REJECT: Buffer = Buffer.from('N', 'latin1');
/** The one-byte answer that accepts GSSENCRequest: 'G'. Shared: never write into it. */
export const GSS_ACCEPT: Buffer = Buffer.from('G', 'latin1');
