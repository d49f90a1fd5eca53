// @peculiar/x509 needs the Reflect polyfill loaded before it (pki.ts loads it first in the library).
import 'reflect-metadata';
import { webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { identity } from './identity.js';
import { identityOfPeerCertificate, splitSubjectAltNames } from './peer-identity.js';
import { createFleetCa, FleetCa, identityOfCertificate } from './pki.js';

const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const SIGN = { name: 'ECDSA', hash: 'SHA-256' };
let keys: webcrypto.CryptoKeyPair;
let ca: FleetCa;

beforeAll(async () => {
  keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  ca = await FleetCa.load(await createFleetCa({ now }));
});

/** A self-signed certificate with this subject and these SANs (shapes the fleet CA never issues). */
async function selfSigned(name: string, sans: x509.JsonGeneralName[] = []): Promise<string> {
  const extensions = sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : [];
  return (await x509.X509CertificateGenerator.createSelfSigned({ name, keys, signingAlgorithm: SIGN, extensions })).toString('pem');
}

/** What a TLS handshake hands a checkServerIdentity callback: Node's legacy certificate object. */
function peerOf(pem: string): ReturnType<X509Certificate['toLegacyObject']> {
  return new X509Certificate(pem).toLegacyObject();
}

describe('identityOfPeerCertificate', () => {
  it('reads the identity of certificates the fleet CA issues, as identityOfCertificate does', async () => {
    for (const who of [identity('coordinator', 'c1'), identity('host', 'h-1.a_b'), identity('operator', 'alice'), identity('instance', 'h2')]) {
      const { certPem } = await ca.issue({ identity: who, dnsNames: ['localhost', 'coord.example'], ipAddresses: ['127.0.0.1', '::1'], now });
      expect(identityOfPeerCertificate(peerOf(certPem))).toEqual(who);
      expect(identityOfCertificate(certPem)).toEqual(who);
    }
  });

  it('agrees with identityOfCertificate on ambiguous, partial and foreign certificates', async () => {
    const cases: Array<[string, string, { kind: string; id: string } | undefined]> = [
      ['CN and URI SAN disagree', await selfSigned('CN=host:h1', [{ type: 'url', value: 'spiffe://pgs/host/h2' }]), undefined],
      ['CN only', await selfSigned('CN=router:r9'), { kind: 'router', id: 'r9' }],
      ['URI SAN only', await selfSigned('CN=something else', [{ type: 'url', value: 'spiffe://pgs/coordinator/c2' }]), { kind: 'coordinator', id: 'c2' }],
      [
        'two SPIFFE ids',
        await selfSigned('CN=host:h1', [
          { type: 'url', value: 'spiffe://pgs/host/h1' },
          { type: 'url', value: 'spiffe://pgs/host/h3' },
        ]),
        undefined,
      ],
      ['a SPIFFE id of another trust domain', await selfSigned('CN=host:h1', [{ type: 'url', value: 'spiffe://other/host/h1' }]), undefined],
      [
        'a quoted SAN (a comma in it) beside ours',
        await selfSigned('CN=host:h1', [
          { type: 'url', value: 'spiffe://pgs/host/h1,x' },
          { type: 'dns', value: 'a.example' },
        ]),
        undefined,
      ],
      ['an unknown kind', await selfSigned('CN=tenant:t1'), undefined],
      ['a foreign certificate', await selfSigned('CN=www.example.com', [{ type: 'dns', value: 'www.example.com' }]), undefined],
      [
        'an http URI beside the SPIFFE id',
        await selfSigned('CN=host:h4', [
          { type: 'url', value: 'https://example.com/a, b' },
          { type: 'url', value: 'spiffe://pgs/host/h4' },
        ]),
        { kind: 'host', id: 'h4' },
      ],
    ];
    for (const [what, pem, expected] of cases) {
      expect(identityOfCertificate(pem), what).toEqual(expected);
      expect(identityOfPeerCertificate(peerOf(pem)), what).toEqual(expected);
    }
  });

  it('gives no identity for a certificate without a subject or names', () => {
    expect(identityOfPeerCertificate({})).toBeUndefined();
    expect(identityOfPeerCertificate({ subject: null, subjectaltname: '' })).toBeUndefined();
    expect(identityOfPeerCertificate({ subject: { CN: ['host:h1', 'host:h1'] } })).toBeUndefined();
  });
});

describe('splitSubjectAltNames', () => {
  it('splits on ", " and undoes the quoting of values that hold separators', () => {
    expect(splitSubjectAltNames('DNS:localhost, IP Address:127.0.0.1, URI:spiffe://pgs/host/h1')).toEqual([
      'DNS:localhost',
      'IP Address:127.0.0.1',
      'URI:spiffe://pgs/host/h1',
    ]);
    expect(splitSubjectAltNames('URI:"spiffe://pgs/host/h1, URI:spiffe://pgs/host/h2", DNS:a')).toEqual([
      'URI:spiffe://pgs/host/h1, URI:spiffe://pgs/host/h2',
      'DNS:a',
    ]);
    expect(splitSubjectAltNames('DNS:"a\\"b"')).toEqual(['DNS:a"b']);
  });

  it('refuses text that is not in that form', () => {
    expect(splitSubjectAltNames('DNS:"unterminated')).toBeUndefined();
    expect(splitSubjectAltNames('DNS:a,URI:spiffe://pgs/host/h1')).toBeUndefined();
  });
});
