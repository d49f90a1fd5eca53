/**
 * The server side of a SCRAM-SHA-256(-PLUS) exchange (RFC 5802 section 5, RFC 7677, RFC 5929
 * `tls-server-end-point`) as a pure state machine: text in, text out, no sockets. It checks a
 * client's proof against a stored verifier, and on success hands back the ClientKey the proof
 * reveals (ClientProof XOR HMAC(StoredKey, AuthMessage)), with which a proxy can log into a server
 * that holds the same verifier without ever knowing the password.
 *
 * Messages and errors follow PostgreSQL's own server (src/backend/libpq/auth-scram.c): the user
 * name in client-first is ignored (the startup packet's user counts), an unknown user gets a mock
 * exchange that fails exactly like a wrong password, and a malformed message is a protocol violation.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ScramVerifierParts } from './scram.js';

/** The mechanism names of PostgreSQL's SASL authentication. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';
/** The one channel-binding type offered (PostgreSQL offers only this one too). */
export const TLS_SERVER_END_POINT = 'tls-server-end-point';

/** Bytes of randomness in a nonce, as PostgreSQL uses (SCRAM_RAW_NONCE_LEN). */
const RAW_NONCE_BYTES = 18;

/** What the server does next. */
export type ScramServerStep =
  /** Send AuthenticationSASLContinue with `serverFirst`. */
  | { kind: 'continue'; serverFirst: string }
  /** Send AuthenticationSASLFinal with `serverFinal`, then AuthenticationOk. */
  | { kind: 'success'; serverFinal: string; clientKey: Buffer }
  /** Wrong password or unknown user: 28P01, "password authentication failed for user". */
  | { kind: 'failed' }
  /** A message that breaks the protocol: 08P01 with this text. */
  | { kind: 'malformed'; message: string; detail?: string };

/** How one exchange is set up. */
export interface ScramServerOptions {
  /** The user's verifier; undefined runs a mock exchange that always fails (no user enumeration). */
  verifier: ScramVerifierParts | undefined;
  /** Salt and iteration count shown for an unknown user (stable per user name: see mockScramSalt). */
  mock: { salt: Buffer; iterations: number };
  /** tls-server-end-point data of the server's certificate when the client came over TLS; enables -PLUS. */
  channelBinding: Buffer | undefined;
  /** The server's nonce part (base64 of random bytes); random when not given. */
  serverNonce?: string;
}

/**
 * Random bytes for the next nonces, drawn from the CSPRNG in one call per 256 nonces (as Node's
 * randomUUID keeps an entropy cache): a call per nonce cost a router a few percent of a login.
 * Each byte is handed out once.
 */
const NONCE_BATCH = 256;
let nonceBytes = Buffer.alloc(0);
let nonceAt = 0;

/** A fresh printable nonce: base64 of 18 random bytes (never contains ','). */
export function scramNonce(): string {
  if (nonceAt + RAW_NONCE_BYTES > nonceBytes.length) {
    nonceBytes = randomBytes(RAW_NONCE_BYTES * NONCE_BATCH);
    nonceAt = 0;
  }
  const nonce = nonceBytes.toString('base64', nonceAt, nonceAt + RAW_NONCE_BYTES);
  nonceAt += RAW_NONCE_BYTES;
  return nonce;
}

/**
 * The salt shown to an unknown user: HMAC(secret, user) truncated to 16 bytes, so repeated
 * attempts see the same salt, as they would for a real user (PostgreSQL's scram_mock_salt).
 */
export function mockScramSalt(secret: Buffer, user: string): Buffer {
  return createHmac('sha256', secret).update('pgs-scram-mock\0').update(user).digest().subarray(0, 16);
}

/**
 * RFC 5929 tls-server-end-point: the hash of the server certificate (DER) with the certificate's
 * signature hash, SHA-256 when that is MD5 or SHA-1. The signature algorithm is found by its OID.
 */
export function tlsServerEndPoint(certificateDer: Buffer): Buffer {
  const oid = (dotted: number[]): Buffer => {
    const out = [0x06, 0, dotted[0]! * 40 + dotted[1]!];
    for (const n of dotted.slice(2)) {
      const parts = [n & 0x7f];
      for (let v = n >>> 7; v > 0; v >>>= 7) parts.unshift((v & 0x7f) | 0x80);
      out.push(...parts);
    }
    out[1] = out.length - 2;
    return Buffer.from(out);
  };
  // sha384/512 with RSA, RSA-PSS is not distinguished (its hash sits in parameters; SHA-256 is the common case).
  const byHash: Array<[string, number[][]]> = [
    [
      'sha384',
      [
        [1, 2, 840, 113549, 1, 1, 12],
        [1, 2, 840, 10045, 4, 3, 3],
      ],
    ],
    [
      'sha512',
      [
        [1, 2, 840, 113549, 1, 1, 13],
        [1, 2, 840, 10045, 4, 3, 4],
      ],
    ],
  ];
  let hash = 'sha256';
  for (const [name, oids] of byHash) if (oids.some((o) => certificateDer.includes(oid(o)))) hash = name;
  return createHash(hash).update(certificateDer).digest();
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

/** Its own memory (not a slice of Node's shared 8 KiB pool): a proxy keeps the ClientKey as long as the client stays. */
function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function malformed(detail: string): ScramServerStep {
  return { kind: 'malformed', message: 'malformed SCRAM message', detail };
}

/** One server-side exchange: `mechanisms()` to offer, then `first()`, then `final()`. */
export class ScramServer {
  readonly #options: ScramServerOptions;
  #state: 'initial' | 'first-done' | 'done' = 'initial';
  #gs2Header = '';
  #clientFirstBare = '';
  #serverFirst = '';
  #nonce = '';

  constructor(options: ScramServerOptions) {
    this.#options = options;
  }

  /** The mechanisms to offer in AuthenticationSASL, best first. */
  mechanisms(): string[] {
    return this.#options.channelBinding ? [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] : [SCRAM_SHA_256];
  }

  /** The client's SASLInitialResponse: the chosen mechanism and client-first-message. */
  first(mechanism: string, clientFirst: string): ScramServerStep {
    if (this.#state !== 'initial') return malformed('client-first-message sent twice');
    this.#state = 'done';
    if (!this.mechanisms().includes(mechanism)) {
      return { kind: 'malformed', message: 'client selected an invalid SASL authentication mechanism' };
    }
    const plus = mechanism === SCRAM_SHA_256_PLUS;
    // gs2-header = gs2-cbind-flag "," [authzid] ","
    const firstComma = clientFirst.indexOf(',');
    const secondComma = firstComma < 0 ? -1 : clientFirst.indexOf(',', firstComma + 1);
    if (secondComma < 0) return malformed('the GS2 header is incomplete');
    const flag = clientFirst.slice(0, firstComma);
    const authzid = clientFirst.slice(firstComma + 1, secondComma);
    if (flag === 'n') {
      if (plus) return { kind: 'malformed', message: 'channel binding is required, but client does not support it' };
    } else if (flag === 'y') {
      if (this.#options.channelBinding) {
        return {
          kind: 'malformed',
          message: 'SCRAM channel binding negotiation error',
          detail: 'The client supports SCRAM channel binding but thinks the server does not.  However, this server does support channel binding.',
        };
      }
      if (plus) return malformed('the client chose SCRAM-SHA-256-PLUS without channel binding');
    } else if (flag.startsWith('p=')) {
      if (!plus) return { kind: 'malformed', message: 'channel binding was requested with a mechanism that does not use it' };
      if (flag !== `p=${TLS_SERVER_END_POINT}`) return { kind: 'malformed', message: `unsupported SCRAM channel-binding type "${flag.slice(2)}"` };
    } else {
      return malformed(`unexpected channel-binding flag "${flag.slice(0, 16)}"`);
    }
    if (authzid !== '') return { kind: 'malformed', message: 'client uses authorization identity, but it is not supported' };
    this.#gs2Header = clientFirst.slice(0, secondComma + 1);
    const bare = clientFirst.slice(secondComma + 1);
    const attrs = bare.split(',');
    if (attrs[0]?.startsWith('m=')) return { kind: 'malformed', message: 'client requires an unsupported SCRAM extension' };
    if (!attrs[0]?.startsWith('n=') || !attrs[1]?.startsWith('r=')) return malformed('expected n= and r= in client-first-message');
    const clientNonce = attrs[1].slice(2);
    if (!PRINTABLE_NONCE.test(clientNonce)) return malformed('the client nonce is empty or not printable');
    this.#clientFirstBare = bare;
    this.#nonce = clientNonce + (this.#options.serverNonce ?? scramNonce());
    const { salt, iterations } = this.#options.verifier ?? this.#options.mock;
    this.#serverFirst = `r=${this.#nonce},s=${salt.toString('base64')},i=${iterations}`;
    this.#state = 'first-done';
    return { kind: 'continue', serverFirst: this.#serverFirst };
  }

  /** The client's SASLResponse: client-final-message. */
  final(clientFinal: string): ScramServerStep {
    if (this.#state !== 'first-done') return malformed('client-final-message out of order');
    this.#state = 'done';
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt < 0) return malformed('the client proof is missing');
    const withoutProof = clientFinal.slice(0, proofAt);
    const proofText = clientFinal.slice(proofAt + 3);
    const attrs = withoutProof.split(',');
    if (!attrs[0]?.startsWith('c=') || !attrs[1]?.startsWith('r=')) return malformed('expected c= and r= in client-final-message');
    const cbind = attrs[0].slice(2);
    if (!BASE64.test(cbind) || !BASE64.test(proofText)) return malformed('invalid base64');
    const expectedCbind = Buffer.concat([
      Buffer.from(this.#gs2Header, 'utf8'),
      this.#gs2Header.startsWith('p=') ? this.#options.channelBinding! : Buffer.alloc(0),
    ]);
    const gotCbind = Buffer.from(cbind, 'base64');
    if (gotCbind.length !== expectedCbind.length || !timingSafeEqual(gotCbind, expectedCbind)) {
      return { kind: 'malformed', message: 'SCRAM channel binding check failed' };
    }
    if (attrs[1].slice(2) !== this.#nonce) return malformed('the nonce does not match');
    const proof = Buffer.from(proofText, 'base64');
    if (proof.length !== 32) return malformed('the client proof has the wrong length');
    const verifier = this.#options.verifier;
    if (!verifier) return { kind: 'failed' };
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientKey = xor(proof, hmac(verifier.storedKey, authMessage));
    const storedKey = createHash('sha256').update(clientKey).digest();
    if (!timingSafeEqual(storedKey, verifier.storedKey)) return { kind: 'failed' };
    return { kind: 'success', serverFinal: `v=${hmac(verifier.serverKey, authMessage).toString('base64')}`, clientKey };
  }
}
