/**
 * The one place the coordinator builds gRPC transport credentials: mutual TLS from the fleet PKI
 * (client certificates optional on the port, because pgsctl may come with a bearer token instead;
 * the guard refuses every call without a principal), or plaintext behind --insecure, which warns.
 */
import type { ServerCredentials } from '@grpc/grpc-js';
import { insecureServerCredentials, mtlsServerCredentials } from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import type { FleetPki } from '../security/fleet-pki.js';

/** Credentials of the coordinator's gRPC server; `pki` undefined = --insecure. */
export function serverCredentials(pki: FleetPki | undefined, log: Logger): ServerCredentials {
  return pki ? mtlsServerCredentials(pki.tls, { clientCertificates: 'optional' }) : insecureServerCredentials(log);
}
