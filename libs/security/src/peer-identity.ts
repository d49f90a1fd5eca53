/**
 * The pgs identity of a certificate TLS has just verified, read from Node's own parse of it (the
 * `tls.PeerCertificate` a handshake hands over: `subject.CN` and the `subjectaltname` string) rather
 * than with the X.509 library pki.ts uses. The rule is pki.ts's identityOfCertificate: the URI SAN
 * `spiffe://pgs/<kind>/<id>`, else the CN `<kind>:<id>`, undefined when there is none, when there
 * are several SPIFFE ids or one that is not ours, or when SAN and CN disagree. A client that checks
 * its server at every handshake (pgsctl, which starts a process per command) then never loads the
 * X.509 library, which is most of the code such a client would otherwise parse at start-up.
 * Pure: no I/O.
 */
import { parseIdentity, parseIdentityUri, sameIdentity, type Identity } from './identity.js';

/** What of a `tls.PeerCertificate` (or `X509Certificate.toLegacyObject()`) the identity comes from. */
export interface PeerCertificateNames {
  subject?: { CN?: string | string[] } | null;
  subjectaltname?: string;
}

// A JSON string literal, as Node writes a SAN value holding a separator, a quote or a control character.
// eslint-disable-next-line no-control-regex -- a JSON string holds no raw control characters
const JSON_STRING = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/;

/**
 * Splits Node's `subjectaltname` ("DNS:a, URI:spiffe://pgs/host/h1, ...") into its entries, undoing
 * the quoting Node applies to values that could be mistaken for separators (the same rule Node's
 * own host-name check reads it with). Undefined when the string is not in that form.
 */
export function splitSubjectAltNames(text: string): string[] | undefined {
  const out: string[] = [];
  let token = '';
  let offset = 0;
  while (offset < text.length) {
    const sep = text.indexOf(',', offset);
    const quote = text.indexOf('"', offset);
    if (quote !== -1 && (sep === -1 || quote < sep)) {
      token += text.slice(offset, quote);
      const literal = JSON_STRING.exec(text.slice(quote));
      if (literal === null) return undefined;
      token += JSON.parse(literal[0]) as string;
      offset = quote + literal[0].length;
    } else if (sep !== -1) {
      token += text.slice(offset, sep);
      out.push(token);
      token = '';
      // Entries are separated by ", ".
      if (text[sep + 1] !== ' ') return undefined;
      offset = sep + 2;
    } else {
      token += text.slice(offset);
      offset = text.length;
    }
  }
  out.push(token);
  return out;
}

/** The identity a verified peer certificate names (see the module comment); undefined when none or ambiguous. */
export function identityOfPeerCertificate(cert: PeerCertificateNames): Identity | undefined {
  const names = cert.subjectaltname ? splitSubjectAltNames(cert.subjectaltname) : [];
  if (names === undefined) return undefined;
  const uris = names.filter((n) => n.startsWith('URI:spiffe://')).map((n) => n.slice('URI:'.length));
  const fromUris = uris.map((u) => parseIdentityUri(u));
  // Several SPIFFE ids, or one that is not ours, make the certificate ambiguous: refuse it.
  if (uris.length > 1 || fromUris.some((i) => i === undefined)) return undefined;
  const cn = cert.subject?.CN;
  const cns = cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
  const fromCn = cns.length === 1 ? parseIdentity(cns[0] as string) : undefined;
  const fromUri = fromUris[0];
  if (fromUri && fromCn && !sameIdentity(fromUri, fromCn)) return undefined;
  return fromUri ?? fromCn;
}
