import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ScramClientKeyLogin } from './scram-client.js';
import { mockScramSalt, scramNonce, ScramServer, tlsServerEndPoint, type ScramServerOptions } from './scram-exchange.js';
import { parseScramVerifier, scramVerifier } from './scram.js';

// RFC 7677 section 3: user "user", password "pencil".
const RFC_SALT = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
const RFC_CLIENT_NONCE = 'rOprNGfwEbeRWgbNEkqO';
const RFC_SERVER_NONCE = '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
const RFC_SERVER_FIRST = `r=${RFC_CLIENT_NONCE}${RFC_SERVER_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`;
const RFC_CLIENT_FINAL = `c=biws,r=${RFC_CLIENT_NONCE}${RFC_SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`;
const RFC_SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

const MOCK = { salt: Buffer.alloc(16, 7), iterations: 4096 };

function server(over: Partial<ScramServerOptions> = {}): ScramServer {
  return new ScramServer({ verifier: parseScramVerifier(scramVerifier('pencil', { salt: RFC_SALT })), mock: MOCK, channelBinding: undefined, ...over });
}

/** A password-knowing client (what libpq computes), for the exchanges below. */
function clientFinalFor(password: string, clientFirstBare: string, serverFirst: string, cbind = 'biws'): string {
  const attrs = Object.fromEntries(serverFirst.split(',').map((p) => [p[0], p.slice(2)]));
  const salted = pbkdf2Sync(password, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=${cbind},r=${attrs.r}`;
  const sig = createHmac('sha256', storedKey).update(`${clientFirstBare},${serverFirst},${withoutProof}`).digest();
  return `${withoutProof},p=${Buffer.from(clientKey.map((b, i) => b ^ sig[i]!)).toString('base64')}`;
}

describe('ScramServer', () => {
  it('reproduces the RFC 7677 example and reveals the ClientKey', () => {
    const s = server({ serverNonce: RFC_SERVER_NONCE });
    expect(s.mechanisms()).toEqual(['SCRAM-SHA-256']);
    expect(s.first('SCRAM-SHA-256', `n,,n=user,r=${RFC_CLIENT_NONCE}`)).toEqual({ kind: 'continue', serverFirst: RFC_SERVER_FIRST });
    const done = s.final(RFC_CLIENT_FINAL);
    expect(done).toMatchObject({ kind: 'success', serverFinal: RFC_SERVER_FINAL });
    const salted = pbkdf2Sync('pencil', RFC_SALT, 4096, 32, 'sha256');
    expect(done.kind === 'success' && done.clientKey.equals(createHmac('sha256', salted).update('Client Key').digest())).toBe(true);
  });

  it('fails a wrong password, and fails an unknown user the same way with a stable mock salt', () => {
    const wrong = server();
    const first = wrong.first('SCRAM-SHA-256', 'n,,n=,r=abc');
    expect(first.kind).toBe('continue');
    expect(wrong.final(clientFinalFor('pencil!', 'n=,r=abc', first.kind === 'continue' ? first.serverFirst : ''))).toEqual({ kind: 'failed' });

    const salt = mockScramSalt(Buffer.from('fleet secret'), 'nobody');
    expect(salt.equals(mockScramSalt(Buffer.from('fleet secret'), 'nobody'))).toBe(true);
    expect(salt.equals(mockScramSalt(Buffer.from('fleet secret'), 'somebody'))).toBe(false);
    const mock = server({ verifier: undefined, mock: { salt, iterations: 4096 } });
    const mockFirst = mock.first('SCRAM-SHA-256', 'n,,n=,r=abc');
    expect(mockFirst.kind === 'continue' && mockFirst.serverFirst).toMatch(
      new RegExp(`^r=abc[A-Za-z0-9+/=]{24},s=${salt.toString('base64').replace(/[+/]/g, '\\$&')},i=4096$`),
    );
    expect(mock.final(clientFinalFor('pencil', 'n=,r=abc', mockFirst.kind === 'continue' ? mockFirst.serverFirst : ''))).toEqual({ kind: 'failed' });
  });

  it('with TLS offers -PLUS and checks the tls-server-end-point binding', () => {
    const cb = tlsServerEndPoint(Buffer.from('not really a certificate'));
    const s = server({ channelBinding: cb });
    expect(s.mechanisms()).toEqual(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);
    const first = s.first('SCRAM-SHA-256-PLUS', 'p=tls-server-end-point,,n=,r=xyz');
    const serverFirst = first.kind === 'continue' ? first.serverFirst : '';
    const cbind = Buffer.concat([Buffer.from('p=tls-server-end-point,,'), cb]).toString('base64');
    expect(s.final(clientFinalFor('pencil', 'n=,r=xyz', serverFirst, cbind)).kind).toBe('success');

    const other = server({ channelBinding: cb });
    const f2 = other.first('SCRAM-SHA-256-PLUS', 'p=tls-server-end-point,,n=,r=xyz');
    const badCbind = Buffer.concat([Buffer.from('p=tls-server-end-point,,'), Buffer.alloc(32)]).toString('base64');
    expect(other.final(clientFinalFor('pencil', 'n=,r=xyz', f2.kind === 'continue' ? f2.serverFirst : '', badCbind))).toEqual({
      kind: 'malformed',
      message: 'SCRAM channel binding check failed',
    });
  });

  it('refuses a downgrade and protocol misuse as malformed', () => {
    const cb = Buffer.alloc(32, 1);
    expect(server({ channelBinding: cb }).first('SCRAM-SHA-256', 'y,,n=,r=a')).toMatchObject({
      kind: 'malformed',
      message: 'SCRAM channel binding negotiation error',
    });
    expect(server().first('SCRAM-SHA-256-PLUS', 'p=tls-server-end-point,,n=,r=a')).toMatchObject({
      message: 'client selected an invalid SASL authentication mechanism',
    });
    expect(server({ channelBinding: cb }).first('SCRAM-SHA-256-PLUS', 'p=tls-unique,,n=,r=a')).toMatchObject({
      message: 'unsupported SCRAM channel-binding type "tls-unique"',
    });
    expect(server().first('SCRAM-SHA-256', 'n,a=admin,n=,r=a')).toMatchObject({ kind: 'malformed' });
    expect(server().first('SCRAM-SHA-256', 'garbage')).toMatchObject({ kind: 'malformed', message: 'malformed SCRAM message' });
    const s = server();
    s.first('SCRAM-SHA-256', 'n,,n=,r=a');
    expect(s.final('c=biws,r=a-other,p=AAAA')).toMatchObject({ kind: 'malformed' });
    expect(server().final('c=biws')).toMatchObject({ kind: 'malformed' });
  });
});

describe('ScramClientKeyLogin', () => {
  it('logs into a server holding the same verifier with the recovered ClientKey, and checks its signature', () => {
    const verifier = parseScramVerifier(scramVerifier('s3cret', { iterations: 64 }))!;
    const edge = new ScramServer({ verifier, mock: MOCK, channelBinding: undefined });
    const f = edge.first('SCRAM-SHA-256', 'n,,n=,r=client1');
    const ok = edge.final(clientFinalFor('s3cret', 'n=,r=client1', f.kind === 'continue' ? f.serverFirst : ''));
    if (ok.kind !== 'success') throw new Error('edge login failed');

    const instance = new ScramServer({ verifier, mock: MOCK, channelBinding: undefined });
    const login = new ScramClientKeyLogin(ok.clientKey, verifier.serverKey, verifier);
    const first = login.clientFirst();
    const sf = instance.first('SCRAM-SHA-256', first);
    const done = instance.final(login.clientFinal(sf.kind === 'continue' ? sf.serverFirst : ''));
    expect(done.kind).toBe('success');
    expect(() => login.checkServerFinal(done.kind === 'success' ? done.serverFinal : '')).not.toThrow();
    expect(() => login.checkServerFinal(`v=${Buffer.alloc(32).toString('base64')}`)).toThrow(/signature is wrong/);
  });

  it('notices a server that holds another verifier', () => {
    const mine = parseScramVerifier(scramVerifier('pw', { iterations: 64 }))!;
    const theirs = new ScramServer({ verifier: parseScramVerifier(scramVerifier('pw', { iterations: 64 })), mock: MOCK, channelBinding: undefined });
    const login = new ScramClientKeyLogin(Buffer.alloc(32), mine.serverKey, mine);
    const sf = theirs.first('SCRAM-SHA-256', login.clientFirst());
    expect(() => login.clientFinal(sf.kind === 'continue' ? sf.serverFirst : '')).toThrow(/another verifier/);
  });
});

describe('scramNonce', () => {
  it('gives 18 random bytes in base64, never the same twice, across refills of its batch', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const nonce = scramNonce();
      expect(Buffer.from(nonce, 'base64')).toHaveLength(18);
      expect(nonce).toMatch(/^[A-Za-z0-9+/]{24}$/);
      seen.add(nonce);
    }
    expect(seen.size).toBe(1000);
  });
});
