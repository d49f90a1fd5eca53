// @pgs/wire-protocol: the PostgreSQL wire codec. Bytes in, values out; no I/O.
export { SqlState, sqlStateClass, type SqlStateCode } from './sqlstate.js';
export { PgError, ProtocolError, type PgErrorInit, type ProtocolErrorInit } from './pg-error.js';
export { isSeverity, SEVERITIES, type ErrorFields, type Severity } from './error-fields.js';
export {
  ALPN_PROTOCOL,
  CANCEL_REQUEST_CODE,
  decodeStartupPacket,
  encodeCancelRequest,
  encodeGssEncRequest,
  encodeSslRequest,
  encodeStartupMessage,
  GSS_ENC_REQUEST_CODE,
  MAX_SECRET_KEY_LENGTH,
  MAX_STARTUP_PACKET_LENGTH,
  MIN_SECRET_KEY_LENGTH,
  PROTOCOL_3_0,
  PROTOCOL_3_2,
  SSL_REQUEST_CODE,
  StartupDecoder,
  TLS_HANDSHAKE_RECORD_TYPE,
  type ProtocolVersion,
  type StartupDecodeResult,
  type StartupPacket,
} from './startup.js';
export { ADVERTISED_PROTOCOL, negotiationFor, StartupError, startupError, type StartupReply } from './startup-error.js';
export { DEFAULT_MAX_MESSAGE_SIZE, encodeFrame, MessageFramer, type Frame } from './framer.js';
export {
  AuthenticationCode,
  BackendMessageType,
  decodeBackendMessage,
  decodeSaslMechanisms,
  encodeAuthentication,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeReadyForQuery,
  encodeSaslMechanisms,
  GSS_ACCEPT,
  SSL_ACCEPT,
  SSL_REJECT,
  type BackendMessage,
} from './backend-messages.js';
export { ByteReader, type TextMode } from './reader.js';
export {
  decodeSaslInitialResponse,
  decodeSaslResponse,
  encodeQuery,
  encodeSaslInitialResponse,
  encodeSaslResponse,
  FrontendMessageType,
  MessageBoundaries,
  TERMINATE,
  TerminateFilter,
  type MessageEnd,
  type SaslInitialResponse,
} from './frontend-messages.js';
export {
  BIND,
  CLOSE,
  decodeBindStatement,
  decodeParse,
  decodeParseQuery,
  decodeQueryText,
  decodeTarget,
  DESCRIBE,
  encodeParse,
  encodeTarget,
  MessageSplitter,
  PARSE,
  QUERY,
  rewriteBindStatement,
  type MessagePiece,
  type ParseMessage,
  type TargetMessage,
} from './extended-query.js';
