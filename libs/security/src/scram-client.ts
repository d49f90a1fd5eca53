/**
 * The client side of SCRAM-SHA-256 (RFC 5802 section 5, RFC 7677) when the password is unknown but
 * the ClientKey is: a proxy that checked a client's proof (ScramServer) logs into the server that
 * holds the same verifier with ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage). The
 * server's signature is checked against the verifier's ServerKey, so a server holding another
 * verifier is noticed. No channel binding (the proxy's own link to the server).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SecurityError } from './errors.js';
import { scramNonce } from './scram-exchange.js';

function fail(message: string): SecurityError {
  return new SecurityError('SCRAM_EXCHANGE_FAILED', message);
}

/** One login (errors: SecurityError SCRAM_EXCHANGE_FAILED): `clientFirst()`, `clientFinal(serverFirst)`, `checkServerFinal(serverFinal)`. */
export class ScramClientKeyLogin {
  readonly #clientKey: Buffer;
  readonly #serverKey: Buffer;
  readonly #expect: { salt: Buffer; iterations: number } | undefined;
  readonly #nonce: string;
  #clientFirstBare = '';
  #serverSignature: Buffer | undefined;

  /**
   * `expect`: the verifier's salt and iteration count; a server that shows others holds another
   * verifier, which is reported at once rather than as a failed login.
   */
  constructor(clientKey: Buffer, serverKey: Buffer, expect?: { salt: Buffer; iterations: number }, nonce: string = scramNonce()) {
    this.#clientKey = clientKey;
    this.#serverKey = serverKey;
    this.#expect = expect;
    this.#nonce = nonce;
  }

  /** client-first-message (no channel binding, no user name: PostgreSQL takes the startup packet's). */
  clientFirst(): string {
    this.#clientFirstBare = `n=,r=${this.#nonce}`;
    return `n,,${this.#clientFirstBare}`;
  }

  /** client-final-message for the server's server-first-message. */
  clientFinal(serverFirst: string): string {
    const attrs = new Map<string, string>();
    for (const part of serverFirst.split(',')) {
      if (part.length < 2 || part[1] !== '=') throw fail('malformed server-first-message');
      attrs.set(part[0]!, part.slice(2));
    }
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce?.startsWith(this.#nonce) || nonce.length === this.#nonce.length) throw fail('the server nonce does not extend ours');
    if (salt === undefined || !Number.isInteger(iterations) || iterations < 1) throw fail('malformed server-first-message');
    if (this.#expect && (salt !== this.#expect.salt.toString('base64') || iterations !== this.#expect.iterations)) {
      throw fail('the server holds another verifier for this user (salt or iteration count differ)');
    }
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${withoutProof}`;
    const storedKey = createHash('sha256').update(this.#clientKey).digest();
    const signature = createHmac('sha256', storedKey).update(authMessage, 'utf8').digest();
    const proof = Buffer.allocUnsafe(32);
    for (let i = 0; i < 32; i++) proof[i] = this.#clientKey[i]! ^ signature[i]!;
    this.#serverSignature = createHmac('sha256', this.#serverKey).update(authMessage, 'utf8').digest();
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks server-final-message: the server proved it holds the verifier. */
  checkServerFinal(serverFinal: string): void {
    if (serverFinal.startsWith('e=')) throw fail(`the server refused: ${serverFinal.slice(2)}`);
    if (!serverFinal.startsWith('v=') || !this.#serverSignature) throw fail('malformed server-final-message');
    const got = Buffer.from(serverFinal.slice(2).split(',')[0]!, 'base64');
    if (got.length !== 32 || !timingSafeEqual(got, this.#serverSignature)) throw fail('the server signature is wrong');
  }
}
